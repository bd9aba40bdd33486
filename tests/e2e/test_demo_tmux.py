"""The demo ceremony as a new user runs it: `appliance demo` in an 80x24 tmux, keys only.

The test reads the screen (capture-pane) and answers like the room would: records the
proposed attendance, presses Enter when the words are read, Y to confirmations, Enter on the
proposed input, takes cards from the tray (C), types the demo PINs, and puts cards back.
It ends when the screen says CEREMONY ENDED; the journal and the PDF on the media are checked.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

from appliance.ceremony import journal
from tests.support.services import need_tool
from tests.tui.demo_driver import REPO, demo_config

APPLIANCE = REPO / ".venv" / "bin" / "appliance"


def test_demo_ceremony_completes_with_the_keyboard_in_tmux(tmp_path: Path) -> None:
    need_tool("softhsm2-util", "softhsm2")
    tmux = need_tool("tmux", "tmux")
    demo_config(tmp_path)
    session = f"demo-tmux-{os.getpid()}"
    conf = tmp_path / "state" / "softhsm2.conf"
    command = (
        f"SOFTHSM2_CONF={conf} APPLIANCE_DEMO_READERS=direct TERM=xterm-256color "
        f"{APPLIANCE} --config {tmp_path / 'appliance.toml'} demo"
    )
    subprocess.run(
        [tmux, "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command], check=True
    )

    def screen() -> str:
        return subprocess.run(
            [tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True
        ).stdout

    def keys(*k: str, wait: float = 0.25) -> None:
        subprocess.run([tmux, "send-keys", "-t", session, *k], check=True)
        time.sleep(wait)

    scripts = sorted(p.name for p in (REPO / "scripts").glob("*.toml"))
    done: list[str] = []
    text = ""
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            time.sleep(0.25)
            text = screen()
            flat = text.replace("\n", " ")
            if "CEREMONY ENDED" in text or "CEREMONY ABORTED" in text or " decides " in text:
                break
            if "Ceremony scripts (" in text and "Attendance" not in text:
                for _ in range(scripts.index("ksr-sign.toml")):
                    keys("Down", wait=0.1)
                keys("Enter", wait=1)
                done.append("script")
            elif "Attendance:" in text:
                keys("C-s")
                done.append("attendance")
            elif "PIN for the card of" in text:
                seat = re.search(r"PIN for the card of CO(\d)", text)
                assert seat is not None, text
                keys(*([seat.group(1)] * 6), "Enter", wait=0.8)
                done.append(f"pin CO{seat.group(1)}")
            elif "Y = yes" in text:
                keys("y")
            elif "Input '" in text:
                keys("Enter")
            elif "take your card out" in text:
                keys("c", wait=0.5)
                keys("r", wait=0.8)
                done.append("card out")
            elif "Waiting for a card" in text:
                seat = re.search(r"(?:Insert the card of|Any one of:) CO(\d)", flat)
                assert seat is not None, text
                keys("c", wait=0.5)
                for _ in range(int(seat.group(1)) - 1):
                    keys("Down", wait=0.3)
                keys("Enter", wait=0.8)
                done.append(f"tray co{seat.group(1)}")
            elif "Press Enter when the words" in text:
                keys("Enter")
        assert "CEREMONY ENDED" in text, (done, text)
        assert "0 exception(s)" in text
        lines = text.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
    finally:
        subprocess.run([tmux, "kill-session", "-t", session], capture_output=True)
    assert [d for d in done if d.startswith("pin")] == ["pin CO1", "pin CO2", "pin CO3"]
    workspaces = list((tmp_path / "workspace").glob("ksr-sign-*/journal.jsonl"))
    assert len(workspaces) == 1
    state = journal.read(workspaces[0])
    assert state.finished and state.entries[-1].kind == "signature"
    sheets = list((tmp_path / "media").glob("ksr-sign-*/sheet.pdf"))
    assert sheets and sheets[0].read_bytes().startswith(b"%PDF")
