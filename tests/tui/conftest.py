from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from appliance.config import load_config
from appliance.doctor import CheckResult
from appliance.tui.app import CeremonyApp, create_app

DATA = Path(__file__).resolve().parents[1] / "data"
FIXED_NOW = datetime(2026, 12, 4, 9, 30, 0, tzinfo=UTC)
CHECKS = [
    CheckResult("python", "OK", "Python 3.11"),
    CheckResult("pcscd", "FAIL", "pcscd is not reachable", "Start it: pcscd --foreground"),
    CheckResult("printer", "WARN", "no printer configured", "Set [printer] queue"),
]


@pytest.fixture
def app_factory(tmp_path: Path):  # type: ignore[no-untyped-def]
    def make(console: bool = False) -> CeremonyApp:
        cfg = tmp_path / "appliance.toml"
        cfg.write_text(
            f'[paths]\nscripts = "{DATA / "tui-scripts"}"\nmedia = "{tmp_path}"\n'
            '[hsm]\nmodule = "/usr/lib/softhsm/libsofthsm2.so"\n'
        )
        return create_app(
            load_config(cfg), console=console, checks=lambda: list(CHECKS), clock=lambda: FIXED_NOW
        )

    return make
