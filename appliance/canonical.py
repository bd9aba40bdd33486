"""Canonical JSON: one byte string per value, so hashes and signatures are reproducible.

Used for journal entries, manifests, rosters and attestations. Keys sorted, no whitespace,
UTF-8, no floats (a float's text form is not canonical across implementations).
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any


def _reject_floats(value: Any) -> None:
    if isinstance(value, float):
        raise TypeError("canonical JSON holds no floats; use integers or strings")
    if isinstance(value, dict):
        for v in value.values():
            _reject_floats(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _reject_floats(v)


def dumps(value: Any) -> bytes:
    _reject_floats(value)
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def pretty(value: Any) -> bytes:
    """The layout of the signed files a person may read (roster, attestation): one layout
    only, so a reader can refuse any other (a changed space is a changed file)."""
    return json.dumps(value, indent=1, sort_keys=True).encode("utf-8") + b"\n"


def sha256_hex(value: Any) -> str:
    return hashlib.sha256(dumps(value)).hexdigest()


def hex_bytes(text: str) -> bytes:
    """Hex as the appliance writes it (lowercase, nothing else): another spelling of the same
    bytes, such as an upper-case letter, is a change to a signed file and must not pass."""
    value = bytes.fromhex(text)
    if value.hex() != text:
        raise ValueError("hex is not in canonical form (lowercase, no separators)")
    return value


def b64_bytes(text: str) -> bytes:
    """Standard base64 as the appliance writes it: rejects non-zero padding bits too, which
    b64decode alone ignores (two spellings would decode to the same bytes)."""
    value = base64.b64decode(text, validate=True)
    if base64.b64encode(value).decode("ascii") != text:
        raise ValueError("base64 is not in canonical form")
    return value
