"""The token's keys as the operator reads them, with what the latest backup covers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.hsm import backup as backups
from appliance.hsm import keys
from appliance.hsm.errors import BackupForAnotherToken, BackupTampered, KeyNotFound
from appliance.hsm.pkcs11_adapter import Session


@dataclass(frozen=True)
class Entry:
    key: keys.KeyRecord
    #: The latest backup holds this key (same id and public key).
    covered: bool

    def age_days(self, today: dt.date) -> int | None:
        return (today - self.key.created).days if self.key.created else None

    def to_json(self, today: dt.date) -> dict[str, Any]:
        k = self.key
        return {
            "label": k.label,
            "id": k.id.hex(),
            "role": k.role,
            "type": k.spec.type_name,
            "algorithm": k.algorithm,
            "public_key": k.dnskey_public_key.hex() if k.algorithm else k.public_key_der.hex(),
            "key_tag_257": k.key_tag(257),
            "key_tag_256": k.key_tag(256),
            "created": k.created.isoformat() if k.created else None,
            "age_days": self.age_days(today),
            "extractable": k.extractable,
            "covered": self.covered,
        }


@dataclass(frozen=True)
class Inventory:
    token: str
    entries: tuple[Entry, ...]
    latest: backups.Backup | None
    #: Backup directories that were not considered, each with the reason.
    skipped: tuple[str, ...]


def inventory(session: Session, backups_dir: Path, *, backup_path: Path | None = None) -> Inventory:
    """Every key on the token and whether the latest backup (or `backup_path`) covers it."""
    records = [keys.KeyRecord.from_object(o) for o in session.key_objects()]
    ceremony = next((r for r in records if r.label == keys.CEREMONY_LABEL), None)
    skipped: list[str] = []
    latest: backups.Backup | None = None
    if backup_path is not None:
        latest = backups.load_backup(backup_path)
        if latest.token_label != session.info.label:
            raise BackupForAnotherToken(
                f"Backup {latest.path.name} is of token '{latest.token_label}', not of "
                f"'{session.info.label}'.",
                hint="Name a backup of this token.",
                backup_token=latest.token_label,
            )
        if ceremony is None or latest.ceremony_key_der != ceremony.public_key_der:
            raise BackupTampered(
                f"Backup {latest.path.name} is not signed by the ceremony key of token "
                f"'{session.info.label}'.",
                hint="Name a backup this token's ceremony key signed.",
                failed="ceremony key",
            )
    elif ceremony is not None:
        found, skipped = backups.list_backups(
            backups_dir, session.info.label, ceremony.public_key_der
        )
        latest = found[-1] if found else None
    entries = []
    for record in records:
        entry = latest.entry_for(record.id) if latest else None
        covered = entry is not None and entry.public_key_der == record.public_key_der
        entries.append(Entry(record, covered))
    return Inventory(session.info.label, tuple(entries), latest, tuple(skipped))


def require_ceremony_key(inv: Inventory) -> None:
    if not any(e.key.label == keys.CEREMONY_LABEL for e in inv.entries):
        raise KeyNotFound(
            f"Token '{inv.token}' has no ceremony key, so no backup can be verified.",
            hint="Generate it in the hsm-init ceremony (appliance hsm keygen --ceremony-key).",
        )
