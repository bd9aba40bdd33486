"""Backup coverage: which keys would be lost with the token, and for how long they have been.

A key is covered when the latest verified backup of this token (signed by its ceremony key)
holds a blob for it. Everything else is listed with its age; a ceremony step or
`appliance hsm coverage` fails while the list is not empty.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from appliance.hsm import inventory as inv
from appliance.hsm.pkcs11_adapter import Session


@dataclass(frozen=True)
class Uncovered:
    label: str
    id: bytes
    type: str
    age_days: int | None
    reason: str


@dataclass(frozen=True)
class CoverageReport:
    token: str
    backup: str | None
    backup_created: str | None
    covered: tuple[str, ...]
    uncovered: tuple[Uncovered, ...]
    skipped: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.uncovered

    def lines(self) -> list[str]:
        head = (
            f"Token '{self.token}': latest backup {self.backup} ({self.backup_created})"
            if self.backup
            else f"Token '{self.token}': no verified backup found"
        )
        out = [head, f"  covered: {len(self.covered)} key(s)"]
        for u in self.uncovered:
            age = "age unknown" if u.age_days is None else f"{u.age_days} day(s) old"
            out.append(f"  UNCOVERED {u.label} ({u.type}, id {u.id.hex()[:16]}, {age}): {u.reason}")
        for s in self.skipped:
            out.append(f"  ignored backup {s}")
        return out


def check(
    session: Session,
    backups_dir: Path,
    *,
    backup_path: Path | None = None,
    today: dt.date | None = None,
) -> CoverageReport:
    day = today or dt.datetime.now(dt.UTC).date()
    inventory = inv.inventory(session, backups_dir, backup_path=backup_path)
    latest = inventory.latest
    not_covered_reasons = {}
    if latest is not None:
        for item in latest.manifest.get("not_covered", []):
            not_covered_reasons[item["id"]] = f"the backup could not take it: {item['reason']}"
    uncovered = []
    for entry in inventory.entries:
        if entry.covered:
            continue
        if latest is None:
            reason = "no backup of this token exists"
        else:
            reason = not_covered_reasons.get(
                entry.key.id.hex(), "created or changed after the latest backup"
            )
        uncovered.append(
            Uncovered(
                entry.key.label, entry.key.id, entry.key.spec.type_name, entry.age_days(day), reason
            )
        )
    return CoverageReport(
        token=inventory.token,
        backup=latest.path.name if latest else None,
        backup_created=latest.created if latest else None,
        covered=tuple(e.key.label for e in inventory.entries if e.covered),
        uncovered=tuple(uncovered),
        skipped=inventory.skipped,
    )
