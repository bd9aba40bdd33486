"""Attendance read from ceremony journals (the engine's JSON Lines, appliance/ceremony/journal).

The first entry of a journal (kind "start") records `data.attendance`: seat -> person's name
for everyone seated (CO1 -> "Alice", RKSH3 -> "Bob", CA, IW, SSC1 ...). A journal says who
*came*; it does not say who was *summoned*. So, for each credential family (CO and RKSH by
default), every person seen in that family in any journal of the directory is counted as
summoned to every ceremony that seated that family. Where that is wrong (a holder who joined
later, officers summoned in rotation), put an attendance file (JSON or CSV, see
`attendance`) with the same ceremony id next to the journals: it replaces what the journal
implies for that ceremony.

The ceremony id of a journal is "<script id>@<start time>". The chain is not verified here
(the analysis layer must not depend on the engine): run `appliance verify journal` for that.
Only the start entry is needed, so an unfinished or torn journal still counts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from appliance.analysis.errors import InputFormatError
from appliance.analysis.estimates import Attendance

#: Seats whose people hold credentials: crypto officers and recovery key shareholders.
HOLDER_FAMILIES = ("CO", "RKSH")
_SEAT = re.compile(r"^([A-Z]+)(\d+)$")


@dataclass(frozen=True)
class JournalCeremony:
    """Who sat where at one ceremony, from its journal's start entry."""

    id: str
    time: str
    seats: dict[str, str]  # seat -> person (the seat itself when no name was given)
    path: str


def read_journal(path: Path) -> JournalCeremony:
    try:
        with path.open("rb") as fh:
            first = fh.readline()
    except OSError as exc:
        raise InputFormatError(
            f"cannot read {path}: {exc.strerror}", hint="Check the path.", path=str(path)
        ) from None
    try:
        entry = json.loads(first.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise InputFormatError(
            f"{path}: line 1 is not a journal entry (not JSON)",
            hint="Give ceremony journals (journal.jsonl from a workspace).",
            path=str(path),
        ) from None
    if not isinstance(entry, dict) or entry.get("kind") != "start" or entry.get("seq") != 0:
        raise InputFormatError(
            f"{path}: line 1 is not the start entry of a ceremony journal (seq 0, kind start)",
            hint="Give ceremony journals (journal.jsonl from a workspace).",
            path=str(path),
        )
    data = entry.get("data")
    seats = data.get("attendance") if isinstance(data, dict) else None
    if not isinstance(seats, dict):
        raise InputFormatError(
            f"{path}: the start entry has no attendance",
            hint="This journal predates attendance records.",
            path=str(path),
        )
    script = data.get("script") if isinstance(data, dict) else None
    script_id = script.get("id") if isinstance(script, dict) else None
    time = str(entry.get("time", ""))
    cid = f"{script_id or path.parent.name}@{time}"
    clean = {str(seat): (str(name).strip() or str(seat)) for seat, name in seats.items()}
    return JournalCeremony(cid, time, clean, str(path))


def attendance(
    ceremonies: Sequence[JournalCeremony], families: Iterable[str] = HOLDER_FAMILIES
) -> list[Attendance]:
    """Attendance records implied by journals (see the module docstring for the rule)."""
    wanted = set(families)
    seen: dict[str, set[str]] = {}
    came: list[tuple[JournalCeremony, dict[str, set[str]]]] = []
    for c in ceremonies:
        per: dict[str, set[str]] = {}
        for seat, person in c.seats.items():
            m = _SEAT.match(seat)
            if m and m.group(1) in wanted:
                per.setdefault(m.group(1), set()).add(person)
                seen.setdefault(m.group(1), set()).add(person)
        came.append((c, per))
    out: list[Attendance] = []
    for c, per in came:
        for family, present in sorted(per.items()):
            for person in sorted(seen[family]):
                out.append(
                    Attendance(c.id, person, person in present, date=c.time[:10], set_name=family)
                )
    return out
