"""Backup coverage: which keys no backup holds, and how far ahead keys exist and are covered.

A registry learned in a what-if exercise that its HSM backups did not hold the keys created
after the last backup (automatic ZSK rollovers). The fix is procedural: pre-generate the keys
for a period (say a year of rollovers) in one ceremony and back them up in the same step, so
one backup covers everything that rolls automatically later; and alarm on any key no backup
holds. This module computes that report from two inputs (docs/quorum.md, "Coverage inputs"):

Key inventory (`appliance-key-inventory/1`)::

    {"format": "appliance-key-inventory/1",
     "keys": [{"label": "zsk-2027-01", "created": "2026-12-01T10:00:00Z",
               "active_from": "2027-01-01T00:00:00Z", "active_until": "2027-04-01T00:00:00Z",
               "backed_up_by": ["backup-2026-12"]}]}

    `active_from`, `active_until` and `backed_up_by` are optional.

Backup manifest (`appliance-backup-coverage/1`; any JSON with "created" and a "keys" list
whose items are labels or objects with a "label" is read the same way)::

    {"format": "appliance-backup-coverage/1", "id": "backup-2026-12",
     "created": "2026-12-01T11:00:00Z", "keys": ["ksk-2026", "zsk-2027-01"]}

The HSM layer's own files are read as they are: the output of `appliance hsm inventory
--json` (keys with label, id, created date and "covered" by its "latest_backup") and a backup
directory or its `manifest.json` (format "appliance-hsm-backup"; its signature is checked by
`appliance hsm`, not here). A manifest covers a key when it lists the key's id (or, without
ids, its label) and was made after the key was created (an older manifest with the same
label holds a different, earlier key).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from appliance.analysis.durations import human
from appliance.analysis.errors import InputFormatError

INVENTORY_FORMAT = "appliance-key-inventory/1"
MANIFEST_FORMAT = "appliance-backup-coverage/1"


@dataclass(frozen=True)
class KeyRecord:
    label: str
    created: datetime | None
    active_from: datetime | None = None
    active_until: datetime | None = None
    backed_up_by: tuple[str, ...] = ()
    id: str = ""  # the PKCS#11 CKA_ID in hex, when known: matched before the label


@dataclass(frozen=True)
class BackupRecord:
    id: str
    created: datetime
    labels: frozenset[str]
    key_ids: frozenset[str] = frozenset()


@dataclass(frozen=True)
class KeyCoverage:
    key: KeyRecord
    backups: tuple[str, ...]
    note: str = ""

    @property
    def covered(self) -> bool:
        return bool(self.backups)


@dataclass(frozen=True)
class CoverageReport:
    now: datetime
    keys: tuple[KeyCoverage, ...]
    keys_until: datetime | None  # the last moment some inventoried key is planned to be active
    covered_until: datetime | None  # until when every key that will be needed is backed up
    period: timedelta

    @property
    def uncovered(self) -> list[KeyCoverage]:
        return [k for k in self.keys if not k.covered]

    def advice(self) -> list[str]:
        out: list[str] = []
        if self.uncovered:
            labels = ", ".join(k.key.label for k in self.uncovered)
            out.append(
                f"ALARM: {len(self.uncovered)} key(s) in no backup: {labels}. Losing the HSM "
                "now loses them: hold a backup ceremony before they are needed."
            )
        if self.keys_until is not None:
            ahead = self.keys_until - self.now
            if ahead < self.period:
                out.append(
                    f"Keys exist only {human(ahead)} ahead (until {_fmt(self.keys_until)}): "
                    f"pre-generate the keys for the next {human(self.period)} in one ceremony "
                    "and back them up in the same step, so one backup covers every key that "
                    "rolls automatically later."
                )
        if not out:
            out.append(
                "Every key is in a backup. Keep pre-generating keys for a period and backing "
                "them up once, in the same ceremony."
            )
        return out

    def lines(self) -> list[str]:
        out = [f"{'label':<24} {'created':<20} {'active until':<20} {'age':>9}  backed up by"]
        for k in self.keys:
            until = _fmt(k.key.active_until) if k.key.active_until else "-"
            age = human(self.now - k.key.created).split(" ")[0] if k.key.created else "?"
            by = ", ".join(k.backups) if k.backups else "NONE"
            note = f"  ({k.note})" if k.note else ""
            made = _fmt(k.key.created) if k.key.created else "?"
            out.append(f"{k.key.label:<24} {made:<20} {until:<20} {age:>9}  {by}{note}")
        if self.keys_until is not None:
            out.append(f"keys exist until:   {_fmt(self.keys_until)}")
        if self.covered_until is not None:
            out.append(f"backups cover until: {_fmt(self.covered_until)}")
        out.extend(self.advice())
        return out


def _fmt(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def parse_time(value: Any, where: str, path: Path) -> datetime:
    """ISO 8601 time or date (a date means its midnight, UTC)."""
    if not isinstance(value, str):
        raise InputFormatError(
            f"{path}: {where} must be a time like 2026-12-01T10:00:00Z",
            hint="Write ISO 8601 times in UTC.",
            path=str(path),
        )
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InputFormatError(
            f"{path}: {where} is {value!r}, not an ISO 8601 time",
            hint="Write times like 2026-12-01T10:00:00Z.",
            path=str(path),
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputFormatError(
            f"cannot read {path}: {exc.strerror}", hint="Check the path.", path=str(path)
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputFormatError(
            f"{path}: not valid JSON ({exc})", hint="Fix the file.", path=str(path)
        ) from None


def read_inventory(path: Path) -> list[KeyRecord]:
    doc = _load_json(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise InputFormatError(
            f'{path}: not a key inventory (no "keys" list)',
            hint=f'Write {{"format": "{INVENTORY_FORMAT}", "keys": [...]}}.',
            path=str(path),
        )
    out: list[KeyRecord] = []
    for i, k in enumerate(doc["keys"]):
        where = f"keys[{i}]"
        if not isinstance(k, dict) or not isinstance(k.get("label"), str) or not k["label"]:
            raise InputFormatError(
                f"{path}: {where} has no label", hint="Give each key a label.", path=str(path)
            )
        label = k["label"]
        by = k.get("backed_up_by", [])
        if k.get("covered") is True and isinstance(doc.get("latest_backup"), str):
            by = [*by, doc["latest_backup"]]  # `appliance hsm inventory --json`
        if not isinstance(by, list) or not all(isinstance(b, str) for b in by):
            raise InputFormatError(
                f"{path}: {where} ({label}): backed_up_by must list ids",
                hint='Write "backed_up_by": ["backup-2026-12"].',
                path=str(path),
            )
        created = k.get("created")
        out.append(
            KeyRecord(
                label=label,
                created=None
                if created is None
                else parse_time(created, f"{where} ({label}) created", path),
                active_from=parse_time(k["active_from"], f"{where} active_from", path)
                if "active_from" in k
                else None,
                active_until=parse_time(k["active_until"], f"{where} active_until", path)
                if "active_until" in k
                else None,
                backed_up_by=tuple(by),
                id=str(k.get("id") or ""),
            )
        )
    return out


def read_manifest(path: Path) -> BackupRecord:
    """Our minimal manifest, or the HSM layer's backup (its directory or manifest.json)."""
    if path.is_dir():
        path = path / "manifest.json"
    doc = _load_json(path)
    hsm_backup = isinstance(doc, dict) and isinstance(doc.get("manifest"), dict)
    if hsm_backup:
        doc = doc["manifest"]
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise InputFormatError(
            f'{path}: not a backup manifest (no "keys" list)',
            hint=f'Write {{"format": "{MANIFEST_FORMAT}", ...}}.',
            path=str(path),
        )
    labels: set[str] = set()
    ids: set[str] = set()
    for i, item in enumerate(doc["keys"]):
        label = item.get("label") if isinstance(item, dict) else item
        if isinstance(item, dict) and isinstance(item.get("id"), str):
            ids.add(item["id"])
        if not isinstance(label, str) or not label:
            raise InputFormatError(
                f"{path}: keys[{i}] has no label", hint="List keys by label.", path=str(path)
            )
        labels.add(label)
    created = parse_time(doc.get("created", doc.get("time")), "created", path)
    bid = path.parent.name if hsm_backup else (doc.get("id") or path.stem)
    return BackupRecord(str(bid), created, frozenset(labels), frozenset(ids))


def report(
    keys: Iterable[KeyRecord],
    backups: Iterable[BackupRecord],
    *,
    now: datetime | None = None,
    period: timedelta = timedelta(days=365),
) -> CoverageReport:
    moment = now or datetime.now(UTC)
    manifests = list(backups)
    rows: list[KeyCoverage] = []
    for key in keys:
        holders = list(key.backed_up_by)
        note = ""
        for b in manifests:
            match = key.id in b.key_ids if key.id and b.key_ids else key.label in b.labels
            if match:
                if key.created is None or b.created >= key.created:
                    if b.id not in holders:
                        holders.append(b.id)
                else:
                    note = f"{b.id} holds an older key with this label"
        rows.append(KeyCoverage(key, tuple(holders), "" if holders else note))
    until = [k.active_until for k in keys_of(rows) if k.active_until is not None]
    keys_until = max(until) if until else None
    needed = [r for r in rows if r.key.active_until is None or r.key.active_until > moment]
    gaps = [r.key.active_from or r.key.created or moment for r in needed if not r.covered]
    covered_until = min(gaps) if gaps else keys_until
    return CoverageReport(moment, tuple(rows), keys_until, covered_until, period)


def keys_of(rows: Iterable[KeyCoverage]) -> list[KeyRecord]:
    return [r.key for r in rows]
