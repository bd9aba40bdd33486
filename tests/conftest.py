"""Test tiers and the options shared by all of them.

Tiers follow the folders: tests/unit (pure), tests/integration (real pcscd, SoftHSM, Knot,
started by our fixtures), tests/tui, tests/e2e. In CI (CI=true) a missing service or tool
fails the test; on a developer's machine it skips with the reason and the fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins: list[str] = ["tests.support.cups", "tests.support.softhsm", "tests.support.pcsc"]

_TIERS = ("unit", "integration", "tui", "e2e")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--card-serial",
        action="store",
        default=None,
        help="run the card session tests against the physical card with this serial",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        try:
            tier = Path(item.path).relative_to(root).parts[0]
        except ValueError:
            continue
        if tier in _TIERS:
            item.add_marker(getattr(pytest.mark, tier))


@pytest.fixture(autouse=True)
def _keep_the_runners_core_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests that call appliance.cli.main() in process must not lower pytest's own hard core
    limit for good (root in a container may lack the right to raise it again): that broke the
    subprocess test which proves the real CLI sets RLIMIT_CORE to 0."""
    import appliance.cli

    monkeypatch.setattr(appliance.cli, "_no_core_dumps", lambda: None)
