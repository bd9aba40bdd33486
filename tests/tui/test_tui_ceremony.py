"""A complete ksr-sign demo ceremony through the console: cards from the tray, PINs typed,
to the printed outputs (the PDF on the media: no printer), checked in the journal."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance import demo
from appliance.ceremony import journal
from appliance.config import Config
from tests.support.services import need_tool
from tests.tui.demo_driver import REPO, choose_script, demo_config, drive, make_app, softhsm_env

SCRIPT = REPO / "scripts" / "ksr-sign.toml"


@pytest.fixture(scope="module")
def demo_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Config, Path]]:
    need_tool("softhsm2-util", "softhsm2")
    root = tmp_path_factory.mktemp("demo")
    config = demo_config(root)
    restore = softhsm_env(config)
    demo.build_world(config)
    yield config, root
    restore()


def _entries(workspace: Path) -> list[journal.Entry]:
    return list(journal.read(workspace / "journal.jsonl").entries)


async def test_ksr_sign_demo_ceremony_completes_through_the_console(
    demo_world: tuple[Config, Path],
) -> None:
    config, root = demo_world
    app = make_app(config, root)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await choose_script(pilot, SCRIPT)
        seen = await drive(pilot)
        screen = app.screen
        from appliance.tui.screens.ceremony import CeremonyScreen

        assert isinstance(screen, CeremonyScreen)
        assert screen.failure is None, screen.failure
        outcome = screen.outcome
        assert outcome is not None and outcome.status == "ended"
        assert outcome.exceptions == 0
        workspace = screen.workspace
    # three officers' cards came from the tray, each with a typed PIN
    assert sorted(seen.tray_inserts) == ["co1", "co2", "co3"]
    assert sorted(seen.pins_typed) == ["CO1", "CO2", "CO3"]
    assert {"AttendanceDialog", "ConfirmDialog", "PinDialog", "InputChooser"} <= seen.screens
    assert seen.readouts >= 1
    entries = _entries(workspace)
    kinds = [e.kind for e in entries]
    assert kinds[0] == "start" and "end" in kinds and kinds[-1] == "signature"
    start = entries[0].data
    assert start["attendance"]["CO2"] == "Chris Officer"
    actions = {e.step: e.data for e in entries if e.kind == "action"}
    presented = actions["activate"]["result"]["presented"]
    assert sorted(p["serial"] for p in presented) == ["0000C001", "0000C002", "0000C003"]
    skr = actions["sign-ksr"]["result"]
    assert (workspace / "outputs" / skr["skr"]).is_file()
    assert actions["print"]["result"]["status"] != "printed"
    bundle = Path(actions["bundle"]["result"]["folder"])
    sheet = bundle / "sheet.pdf"
    assert sheet.is_file() and sheet.read_bytes().startswith(b"%PDF")
    done = [e for e in entries if e.kind == "step_done"]
    assert len(done) == 11
    assert json.loads(json.dumps(done[-1].data))["confirmed_by"] == ["CA"]
    verification = journal.verify(workspace / "journal.jsonl")
    assert verification.state.finished
