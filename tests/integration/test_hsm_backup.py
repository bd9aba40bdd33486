"""Backup and restore on SoftHSM: round trip, tampering, wrong key, wrong token, all or nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dns.dnssecalgs
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import pytest

from appliance import canonical, signing
from appliance.hsm import backup, keygen, keys, restore
from appliance.hsm.errors import (
    BackupForAnotherToken,
    BackupTampered,
    HsmError,
    RestoreError,
    TokenNotEmpty,
)
from appliance.hsm.pkcs11_adapter import Session
from tests.support.softhsm import SoftHsm

LABEL = "vault"


@dataclass
class Vault:
    path: Path
    wrapping_key: bytearray
    labels: list[str]
    ceremony_fingerprint: str


@pytest.fixture(scope="module")
def vault(softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vault]:
    """A token with the ceremony key and one key per coverable algorithm, backed up."""
    serial = softhsm.init_token(LABEL)
    wrapping_key = bytearray(os.urandom(32))
    backups_dir = tmp_path_factory.mktemp("vault-backups")
    with softhsm.open(serial=serial) as session:
        ceremony = keygen.generate_ceremony_key(session)
        made = [
            keygen.generate_key(session, 13, role="ksk", zone="example."),
            keygen.generate_key(session, 8, role="zsk", zone="example."),
            keygen.generate_key(session, 14, role="zsk", zone="example."),
            keygen.generate_key(session, 15, role="zsk", zone="example."),
        ]
        result = backup.create_backup(session, wrapping_key, backups_dir)
        labels = [keys.CEREMONY_LABEL] + [m.key.label for m in made[:3]]
        assert sorted(e.label for e in result.backup.entries) == sorted(labels)
        # Ed25519 cannot be wrapped on SoftHSM 2.6.1: named, not silently dropped.
        assert [n.label for n in result.not_covered] == [made[3].key.label]
        assert set(result.locked) == set(labels)
        assert all(not o.extractable for o in session.key_objects() if o.kind != "ed25519")
    softhsm.delete_token(LABEL, serial=serial)  # the token is gone
    yield Vault(result.backup.path, wrapping_key, labels, ceremony.fingerprint())


@pytest.fixture
def fresh(softhsm: SoftHsm) -> Iterator[Session]:
    """A fresh, empty token with the backed-up token's label."""
    serial = softhsm.init_token(LABEL)
    session = softhsm.open(serial=serial)
    yield session
    session.close()
    softhsm.delete_token(LABEL, serial=serial)


def _verify_dnssec(algorithm: int, field: bytes, data: bytes, sig: bytes) -> None:
    rdata = dns.rdtypes.ANY.DNSKEY.DNSKEY(
        dns.rdataclass.IN, dns.rdatatype.DNSKEY, 257, 3, algorithm, field
    )
    dns.dnssecalgs.get_algorithm_cls(algorithm).public_cls.from_dnskey(rdata).verify(sig, data)


def test_restore_into_a_fresh_token_and_every_key_signs(vault: Vault, fresh: Session) -> None:
    result = restore.restore_backup(
        fresh, vault.path, vault.wrapping_key, expected_fingerprint=vault.ceremony_fingerprint
    )
    assert sorted(k.label for k in result.keys) == sorted(vault.labels)
    loaded = backup.load_backup(vault.path)
    for entry in loaded.entries:
        if entry.algorithm is None:
            ceremony = keys.ceremony_key(fresh)
            assert ceremony.public_key_der() == entry.public_key_der
            signing.verify(entry.public_key_der, b"after restore", ceremony.sign(b"after restore"))
            continue
        signer = keys.dnssec_key(fresh, entry.label)
        sig = signer.sign(b"after restore")
        # Verified against the manifest's public key, independently of the adapter.
        field = keys.alg.dnskey_public_key(entry.public_key_der)
        _verify_dnssec(entry.algorithm, field, b"after restore", sig)
        assert signer.record.key_tag(257) == entry.key_tags["257"]
        with pytest.raises(HsmError, match="refuses to reveal"):
            fresh.read_private_value(entry.id)
    restored = {o.label: o for o in fresh.key_objects()}
    assert all(o.sensitive and not o.extractable for o in restored.values())


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def _copy(vault: Vault, tmp_path: Path) -> Path:
    target = tmp_path / vault.path.name
    shutil.copytree(vault.path, target)
    return target


def test_a_flipped_byte_in_any_blob_restores_nothing(
    vault: Vault, fresh: Session, tmp_path: Path
) -> None:
    entries = backup.load_backup(vault.path).entries
    for i, entry in enumerate(entries):
        copy = tmp_path / f"case{i}"
        shutil.copytree(vault.path, copy)
        _flip(copy / entry.blob, 17 + i)
        with pytest.raises(BackupTampered) as info:
            restore.restore_backup(fresh, copy, vault.wrapping_key)
        assert info.value.fields["failed"] == entry.blob
        assert entry.label in info.value.message
        assert fresh.object_count() == 0


@pytest.mark.parametrize("where", ["signature", "label", "blob_sha256", "public_key", "brace"])
def test_a_flipped_byte_in_the_manifest_restores_nothing(
    vault: Vault, fresh: Session, tmp_path: Path, where: str
) -> None:
    copy = _copy(vault, tmp_path)
    manifest = copy / backup.MANIFEST
    raw = manifest.read_bytes()
    doc = json.loads(raw)
    first = doc["manifest"]["keys"][1]
    needle = {
        "signature": doc["signature"][10:20],
        "label": first["label"],
        "blob_sha256": first["blob_sha256"][:12],
        "public_key": first["public_key"][30:40],
        "brace": "{",
    }[where]
    offset = raw.index(needle.encode()) + (0 if where == "brace" else 2)
    _flip(manifest, offset)
    with pytest.raises(BackupTampered) as info:
        restore.restore_backup(fresh, copy, vault.wrapping_key)
    assert info.value.fields["failed"] in ("manifest", "manifest signature")
    assert fresh.object_count() == 0


def test_wrong_wrapping_key_restores_nothing(vault: Vault, fresh: Session) -> None:
    with pytest.raises(RestoreError, match="not the one this backup was made with") as info:
        restore.restore_backup(fresh, vault.path, bytearray(os.urandom(32)))
    assert info.value.fields["failed"] == "wrapping key"
    assert fresh.object_count() == 0


def test_backup_for_another_token_is_refused(vault: Vault, softhsm: SoftHsm) -> None:
    serial = softhsm.init_token("not-the-vault")
    try:
        with softhsm.open(serial=serial) as other:
            with pytest.raises(BackupForAnotherToken, match="'vault', not of 'not-the-vault'"):
                restore.restore_backup(other, vault.path, vault.wrapping_key)
            assert other.object_count() == 0
    finally:
        softhsm.delete_token("not-the-vault", serial=serial)


def test_restore_needs_an_empty_token(vault: Vault, fresh: Session) -> None:
    keygen.generate_key(fresh, 13, role="zsk", zone="live.")
    with pytest.raises(TokenNotEmpty, match="empty token"):
        restore.restore_backup(fresh, vault.path, vault.wrapping_key)
    assert len(fresh.key_objects()) == 1


def test_unknown_ceremony_key_is_refused(vault: Vault, fresh: Session) -> None:
    with pytest.raises(BackupTampered, match="expected"):
        restore.restore_backup(
            fresh, vault.path, vault.wrapping_key, expected_fingerprint="00" * 16
        )
    assert fresh.object_count() == 0


def test_a_blob_that_fails_to_unwrap_mid_restore_leaves_nothing(
    vault: Vault, fresh: Session, tmp_path: Path
) -> None:
    """Hashes and signature pass (re-signed), but the third key's blob is garbage."""
    copy = _copy(vault, tmp_path)
    doc = json.loads((copy / backup.MANIFEST).read_bytes())
    manifest = doc["manifest"]
    victim = manifest["keys"][2]
    garbage = os.urandom(len((copy / victim["blob"]).read_bytes()))
    (copy / victim["blob"]).write_bytes(garbage)
    victim["blob_sha256"] = hashlib.sha256(garbage).hexdigest()
    forger = signing.SoftwareSigner()
    manifest["ceremony_key"]["public_key"] = base64.b64encode(forger.public_key_der()).decode()
    doc["signature"] = forger.sign(canonical.dumps(manifest)).hex()
    (copy / backup.MANIFEST).write_bytes(canonical.dumps(doc))
    with pytest.raises(RestoreError, match=f"'{victim['label']}'.*Nothing was restored") as info:
        restore.restore_backup(fresh, copy, vault.wrapping_key)
    assert info.value.fields["failed"] == victim["label"]
    assert fresh.object_count() == 0
