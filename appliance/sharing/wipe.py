"""Wiping secrets we hold in bytearrays. Python copies we do not own cannot be wiped; keep
secrets in bytearrays end to end and call `wipe` in `finally` blocks."""

from __future__ import annotations

from collections.abc import Iterable


def wipe(*buffers: bytearray | None) -> None:
    for buf in buffers:
        if buf is not None:
            for i in range(len(buf)):
                buf[i] = 0


def wipe_all(buffers: Iterable[bytearray | None]) -> None:
    wipe(*buffers)
