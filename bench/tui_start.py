"""Time from process start to the console's first rendered screen (median of 10 runs).

Runs `appliance tui` in a pseudo-terminal of 80x24 with a plain configuration (the demo
world is not built: that is `appliance demo`'s one-off cost) and stops the clock when the
start screen's title has been drawn. Output: one JSON object.

    .venv/bin/python bench/tui_start.py [--runs 10]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = b"Ceremony appliance: start"
GOAL = 0.8


def one_run(config: Path, timeout: float = 20.0) -> float:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"}
    started = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603 - our own command
        [str(ROOT / ".venv/bin/appliance"), "--config", str(config), "tui"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    seen = b""
    try:
        while time.perf_counter() - started < timeout:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
                if MARK in seen:
                    return time.perf_counter() - started
        raise RuntimeError(f"no start screen within {timeout} s: {seen[-200:]!r}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
        os.close(master)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "appliance.toml"
        config.write_text(
            f'[paths]\nscripts = "{ROOT / "scripts"}"\nmedia = "{tmp}"\n'
            f'workspace = "{tmp}/workspace"\n'
            '[hsm]\nmodule = "/usr/lib/softhsm/libsofthsm2.so"\n'
        )
        times = [one_run(config) for _ in range(args.runs)]
    median = statistics.median(times)
    print(
        json.dumps(
            {
                "bench": "tui_start",
                "runs": args.runs,
                "median_s": round(median, 3),
                "min_s": round(min(times), 3),
                "max_s": round(max(times), 3),
                "goal_s": GOAL,
                "meets_goal": median <= GOAL,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
