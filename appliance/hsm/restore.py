"""Restore a backup into an empty token: verify everything first, then all or nothing.

Order: the manifest signature and every blob hash (load_backup), the expected ceremony key,
the token (same label, empty, mechanisms present), the wrapping key's check value. Only then
does anything touch the token. Each key is unwrapped as a token object (sensitive and
non-extractable: the wrapping key's CKA_UNWRAP_TEMPLATE forces it), its public key object is
recreated from the manifest, and it must sign data that verifies with the manifest's public
key. Any failure removes every object this restore created.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from pathlib import Path

from appliance import signing
from appliance.hsm import algorithms as alg
from appliance.hsm import backup as backups
from appliance.hsm.errors import (
    BackupForAnotherToken,
    BackupTampered,
    HsmError,
    RestoreError,
    TokenNotEmpty,
)
from appliance.hsm.pkcs11_adapter import ObjectRef, Session

_PROOF_DATA = b"appliance hsm restore: the restored key signs"


@dataclass(frozen=True)
class Restored:
    label: str
    id: bytes
    type: str
    key_tags: dict[str, int]


@dataclass(frozen=True)
class RestoreResult:
    backup: backups.Backup
    keys: tuple[Restored, ...]
    ceremony_key_fingerprint: str


def restore_backup(
    session: Session,
    path: Path,
    wrapping_key: bytearray,
    *,
    expected_fingerprint: str | None = None,
) -> RestoreResult:
    """Restore the backup at `path` into the (empty) token of `session`.

    `expected_fingerprint` is the ceremony key fingerprint from the printed backup record
    (hex SHA-256 of its public key, or a prefix of at least 16 hex digits); without it the
    caller must show `ceremony_key_fingerprint` to the witnesses.
    """
    loaded = backups.load_backup(path)
    fingerprint = signing.fingerprint(loaded.ceremony_key_der)
    if expected_fingerprint is not None:
        wanted = expected_fingerprint.lower().replace(":", "").replace(" ", "")
        if len(wanted) < 16 or not fingerprint.startswith(wanted):
            raise BackupTampered(
                f"The backup is signed by ceremony key {fingerprint[:16]}..., not by the "
                f"expected {wanted[:16]}.",
                hint="Check the fingerprint on the printed backup record; restore nothing "
                "from an unknown key.",
                failed="ceremony key",
            )
    info = session.info
    if loaded.token_label != info.label:
        raise BackupForAnotherToken(
            f"Backup {loaded.path.name} is of token '{loaded.token_label}', not of '{info.label}'.",
            hint="Initialise the new token with the label of the backed-up token, or pick "
            "the backup of this token.",
            backup_token=loaded.token_label,
            token=info.label,
        )
    count = session.object_count()
    if count:
        raise TokenNotEmpty(
            f"Token '{info.label}' already holds {count} object(s); a restore needs an empty "
            "token.",
            hint="Initialise a fresh token for the restore; never mix restored and live keys.",
            objects=count,
        )
    if not hmac.compare_digest(backups.key_check_value(wrapping_key), loaded.key_check):
        raise RestoreError(
            "The wrapping key is not the one this backup was made with.",
            hint="Rebuild the wrapping key from the recovery shareholders of this backup's "
            "share set; nothing was restored.",
            failed="wrapping key",
        )
    specs = {e.id: e.spec for e in loaded.entries}
    for spec in specs.values():
        session.require(spec)
    created: list[ObjectRef] = []
    done: list[Restored] = []
    current = ""
    try:
        with session.wrapping_key(wrapping_key) as wrapping:
            for entry in loaded.entries:
                current = entry.label
                spec = specs[entry.id]
                blob = loaded.blob(entry)
                priv = session.unwrap(
                    wrapping,
                    blob,
                    spec,
                    label=entry.label,
                    key_id=entry.id,
                    store=True,
                    created=entry.created,
                )
                created.append(priv)
                created.append(
                    session.create_public(
                        entry.public_key_der,
                        label=entry.label,
                        key_id=entry.id,
                        created=entry.created,
                    )
                )
                token_input = alg.prepare(spec)(_PROOF_DATA)
                signature = session.sign_with(priv, spec, token_input)
                alg.verifier(entry.public_key_der)(token_input, signature)
                done.append(Restored(entry.label, entry.id, entry.type, entry.key_tags))
    except HsmError as exc:
        for ref in reversed(created):
            session.destroy(ref)
        raise RestoreError(
            f"Restoring key '{current}' failed: {exc.message} Nothing was restored: every "
            "object this restore created was removed.",
            hint=exc.hint or "Check the backup and the wrapping key, then repeat.",
            failed=current,
            cause=type(exc).__name__,
        ) from None
    except BaseException:
        for ref in reversed(created):
            session.destroy(ref)
        raise
    return RestoreResult(loaded, tuple(done), fingerprint)
