"""Asking for a service or tool: skip with the fix locally, fail in CI."""

from __future__ import annotations

import os
import shutil

import pytest


def strict() -> bool:
    return os.environ.get("CI") == "true" or os.environ.get("APPLIANCE_STRICT") == "1"


def need(available: bool, what: str, fix: str) -> None:
    if available:
        return
    message = f"{what} is not available. {fix}"
    if strict():
        pytest.fail(message)
    pytest.skip(message)


def need_tool(name: str, package: str) -> str:
    path = shutil.which(name)
    need(
        path is not None,
        f"the tool '{name}'",
        f"Install the Debian package {package} (make setup).",
    )
    assert path is not None
    return path
