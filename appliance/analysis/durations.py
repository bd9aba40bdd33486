"""Durations as signers write them: ISO 8601 (OpenDNSSEC) and Knot's TIME values.

OpenDNSSEC converts P1M to 31 days and P1Y to 365 days (its duration2time does so, with a
warning that the value is approximate); we do the same so our numbers match the signer's.
Knot TIME is an integer number of seconds with an optional suffix s, m, h, d (Knot 3.2), and
w, M (30 days), y (365 days) in later versions.
"""

from __future__ import annotations

import re
from datetime import timedelta

_ISO = re.compile(
    r"^P(?!$)(?:(?P<Y>\d+)Y)?(?:(?P<MO>\d+)M)?(?:(?P<W>\d+)W)?(?:(?P<D>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<H>\d+)H)?(?:(?P<MI>\d+)M)?(?:(?P<S>\d+)S)?)?$"
)
_ISO_SECONDS = {
    "Y": 365 * 86400,
    "MO": 31 * 86400,
    "W": 7 * 86400,
    "D": 86400,
    "H": 3600,
    "MI": 60,
    "S": 1,
}
_KNOT = re.compile(r"^(?P<n>\d+)(?P<unit>[smhdwMy]?)$")
_KNOT_SECONDS = {
    "": 1,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
    "M": 30 * 86400,
    "y": 365 * 86400,
}


def parse_iso8601(text: str) -> timedelta | None:
    """A duration like P14D, PT2H, P1Y2M3DT4H5M6S, P2W; None when `text` is not one."""
    m = _ISO.match(text.strip())
    if not m:
        return None
    seconds = sum(int(v) * _ISO_SECONDS[g] for g, v in m.groupdict().items() if v)
    return timedelta(seconds=seconds)


def parse_knot_time(text: str) -> timedelta | None:
    """A Knot TIME like 14d, 3600, 90m; None when `text` is not one."""
    m = _KNOT.match(text.strip())
    if not m:
        return None
    return timedelta(seconds=int(m.group("n")) * _KNOT_SECONDS[m.group("unit")])


def human(delta: timedelta) -> str:
    """'2d 22h', '7d', '45m', '-3h' (negative windows are possible with bad policies)."""
    total = int(delta.total_seconds())
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")) if v]
    return sign + (" ".join(parts) if parts else "0s")
