"""The HSM CLI takes secrets from descriptors (or a no-echo prompt), never from argv."""

from __future__ import annotations

import argparse
import os

import pytest

from appliance.errors import UsageError
from appliance.hsm import cli


def _fd(data: bytes) -> int:
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return r


def test_pin_from_descriptor_drops_the_newline() -> None:
    fd = _fd(b"1234-pin\n")
    try:
        pin = cli._read_fd(fd)
    finally:
        os.close(fd)
    assert pin == bytearray(b"1234-pin") and isinstance(pin, bytearray)


def test_wrapping_key_hex_from_descriptor() -> None:
    fd = _fd(b"00ff" * 16 + b"\n")
    try:
        key = cli._wrapping_key(argparse.Namespace(wrapping_key_fd=fd))
    finally:
        os.close(fd)
    assert key == bytearray(b"\x00\xff" * 16)


@pytest.mark.parametrize("raw", [b"00" * 31, b"zz" * 32, b"00" * 33])
def test_bad_wrapping_key_is_a_usage_error(raw: bytes) -> None:
    fd = _fd(raw)
    try:
        with pytest.raises(UsageError, match="64 hex digits"):
            cli._wrapping_key(argparse.Namespace(wrapping_key_fd=fd))
    finally:
        os.close(fd)


def test_no_pin_option_on_the_command_line() -> None:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    with pytest.raises(SystemExit):
        parser.parse_args(["hsm", "inventory", "--pin", "1234"])
