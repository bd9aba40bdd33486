"""HSM backups: every private key wrapped under the shareholders' key, a signed manifest.

A backup is a directory `<token>-<UTC time>/` holding `manifest.json` and `blobs/<id>.bin`.
`manifest.json` is canonical JSON `{"manifest": {...}, "signature": hex}`; the signature is
the ceremony key's (appliance.signing format) over the canonical bytes of "manifest". The
manifest names the token, the time, the wrapping mechanism and a check value of the wrapping
key, and per key its label, id, type, public key, key tags and the SHA-256 of its blob.

The directory is written under a temporary name, fsync'd and renamed into place: a crash
leaves either no backup or a whole one. Every blob is proven before the manifest is signed:
it is unwrapped into a session object and must sign data that verifies with the key's public
key. Keys no longer extractable (locked by an earlier backup, or restored) are carried
forward from the latest verified backup, after the same proof under the current wrapping key.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import atomic, canonical, media, signing
from appliance.hsm import algorithms as alg
from appliance.hsm import keys
from appliance.hsm.errors import BackupError, BackupTampered, HsmError
from appliance.hsm.pkcs11_adapter import WRAP_MECHANISM_NAME, ObjectRef, Session

FORMAT = "appliance-hsm-backup"
VERSION = 1
MANIFEST = "manifest.json"
_KCV_CONTEXT = b"appliance hsm backup wrapping key check v1"
_PROOF_DATA = b"appliance hsm backup: this blob restores a key that signs"


@dataclass(frozen=True)
class BackupEntry:
    label: str
    id: bytes
    type: str
    algorithm: int | None
    public_key_der: bytes
    key_tags: dict[str, int]
    created: dt.date | None
    blob: str
    blob_sha256: str
    carried_from: str | None = None

    @property
    def spec(self) -> alg.KeySpec:
        return alg.spec_from_public_key(self.public_key_der, ceremony=self.algorithm is None)

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "id": self.id.hex(),
            "type": self.type,
            "algorithm": self.algorithm,
            "public_key": base64.b64encode(self.public_key_der).decode("ascii"),
            "key_tags": self.key_tags,
            "created": self.created.isoformat() if self.created else None,
            "blob": self.blob,
            "blob_sha256": self.blob_sha256,
            "carried_from": self.carried_from,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> BackupEntry:
        created = raw["created"]
        return cls(
            label=str(raw["label"]),
            id=bytes.fromhex(raw["id"]),
            type=str(raw["type"]),
            algorithm=raw["algorithm"],
            public_key_der=base64.b64decode(raw["public_key"], validate=True),
            key_tags={str(k): int(v) for k, v in raw["key_tags"].items()},
            created=dt.date.fromisoformat(created) if created else None,
            blob=str(raw["blob"]),
            blob_sha256=str(raw["blob_sha256"]),
            carried_from=raw.get("carried_from"),
        )


@dataclass(frozen=True)
class Backup:
    """A backup whose signature and blob hashes were verified."""

    path: Path
    manifest: dict[str, Any]
    entries: tuple[BackupEntry, ...]
    ceremony_key_der: bytes

    @property
    def token_label(self) -> str:
        return str(self.manifest["token"]["label"])

    @property
    def created(self) -> str:
        return str(self.manifest["created"])

    @property
    def sequence(self) -> int:
        """Backups of a token count up: the latest is the highest (clocks may be wrong)."""
        return int(self.manifest["sequence"])

    @property
    def key_check(self) -> str:
        return str(self.manifest["wrapping"]["key_check"])

    def blob(self, entry: BackupEntry) -> bytes:
        """The blob, read again and checked again: the media may change after load_backup."""
        try:
            data = media.read_file(self.path / entry.blob, MAX_BACKUP_FILE)
        except media.Refused as exc:
            data, why = b"", exc.reason
        else:
            why = "changed since the backup was verified"
        if not data or not hmac.compare_digest(hashlib.sha256(data).hexdigest(), entry.blob_sha256):
            raise BackupTampered(
                f"Blob {entry.blob} of key '{entry.label}' in {self.path.name} {why}.",
                hint="Use another copy of this backup.",
                path=str(self.path),
                failed=entry.blob,
                label=entry.label,
            )
        return data

    def entry_for(self, key_id: bytes) -> BackupEntry | None:
        return next((e for e in self.entries if e.id == key_id), None)


@dataclass(frozen=True)
class NotCovered:
    label: str
    id: bytes
    type: str
    reason: str


@dataclass(frozen=True)
class BackupResult:
    backup: Backup
    covered_ids: frozenset[bytes]
    not_covered: tuple[NotCovered, ...]
    locked: tuple[str, ...] = field(default=())

    @property
    def complete(self) -> bool:
        return not self.not_covered


def key_check_value(wrapping_key: bytearray) -> str:
    """A check value of the wrapping key: tells a wrong key apart before any unwrap."""
    return hmac.new(wrapping_key, _KCV_CONTEXT, hashlib.sha256).hexdigest()[:32]


def _tags(record_algorithm: int | None, dnskey: bytes) -> dict[str, int]:
    if record_algorithm is None:
        return {}
    return {str(f): alg.key_tag(f, record_algorithm, dnskey) for f in (257, 256)}


def prove_blob(
    session: Session, wrapping: ObjectRef, blob: bytes, public_key_der: bytes, spec: alg.KeySpec
) -> None:
    """Unwrap `blob` as a session object and show that it signs for `public_key_der`."""
    ref = session.unwrap(
        wrapping, blob, spec, label="appliance-backup-proof", key_id=b"proof", store=False
    )
    try:
        token_input = alg.prepare(spec)(_PROOF_DATA)
        alg.verifier(public_key_der)(token_input, session.sign_with(ref, spec, token_input))
    finally:
        session.destroy(ref)


def create_backup(
    session: Session,
    wrapping_key: bytearray,
    backups_dir: Path,
    *,
    lock: bool = True,
    now: dt.datetime | None = None,
) -> BackupResult:
    """Back up every key of the token into a new directory under `backups_dir`.

    `wrapping_key` (32 bytes) stays the caller's: we wipe only the copies we make. With
    `lock`, every key wrapped in this backup becomes non-extractable once the backup is on
    disk (later backups carry its blob forward).
    """
    ceremony = keys.ceremony_key(session)
    when = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(microsecond=0)
    records = [keys.KeyRecord.from_object(o) for o in session.key_objects()]
    previous = latest_backup(backups_dir, session.info.label, ceremony.public_key_der())
    kcv = key_check_value(wrapping_key)
    blobs: dict[str, bytes] = {}
    entries: list[BackupEntry] = []
    not_covered: list[NotCovered] = []
    wrapped_now: list[keys.KeyRecord] = []
    with session.wrapping_key(wrapping_key) as wrapping:
        for record in records:
            carried_from = None
            if record.spec.kind == "ed25519" and not session.can_wrap_ed25519():
                not_covered.append(
                    NotCovered(
                        record.label,
                        record.id,
                        record.spec.type_name,
                        f"token '{session.info.label}' cannot wrap ed25519 keys",
                    )
                )
                continue
            try:
                if record.extractable:
                    blob = session.wrap(wrapping, record.id)
                else:
                    blob, carried_from = _carry(previous, record, kcv)
                prove_blob(session, wrapping, blob, record.public_key_der, record.spec)
            except HsmError as exc:
                not_covered.append(
                    NotCovered(record.label, record.id, record.spec.type_name, exc.message)
                )
                continue
            name = f"blobs/{record.id.hex()}.bin"
            blobs[name] = blob
            if carried_from is None:
                wrapped_now.append(record)
            entries.append(
                BackupEntry(
                    label=record.label,
                    id=record.id,
                    type=record.spec.type_name,
                    algorithm=record.spec.algorithm,
                    public_key_der=record.public_key_der,
                    key_tags=_tags(record.spec.algorithm, record.dnskey_public_key),
                    created=record.created,
                    blob=name,
                    blob_sha256=hashlib.sha256(blob).hexdigest(),
                    carried_from=carried_from,
                )
            )
    info = session.info
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "token": {
            "label": info.label,
            "serial": info.serial,
            "model": info.model,
            "manufacturer": info.manufacturer,
        },
        "created": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sequence": (previous.sequence + 1) if previous else 1,
        "previous": previous.path.name if previous else None,
        "wrapping": {"mechanism": WRAP_MECHANISM_NAME, "key_check": kcv},
        "ceremony_key": {
            "fingerprint": ceremony.fingerprint(),
            "public_key": base64.b64encode(ceremony.public_key_der()).decode("ascii"),
        },
        "keys": [e.to_json() for e in entries],
        "not_covered": [
            {"label": n.label, "id": n.id.hex(), "type": n.type, "reason": n.reason}
            for n in not_covered
        ],
    }
    signature = ceremony.sign(canonical.dumps(manifest))
    document = canonical.dumps({"manifest": manifest, "signature": signature.hex()})
    path = _write(backups_dir, f"{_safe(info.label)}-{when:%Y%m%dT%H%M%SZ}", document, blobs)
    locked: list[str] = []
    if lock:
        for record in wrapped_now:
            session.lock(record.id)
            locked.append(record.label)
    written = load_backup(path)
    return BackupResult(
        backup=written,
        covered_ids=frozenset(e.id for e in entries),
        not_covered=tuple(not_covered),
        locked=tuple(locked),
    )


def _carry(previous: Backup | None, record: keys.KeyRecord, kcv: str) -> tuple[bytes, str]:
    entry = previous.entry_for(record.id) if previous else None
    if previous is None or entry is None or entry.public_key_der != record.public_key_der:
        raise BackupError(
            "the key is not extractable and no earlier backup of this token holds it",
            hint="It cannot be backed up any more; plan its replacement.",
        )
    if previous.key_check != kcv:
        raise BackupError(
            f"the key is not extractable and the backup that holds it ({previous.path.name}) "
            "was made with another wrapping key",
        )
    return previous.blob(entry), previous.path.name


def _safe(label: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label) or "token"


def _write(backups_dir: Path, name: str, document: bytes, blobs: dict[str, bytes]) -> Path:
    backups_dir = Path(backups_dir)
    backups_dir.mkdir(parents=True, exist_ok=True)
    final = backups_dir / name
    for n in range(2, 100):
        if not final.exists():
            break
        final = backups_dir / f"{name}-{n:02d}"
    name = final.name
    tmp = backups_dir / f".{name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        (tmp / "blobs").mkdir(parents=True)
        for rel, data in blobs.items():
            atomic.write_bytes(tmp / rel, data, mode=0o600)
        atomic.write_bytes(tmp / MANIFEST, document, mode=0o644)
        atomic.fsync_dir(tmp / "blobs")
        os.rename(tmp, final)
        atomic.fsync_dir(backups_dir)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BackupError(
            f"Cannot write the backup to {backups_dir}: {exc.strerror or exc}.",
            hint="Check the medium (space, write protection) and repeat the backup.",
        ) from None
    return final


#: Largest manifest or blob read from a backup medium (a wrapped RSA-4096 key is ~2.4 KB).
MAX_BACKUP_FILE = 16 * 1024 * 1024


def load_backup(path: Path, *, expected_ceremony_key_der: bytes | None = None) -> Backup:
    """Read a backup and verify the manifest signature and every blob's SHA-256.

    Raises BackupTampered naming the first thing that does not match.
    """
    path = Path(path)
    manifest_path = path / MANIFEST
    try:
        media.require_folder(path)
        raw = media.read_file(manifest_path, MAX_BACKUP_FILE)
    except media.Refused as exc:
        raise BackupError(
            f"Cannot read the backup: {exc}.",
            hint="Name a backup directory (it holds manifest.json and blobs/).",
            path=str(path),
        ) from None
    try:
        doc = json.loads(raw)
        manifest = doc["manifest"]
        signature = canonical.hex_bytes(doc["signature"])
        if canonical.dumps(doc) != raw:
            raise ValueError("not canonical")
        if manifest["format"] != FORMAT or manifest["version"] != VERSION:
            raise BackupError(
                f"{manifest_path} is {manifest['format']} version {manifest['version']}; "
                f"this appliance reads {FORMAT} version {VERSION}.",
                hint="Use the appliance release that wrote the backup.",
                path=str(path),
            )
        ceremony_der = base64.b64decode(manifest["ceremony_key"]["public_key"], validate=True)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise BackupTampered(
            f"{manifest_path} is damaged: it is not the manifest the appliance wrote.",
            hint="Use another copy of this backup; do not restore from this one.",
            path=str(path),
            failed="manifest",
        ) from None
    if expected_ceremony_key_der is not None and ceremony_der != expected_ceremony_key_der:
        raise BackupTampered(
            f"{path.name} is signed by ceremony key {signing.fingerprint(ceremony_der)[:16]}, "
            f"not by {signing.fingerprint(expected_ceremony_key_der)[:16]}.",
            hint="Check the fingerprint on the printed backup record; use the right backup.",
            path=str(path),
            failed="ceremony key",
        )
    try:
        signing.verify(ceremony_der, canonical.dumps(manifest), signature)
    except signing.SignatureInvalid:
        raise BackupTampered(
            f"The manifest signature of {path.name} does not verify: the manifest was changed.",
            hint="Use another copy of this backup; do not restore from this one.",
            path=str(path),
            failed="manifest signature",
        ) from None
    try:
        entries = tuple(BackupEntry.from_json(e) for e in manifest["keys"])
        for field_path in (("token", "label"), ("wrapping", "key_check"), ("created",)):
            value: Any = manifest
            for part in field_path:
                value = value[part]
            if not isinstance(value, str):
                raise TypeError(".".join(field_path))
        if not isinstance(manifest["sequence"], int):
            raise TypeError("sequence")
    except (ValueError, KeyError, TypeError):
        raise BackupTampered(
            f"The manifest of {path.name} is signed but malformed.",
            hint="Report it: the appliance wrote a manifest it cannot read.",
            path=str(path),
            failed="manifest",
        ) from None
    for entry in entries:
        if not (path / entry.blob).resolve().is_relative_to(path.resolve()):
            raise BackupTampered(
                f"Blob path {entry.blob} leaves the backup directory.",
                path=str(path),
                failed=entry.blob,
            )
    try:  # before any blob is read: no link, nothing the manifest does not list
        media.check_folder(path, [MANIFEST, "blobs/", *(e.blob for e in entries)])
    except media.Refused as exc:
        raise BackupTampered(
            f"The backup {exc}.", hint=exc.hint, path=str(path), failed=exc.reason
        ) from None
    for entry in entries:
        blob_path = path / entry.blob
        try:
            digest = hashlib.sha256(media.read_file(blob_path, MAX_BACKUP_FILE)).hexdigest()
        except media.Refused as exc:
            raise BackupTampered(
                f"Blob {entry.blob} of key '{entry.label}' in {path.name} {exc.reason}.",
                hint="Use another copy of this backup.",
                path=str(path),
                failed=entry.blob,
                label=entry.label,
            ) from None
        if not hmac.compare_digest(digest, entry.blob_sha256):
            raise BackupTampered(
                f"Blob {entry.blob} of key '{entry.label}' does not match its SHA-256 in the "
                "manifest: it was changed or damaged.",
                hint="Use another copy of this backup; nothing was restored.",
                path=str(path),
                failed=entry.blob,
                label=entry.label,
            )
    return Backup(path, manifest, entries, ceremony_der)


def list_backups(
    backups_dir: Path, token_label: str, ceremony_key_der: bytes
) -> tuple[list[Backup], list[str]]:
    """Verified backups of this token signed by this ceremony key, oldest first; and the
    directories that were skipped, each with the reason."""
    found: list[Backup] = []
    skipped: list[str] = []
    base = Path(backups_dir)
    if not base.is_dir():
        return found, skipped
    for child in sorted(base.iterdir()):
        if child.name.startswith(".") or not (child / MANIFEST).exists():
            continue
        try:
            loaded = load_backup(child, expected_ceremony_key_der=ceremony_key_der)
        except BackupError as exc:
            skipped.append(f"{child.name}: {exc.message}")
            continue
        if loaded.token_label == token_label:
            found.append(loaded)
    found.sort(key=lambda b: (b.sequence, b.created, b.path.name))
    return found, skipped


def latest_backup(backups_dir: Path, token_label: str, ceremony_key_der: bytes) -> Backup | None:
    found, _ = list_backups(backups_dir, token_label, ceremony_key_der)
    return found[-1] if found else None


def remove_backup(path: Path) -> None:
    """Delete a backup directory (tests and the operator's clean-up, never automatic)."""
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(path)
