"""Backup manifests read strictly: signature, blob hashes, damage named precisely."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from appliance import canonical
from appliance.hsm import backup
from appliance.hsm.errors import BackupTampered
from appliance.hsm.keys import check_label, dnssec_label, role_of
from appliance.signing import SoftwareSigner


def _make(folder: Path, signer: SoftwareSigner) -> Path:
    folder.mkdir()
    (folder / "blobs").mkdir()
    blob = b"\x01" * 40
    (folder / "blobs/aa.bin").write_bytes(blob)
    manifest = {
        "format": backup.FORMAT,
        "version": backup.VERSION,
        "token": {"label": "t", "serial": "1", "model": "m", "manufacturer": "x"},
        "created": "2026-01-01T00:00:00Z",
        "sequence": 1,
        "previous": None,
        "wrapping": {"mechanism": "CKM_AES_KEY_WRAP_PAD", "key_check": "00" * 16},
        "ceremony_key": {
            "fingerprint": "",
            "public_key": base64.b64encode(signer.public_key_der()).decode(),
        },
        "keys": [
            {
                "label": "k",
                "id": "aa",
                "type": "ec-p256",
                "algorithm": 13,
                "public_key": base64.b64encode(signer.public_key_der()).decode(),
                "key_tags": {"257": 1, "256": 2},
                "created": "2026-01-01",
                "blob": "blobs/aa.bin",
                "blob_sha256": hashlib.sha256(blob).hexdigest(),
                "carried_from": None,
            }
        ],
        "not_covered": [],
    }
    sig = signer.sign(canonical.dumps(manifest))
    (folder / "manifest.json").write_bytes(
        canonical.dumps({"manifest": manifest, "signature": sig.hex()})
    )
    return folder


def test_valid_manifest_loads(tmp_path: Path) -> None:
    signer = SoftwareSigner()
    loaded = backup.load_backup(_make(tmp_path / "b", signer))
    assert loaded.token_label == "t"
    assert [e.label for e in loaded.entries] == ["k"]
    assert loaded.entries[0].id == b"\xaa"


def test_flipped_blob_byte_is_named(tmp_path: Path) -> None:
    path = _make(tmp_path / "b", SoftwareSigner())
    blob = bytearray((path / "blobs/aa.bin").read_bytes())
    blob[7] ^= 1
    (path / "blobs/aa.bin").write_bytes(bytes(blob))
    with pytest.raises(BackupTampered, match="blobs/aa.bin of key 'k'") as info:
        backup.load_backup(path)
    assert info.value.fields["failed"] == "blobs/aa.bin"


def test_changed_manifest_value_breaks_the_signature(tmp_path: Path) -> None:
    path = _make(tmp_path / "b", SoftwareSigner())
    doc = json.loads((path / "manifest.json").read_bytes())
    doc["manifest"]["keys"][0]["label"] = "l"
    (path / "manifest.json").write_bytes(canonical.dumps(doc))
    with pytest.raises(BackupTampered, match="signature") as info:
        backup.load_backup(path)
    assert info.value.fields["failed"] == "manifest signature"


def test_damaged_manifest_bytes_are_reported(tmp_path: Path) -> None:
    path = _make(tmp_path / "b", SoftwareSigner())
    raw = bytearray((path / "manifest.json").read_bytes())
    raw[0] ^= 0x20
    (path / "manifest.json").write_bytes(bytes(raw))
    with pytest.raises(BackupTampered, match="damaged"):
        backup.load_backup(path)


def test_other_ceremony_key_is_refused(tmp_path: Path) -> None:
    path = _make(tmp_path / "b", SoftwareSigner())
    with pytest.raises(BackupTampered, match="ceremony key"):
        backup.load_backup(path, expected_ceremony_key_der=SoftwareSigner().public_key_der())


def test_blob_path_may_not_leave_the_backup(tmp_path: Path) -> None:
    signer = SoftwareSigner()
    path = _make(tmp_path / "b", signer)
    doc = json.loads((path / "manifest.json").read_bytes())
    doc["manifest"]["keys"][0]["blob"] = "../outside.bin"
    doc["signature"] = signer.sign(canonical.dumps(doc["manifest"])).hex()
    (path / "manifest.json").write_bytes(canonical.dumps(doc))
    with pytest.raises(BackupTampered, match="leaves the backup"):
        backup.load_backup(path)


def test_key_check_value_depends_on_the_key() -> None:
    a = backup.key_check_value(bytearray(32))
    b = backup.key_check_value(bytearray(b"\x01" * 32))
    assert a != b and len(a) == 32


def test_label_conventions() -> None:
    import datetime as dt

    label = dnssec_label("Example.COM.", "ksk", 13, dt.date(2027, 1, 1))
    assert label == "example.com-ksk-a13-20270101"
    assert role_of(label) == "ksk"
    assert role_of("appliance-ceremony-key") == "ceremony"
    assert dnssec_label(".", "zsk", 8, dt.date(2027, 1, 1)) == "root-zsk-a8-20270101"
    with pytest.raises(Exception, match="not a usable key label"):
        check_label("bad label with spaces")
