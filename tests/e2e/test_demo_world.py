"""`appliance demo` as a new user meets it: the world is built once, a second run is quick and
harmless, and the console comes up at the start screen in an 80x24 terminal (tmux)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from tests.support.services import need_tool
from tests.tui.demo_driver import REPO, demo_config

APPLIANCE = REPO / ".venv" / "bin" / "appliance"


def _env(root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SOFTHSM2_CONF": str(root / "state" / "softhsm2.conf"),
        "APPLIANCE_DEMO_READERS": "direct",
        "TERM": "xterm-256color",
    }


def test_demo_world_is_built_once_then_only_checked(tmp_path: Path) -> None:
    need_tool("softhsm2-util", "softhsm2")
    demo_config(tmp_path)
    cfg = str(tmp_path / "appliance.toml")
    first = subprocess.run(
        [str(APPLIANCE), "--config", cfg, "demo", "--no-tui"],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(tmp_path),
    )
    assert "Building the demo world" in first.stdout, first.stdout + first.stderr
    media = tmp_path / "media"
    assert {"roster.json", "zones.toml", "example.ksr"} <= {p.name for p in media.iterdir()}
    assert (media / "example.ksr").read_text().count(";; KeySigningRequest") >= 1
    roster = json.loads((media / "roster.json").read_text())
    serials = sorted(m["card_serial"] for s in roster["body"]["sets"] for m in s["members"])
    assert serials == ["0000C001", "0000C002", "0000C003"]
    before = {p: p.stat().st_mtime_ns for p in media.iterdir()}
    second = subprocess.run(
        [str(APPLIANCE), "--config", cfg, "demo", "--no-tui"],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(tmp_path),
    )
    assert "is ready" in second.stdout and "Building" not in second.stdout
    assert {p: p.stat().st_mtime_ns for p in media.iterdir()} == before


def test_demo_command_reaches_the_start_screen_in_tmux(tmp_path: Path) -> None:
    need_tool("softhsm2-util", "softhsm2")
    tmux = need_tool("tmux", "tmux")
    demo_config(tmp_path)
    session = f"demo-e2e-{os.getpid()}"
    env = _env(tmp_path)
    command = (
        f"SOFTHSM2_CONF={env['SOFTHSM2_CONF']} APPLIANCE_DEMO_READERS=direct "
        f"{APPLIANCE} --config {tmp_path / 'appliance.toml'} demo"
        # if the demo ends early, its last words stay on the screen for the assertion
        " 2>&1; echo DEMO-EXITED $?; sleep 60"
    )
    subprocess.run(
        [tmux, "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command],
        check=True,
        env=env,
    )
    try:
        screen = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            screen = subprocess.run(
                [tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True
            ).stdout
            # Textual paints widgets one by one: wait for the header, the status and the list
            if all(
                mark in screen
                for mark in ("Ceremony appliance: start", "Ceremony scripts (", "Appliance status")
            ):
                break
            if "DEMO-EXITED" in screen:
                break
            time.sleep(0.5)
        assert "Ceremony appliance: start" in screen, screen
        assert "HSM backup" in screen or "[backup.toml]" in screen
        lines = screen.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        subprocess.run([tmux, "send-keys", "-t", session, "q"], check=True)
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)
