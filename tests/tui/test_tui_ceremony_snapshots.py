"""Snapshots of the ceremony screen (80x24, 120x40, Linux-console palette) and the card tray.

Everything time- or machine-dependent is frozen: the clock, the build information the journal
records, the air-gap check's tree; the journal head in the header is then the same anywhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import buildinfo
from tests.tui.demo_driver import REPO, choose_script, demo_config, drive, make_app

# A frozen copy: the library's script may change wording; the snapshots must not follow it.
SCRIPTS = REPO / "tests" / "data" / "tui-snapshot"
SCRIPT = SCRIPTS / "ksr-sign.toml"


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(buildinfo, "version", lambda: "0.0.0-snapshot")
    monkeypatch.setattr(buildinfo, "image_hash", lambda: None)

    def make(console: bool = False):  # type: ignore[no-untyped-def]
        root = tmp_path / "world"
        root.mkdir(exist_ok=True)
        return make_app(demo_config(root, SCRIPTS), root, console=console)

    return make


async def _at_first_step(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.pause()
    await choose_script(pilot, SCRIPT)
    await drive(pilot, until=lambda s: s.view is not None and s.awaiting_proceed)
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_ceremony_screen_snapshot(snap_compare, frozen, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(frozen(), terminal_size=size, run_before=_at_first_step)


def test_ceremony_screen_snapshot_linux_console(snap_compare, frozen) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(frozen(console=True), terminal_size=(80, 24), run_before=_at_first_step)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_card_tray_snapshot(snap_compare, frozen, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def tray(pilot) -> None:  # type: ignore[no-untyped-def]
        await _at_first_step(pilot)
        await pilot.press("c")
        await pilot.pause()
        await pilot.pause(0.3)

    assert snap_compare(frozen(), terminal_size=size, run_before=tray)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_script_view_snapshot(snap_compare, frozen, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def view(pilot) -> None:  # type: ignore[no-untyped-def]
        await _at_first_step(pilot)
        await pilot.press("s")
        await pilot.pause(0.2)

    assert snap_compare(frozen(), terminal_size=size, run_before=view)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_witness_question_snapshot(snap_compare, frozen, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    async def question(pilot) -> None:  # type: ignore[no-untyped-def]
        await _at_first_step(pilot)
        await pilot.press("enter")
        await pilot.pause(0.3)

    assert snap_compare(frozen(), terminal_size=size, run_before=question)
