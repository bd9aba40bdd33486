"""Secrets typed by a person or handed over by a program, into bytearrays we can wipe.

The CLIs take PINs and keys from a file descriptor (scripts, tests: `--pin-fd N`) or from a
no-echo prompt; never from argv or a file name. A descriptor is read straight into a buffer
that is wiped after the secret is copied out; getpass returns an immutable str, which is
dropped at once (stated, not hidden: a terminal prompt cannot do better in Python).
"""

from __future__ import annotations

import getpass
import os
import sys

from appliance.errors import UsageError

MAX_SECRET = 1024


def read_fd(fd: int, what: str = "the secret") -> bytearray:
    """One line from descriptor `fd`, without its line end."""
    buf = bytearray(MAX_SECRET)
    try:
        n = os.readv(fd, [buf])
    except OSError as exc:
        raise UsageError(f"Cannot read {what} from file descriptor {fd}: {exc.strerror}.") from None
    while n and buf[n - 1] in (0x0A, 0x0D):
        n -= 1
    secret = bytearray(buf[:n])
    buf[:] = bytes(len(buf))
    return secret


def prompt(label: str, *, no_terminal: str, hint: str) -> bytearray:
    """Ask on the terminal without echo; `no_terminal` and `hint` say what to do without one."""
    if not sys.stdin.isatty():
        raise UsageError(no_terminal, hint=hint)
    text = getpass.getpass(f"{label}: ")  # a str we cannot wipe; dropped at once
    secret = bytearray(text.encode("utf-8"))
    del text
    return secret
