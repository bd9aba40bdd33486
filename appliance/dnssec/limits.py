"""Input limits: configurable, so a registry's large KSR is not refused by a fixed cap."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputLimits:
    #: Largest file accepted (a 1-year Knot KSR with hourly slots is ~4 MB; kskm's 1 MiB cap
    #: refuses such files).
    max_bytes: int = 32 * 1024 * 1024
    #: Deepest XML nesting (an IANA KSR needs 6).
    max_depth: int = 12
    #: Most XML elements or Knot records in one file.
    max_items: int = 2_000_000
    #: Most bundles (slots) in one file.
    max_bundles: int = 100_000
