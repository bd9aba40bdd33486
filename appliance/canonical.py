"""Canonical JSON: one byte string per value, so hashes and signatures are reproducible.

Used for journal entries, manifests, rosters and attestations. Keys sorted, no whitespace,
UTF-8, no floats (a float's text form is not canonical across implementations).
"""

from __future__ import annotations

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


def sha256_hex(value: Any) -> str:
    return hashlib.sha256(dumps(value)).hexdigest()
