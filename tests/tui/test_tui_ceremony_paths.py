"""The console off the happy path: a wrong PIN, a card pulled mid-step, a closed console
resumed from the start screen, and the read-only views."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import demo
from appliance.ceremony import journal
from appliance.config import Config
from appliance.tui.dialogs.ask import ChoiceDialog, TextView
from appliance.tui.dialogs.pin import PinDialog
from appliance.tui.screens.ceremony import CeremonyScreen
from appliance.tui.screens.start import StartScreen
from tests.support.services import need_tool
from tests.tui.demo_driver import REPO, choose_script, demo_config, drive, make_app, softhsm_env

SCRIPT = REPO / "scripts" / "ksr-sign.toml"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, Path]]:
    need_tool("softhsm2-util", "softhsm2")
    root = tmp_path_factory.mktemp("demo-paths")
    config = demo_config(root)
    restore = softhsm_env(config)
    demo.build_world(config)
    yield config, root
    restore()


def _ceremony(app) -> CeremonyScreen:  # type: ignore[no-untyped-def]
    screens = [s for s in app.screen_stack if isinstance(s, CeremonyScreen)]
    assert screens, f"no ceremony screen in {app.screen_stack}"
    return screens[-1]


async def test_wrong_pin_then_card_pulled_gives_a_prompt_and_the_ceremony_goes_on(
    world: tuple[Config, Path],
) -> None:
    config, root = world
    app = make_app(config, root)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await choose_script(pilot, SCRIPT)
        # CO1 first types a wrong PIN: the card reports 2 tries left, nothing else happens.
        await drive(
            pilot,
            pins={"CO1": ["999999"]},
            until=lambda s: any("2 tries left" in t for _, t in s.notes),
        )
        screen = _ceremony(app)
        # The next PIN dialog shows the tries left; the card is pulled before the PIN goes.
        await drive(pilot, until=lambda s: isinstance(s.app.screen, PinDialog))
        dialog = app.screen
        assert isinstance(dialog, PinDialog) and dialog.tries_left == 2
        tray = screen.world.tray
        assert tray is not None
        tray.remove(0)
        errors_before = sum(1 for level, _ in screen.notes if level == "error")
        await pilot.press(*"111111", "enter")
        # the engine reports the pulled card and asks for a card again: a prompt, no traceback
        for _ in range(100):
            await pilot.pause(0.05)
            if (
                screen.waiting_card is not None
                and sum(1 for level, _ in screen.notes if level == "error") > errors_before
            ):
                break
        problems = [t for level, t in screen.notes if level == "error"][errors_before:]
        assert problems, screen.notes[-4:]
        assert "card" in problems[-1].lower() and "Traceback" not in problems[-1]
        assert screen.waiting_card is not None and not isinstance(app.screen, ChoiceDialog)
        await drive(pilot)
        assert screen.outcome is not None and screen.outcome.status == "ended"
        entries = journal.read(screen.workspace / "journal.jsonl").entries
    presented = next(e for e in entries if e.kind == "action" and e.step == "activate")
    assert len(presented.data["result"]["presented"]) == 3
    kinds = [e.kind for e in entries]
    assert "abort" not in kinds and "end" in kinds


async def test_a_closed_console_resumes_from_the_start_screen(
    world: tuple[Config, Path],
) -> None:
    config, root = world
    app = make_app(config, root)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await choose_script(pilot, SCRIPT)
        await drive(pilot, until=lambda s: s.view is not None and s.view.step_id == "check-ksr")
        workspace = _ceremony(app).workspace
    # the console closed mid-ceremony: the journal is unfinished, nothing was aborted
    kinds = [e.kind for e in journal.read(workspace / "journal.jsonl").entries]
    assert "abort" not in kinds and "end" not in kinds, kinds
    app = make_app(config, root)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        start = app.screen
        assert isinstance(start, StartScreen)
        assert [u.workspace for u in start.unfinished] == [workspace]
        await pilot.press("enter")  # RESUME is the first entry
        await drive(pilot)
        screen = _ceremony(app)
        assert screen.workspace == workspace
        assert screen.outcome is not None and screen.outcome.resumed
    kinds = [e.kind for e in journal.read(workspace / "journal.jsonl").entries]
    assert "resume" in kinds and "end" in kinds


async def test_views_show_script_journal_help_analysis_and_reports(
    world: tuple[Config, Path],
) -> None:
    config, root = world
    app = make_app(config, root)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await choose_script(pilot, SCRIPT)
        await drive(
            pilot,
            until=lambda s: (
                s.view is not None and s.view.step_id == "activate" and s.waiting_card is not None
            ),
        )
        expected = {
            "s": "Sign the KSR",
            "j": "step_done",
            "question_mark": "Card tray",
            "a": "3-of-3",
            "p": "",
        }
        for key, text in expected.items():
            await pilot.press(key)
            await pilot.pause(0.1)
            view = app.screen
            assert isinstance(view, TextView), key
            assert view.lines and any(text in line for line in view.lines), (key, view.lines)
            await pilot.press("escape")
            await pilot.pause(0.05)
        assert isinstance(app.screen, CeremonyScreen)
        await drive(pilot)


async def test_start_screen_shows_roster_warnings(world: tuple[Config, Path]) -> None:
    from datetime import UTC, datetime

    from appliance.tui.widgets.status_table import StatusTable
    from tests.tui.demo_driver import FrozenClock

    config, root = world
    rows: dict[str, list[tuple[str, str]]] = {}
    for label, when in (
        ("today", datetime.now(UTC)),
        ("in six years", datetime(2033, 1, 1, tzinfo=UTC)),
    ):
        app = make_app(config, root, clock=FrozenClock(when))
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            table = app.screen.query_one(StatusTable)
            found = [table.get_row_at(i) for i in range(table.row_count)]
            rows[label] = [
                (str(r[0]).strip(), str(r[2])) for r in found if str(r[1]).strip() == "roster"
            ]
    # 3 cards for a threshold of 3 is a thin set: warned from the first day
    assert any(s == "WARN" and "one more loss" in t for s, t in rows["today"]), rows
    # years later the cards have aged too: more warnings, each naming its holder
    today = [t for s, t in rows["today"] if s == "WARN"]
    later = [t for s, t in rows["in six years"] if s == "WARN"]
    assert len(later) > len(today), rows
    assert any("Cleo Officer" in t for t in later if t not in today), rows


async def test_a_card_that_cannot_be_read_is_said_once_and_the_wait_goes_on(
    world: tuple[Config, Path],
) -> None:
    """CO1's card was left half reset: the console names what is wrong while it waits (it
    used to wait in silence), does not finish the reset in a signing ceremony, and goes on
    once a readable card is in."""
    from vcard.card import VirtualCard

    config, root = world
    app = make_app(config, root)
    path = demo.DemoWorld(config).cards_dir / "co1.json"
    sound = path.read_bytes()
    torn = VirtualCard.open(path)
    torn.state.terminated = True
    torn.save()
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await choose_script(pilot, SCRIPT)

            def said(s: CeremonyScreen) -> list[str]:
                return [t for level, t in s.notes if level == "error" and "terminated" in t]

            await drive(pilot, until=lambda s: bool(said(s)))
            screen = _ceremony(app)
            for _ in range(20):  # the reader is polled again and again: still said once
                await pilot.pause(0.05)
            assert len(said(screen)) == 1, screen.notes[-4:]
            assert "pulled during a factory reset" in said(screen)[0]
            assert screen.waiting_card is not None and screen.failure is None
            assert VirtualCard.open(path).state.terminated, "a signing ceremony resets nothing"
            tray = screen.world.tray
            assert tray is not None
            tray.remove(0)
            path.write_bytes(sound)  # the holder fetches a sound card
            await drive(pilot)
            assert screen.outcome is not None and screen.outcome.status == "ended"
    finally:
        path.write_bytes(sound)
