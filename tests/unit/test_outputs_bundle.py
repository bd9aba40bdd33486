"""The signed bundle: deterministic, verified against a pinned key, checked on the media."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from appliance import canonical, signing
from appliance.outputs import bundle as b
from appliance.outputs.errors import BundleError

HEAD = hashlib.sha256(b"journal").hexdigest()
SCRIPT = hashlib.sha256(b"script").hexdigest()


def make_bundle(
    signer: signing.CeremonySigner,
    artifacts: list[b.Artifact] | None = None,
    ceremony_id: str = "kc-2026-q4",
) -> b.Bundle:
    if artifacts is None:
        artifacts = [
            b.Artifact("skr.xml", b"<skr/>" * 50, "application/xml", "SKR example.com"),
            b.Artifact("ds.txt", b"example.com. IN DS 1 13 2 AB", "text/plain", "DS example.com"),
        ]
    return b.build_bundle(
        ceremony_id=ceremony_id,
        script_sha256=SCRIPT,
        journal_head=HEAD,
        artifacts=artifacts,
        signer=signer,
        created="2026-12-04T16:00:00Z",
        appliance_version="0.1.0",
        image_sha256="c" * 64,
    )


@pytest.fixture(scope="module")
def signer() -> signing.SoftwareSigner:
    return signing.SoftwareSigner()


def test_manifest_describes_every_artifact(signer: signing.SoftwareSigner) -> None:
    bundle = make_bundle(signer)
    body = bundle.manifest.body()
    assert body["ceremony_id"] == "kc-2026-q4"
    assert body["journal_head"] == HEAD
    assert body["script_sha256"] == SCRIPT
    assert body["image_sha256"] == "c" * 64
    assert body["appliance_version"] == "0.1.0"
    skr = body["artifacts"][0]
    assert skr == {
        "name": "skr.xml",
        "label": "SKR example.com",
        "media_type": "application/xml",
        "size": 300,
        "sha256": hashlib.sha256(b"<skr/>" * 50).hexdigest(),
    }


def test_encoding_is_deterministic_and_canonical(signer: signing.SoftwareSigner) -> None:
    one, two = make_bundle(signer), make_bundle(signer)
    assert one.manifest.encode() == two.manifest.encode()
    assert one.manifest.encode() == canonical.dumps(json.loads(one.manifest.encode()))
    assert one.manifest.set_id == two.manifest.set_id
    other = make_bundle(signer, ceremony_id="kc-2027-q1")
    assert other.manifest.set_id != one.manifest.set_id


def test_signed_manifest_verifies_with_the_pinned_key(signer: signing.SoftwareSigner) -> None:
    bundle = make_bundle(signer)
    parsed = b.parse_signed_manifest(bundle.signed.encode(), signer.public_key_der())
    assert parsed == bundle.signed


def test_forged_signature_is_refused(signer: signing.SoftwareSigner) -> None:
    bundle = make_bundle(signer)
    doc = json.loads(bundle.signed.encode())
    sig = bytearray(bytes.fromhex(doc["signature"]["value"]))
    sig[10] ^= 1
    doc["signature"]["value"] = sig.hex()
    with pytest.raises(signing.SignatureInvalid):
        b.parse_signed_manifest(canonical.dumps(doc), signer.public_key_der())


def test_changed_manifest_is_refused(signer: signing.SoftwareSigner) -> None:
    doc = json.loads(make_bundle(signer).signed.encode())
    doc["manifest"]["artifacts"][0]["sha256"] = "0" * 64
    with pytest.raises(signing.SignatureInvalid):
        b.parse_signed_manifest(canonical.dumps(doc), signer.public_key_der())


def test_manifest_signed_by_another_key_is_refused(signer: signing.SoftwareSigner) -> None:
    forged = make_bundle(signing.SoftwareSigner())
    with pytest.raises(signing.SignatureInvalid, match="not by the pinned key"):
        b.parse_signed_manifest(forged.signed.encode(), signer.public_key_der())


def test_unsafe_names_and_bad_hashes_are_refused(signer: signing.SoftwareSigner) -> None:
    for name in ("../etc/passwd", ".hidden", "a/b", "manifest.json", ""):
        with pytest.raises(BundleError, match="safe file name"):
            make_bundle(signer, [b.Artifact(name, b"x")])
    with pytest.raises(BundleError, match="two artifacts"):
        make_bundle(signer, [b.Artifact("a", b"x"), b.Artifact("a", b"y")])
    with pytest.raises(BundleError, match="journal head"):
        b.build_bundle(
            ceremony_id="c", script_sha256=SCRIPT, journal_head="xyz", artifacts=[], signer=signer
        )


def test_media_folder_round_trip_and_flipped_byte(
    signer: signing.SoftwareSigner, tmp_path: Path
) -> None:
    bundle = make_bundle(signer)
    folder = b.write_bundle(bundle, tmp_path)
    assert folder == tmp_path / "kc-2026-q4"
    assert sorted(p.name for p in folder.iterdir()) == ["ds.txt", "manifest.json", "skr.xml"]
    again = b.read_bundle_dir(folder, signer.public_key_der())
    assert again.artifacts == bundle.artifacts

    data = bytearray((folder / "skr.xml").read_bytes())
    data[17] ^= 0x01
    (folder / "skr.xml").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="SKR example.com: SHA-256") as err:
        b.read_bundle_dir(folder, signer.public_key_der())
    assert err.value.fields["problems"] == [
        "SKR example.com: SHA-256 "
        + hashlib.sha256(bytes(data)).hexdigest()[:16]
        + "... does not match the manifest"
    ]
    (folder / "ds.txt").unlink()
    with pytest.raises(BundleError, match="ds.txt is missing"):
        b.read_bundle_dir(folder, signer.public_key_der())


def test_signer_that_signs_wrongly_never_reaches_paper() -> None:
    class Broken:
        def __init__(self) -> None:
            self._inner = signing.SoftwareSigner()

        def public_key_der(self) -> bytes:
            return signing.SoftwareSigner().public_key_der()

        def sign(self, data: bytes) -> bytes:
            return self._inner.sign(data)

    with pytest.raises(signing.SignatureInvalid):
        make_bundle(Broken())
