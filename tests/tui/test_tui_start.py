from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.widgets import OptionList

from appliance.tui.app import CeremonyApp
from appliance.tui.screens.start import StartScreen
from appliance.tui.widgets.status_table import StatusTable

Factory = Callable[..., CeremonyApp]


async def test_start_screen_shows_checks_and_scripts(app_factory: Factory) -> None:
    app = app_factory()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, StartScreen)
        table = screen.query_one(StatusTable)
        assert table.row_count == 3
        statuses = [str(table.get_row_at(i)[0]).strip() for i in range(3)]
        assert statuses == ["OK", "FAIL", "WARN"]
        assert "Start it" in str(table.get_row_at(1)[2])
        titles = [str(o.prompt) for o in screen.query_one(OptionList).options]
        assert titles == ["HSM backup  [backup.toml]", "Quarterly KSR signing  [ksr-sign.toml]"]


async def test_choosing_a_script_posts_its_path(app_factory: Factory) -> None:
    app = app_factory()
    chosen: dict[int, Path] = {}

    def hook(message: object) -> None:
        if isinstance(message, StartScreen.ScriptChosen):
            chosen[id(message)] = message.path  # a message is seen once per node it visits

    async with app.run_test(size=(100, 30), message_hook=hook) as pilot:
        await pilot.pause()
        await pilot.press("down", "enter")
        await pilot.pause()
    assert [p.name for p in chosen.values()] == ["ksr-sign.toml"]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_start_screen_snapshot(snap_compare, app_factory: Factory, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(app_factory(), terminal_size=size, run_before=settle)


def test_start_screen_snapshot_linux_console(snap_compare, app_factory: Factory) -> None:  # type: ignore[no-untyped-def]
    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(app_factory(console=True), terminal_size=(80, 24), run_before=settle)
