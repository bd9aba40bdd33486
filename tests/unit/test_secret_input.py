from __future__ import annotations

import os

import pytest

from appliance import secret_input
from appliance.errors import UsageError


def test_read_fd_takes_one_line_without_its_end() -> None:
    r, w = os.pipe()
    os.write(w, b"123456\r\n")
    os.close(w)
    try:
        secret = secret_input.read_fd(r, "the PIN")
    finally:
        os.close(r)
    assert secret == bytearray(b"123456") and isinstance(secret, bytearray)


def test_read_fd_names_a_bad_descriptor() -> None:
    with pytest.raises(UsageError, match="Cannot read the PIN from file descriptor 987"):
        secret_input.read_fd(987, "the PIN")


def test_prompt_without_a_terminal_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(UsageError, match="no terminal") as info:
        secret_input.prompt("PIN", no_terminal="PIN: no terminal here.", hint="use --pin-fd")
    assert info.value.hint == "use --pin-fd"
