"""Times and durations as KSR/SKR files and policy files write them (always UTC)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_ISO_DURATION = re.compile(
    r"^P(?:(?P<w>\d+)W)?(?:(?P<d>\d+)D)?(?:T(?:(?P<h>\d+)H)?(?:(?P<m>\d+)M)?(?:(?P<s>\d+)S)?)?$"
)
_SHORT = re.compile(r"^(?P<n>\d+)\s*(?P<u>[smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """ISO 8601 (P21D, PT0S, P1DT12H) or short (90m, 14d, 3600s) durations; ValueError else."""
    text = text.strip()
    m = _ISO_DURATION.match(text)
    if m and text not in ("P", "PT") and not text.endswith("T"):
        parts = {k: int(v) if v else 0 for k, v in m.groupdict().items()}
        return timedelta(
            weeks=parts["w"],
            days=parts["d"],
            hours=parts["h"],
            minutes=parts["m"],
            seconds=parts["s"],
        )
    m = _SHORT.match(text)
    if m:
        return timedelta(seconds=int(m.group("n")) * _UNIT[m.group("u")])
    raise ValueError(f"not a duration: {text!r} (use e.g. P21D, PT1H, 14d, 90m)")


def format_duration(value: timedelta) -> str:
    """ISO 8601 duration as IANA files write it (P21D, PT0S, P1DT2H)."""
    seconds = int(value.total_seconds())
    if seconds < 0:
        raise ValueError("negative duration")
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    clock += f"{secs}S" if secs else ""
    if clock:
        out += "T" + clock
    return out if out != "P" else "PT0S"


def parse_datetime(text: str) -> datetime:
    """xsd:dateTime as IANA writes it; no zone means UTC. ValueError when malformed."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    value = datetime.fromisoformat(text)
    if "T" not in text:
        raise ValueError("a date and a time are needed")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def format_datetime(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def epoch(value: datetime) -> int:
    return int(value.timestamp())


def human(value: timedelta) -> str:
    """Short display: 21d, 1d2h, 90m."""
    seconds = int(value.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{days}d" if days else "",
        f"{hours}h" if hours else "",
        f"{minutes}m" if minutes else "",
        f"{secs}s" if secs else "",
    ]
    return sign + ("".join(parts) or "0s")
