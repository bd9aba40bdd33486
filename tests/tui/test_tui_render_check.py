from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_render_check_draws_the_start_screen_and_exits(tmp_path: Path) -> None:
    """What the live image's self-test runs on the console: no terminal, exit 0 when drawn."""
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(
        f'[paths]\nscripts = "{ROOT / "scripts"}"\nmedia = "{tmp_path}"\n'
        f'[hsm]\nmodule = "{tmp_path / "no-module.so"}"\n[airgap]\nrequired = false\n'
    )
    proc = subprocess.run(
        [sys.executable, "-m", "appliance", "--config", str(cfg), "tui", "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "TUI RENDERED: StartScreen at 80x24 with 8 status rows" in proc.stdout
