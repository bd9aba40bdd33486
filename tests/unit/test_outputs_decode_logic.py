"""Verifier logic on frame texts (no images): what is missing, set aside or rejected."""

from __future__ import annotations

import json

import pytest

from appliance import canonical, signing
from appliance.outputs import bundle as b
from appliance.outputs import decode, frames, sheet
from appliance.outputs.errors import DecodeError
from tests.unit.test_outputs_bundle import make_bundle


@pytest.fixture(scope="module")
def signer() -> signing.SoftwareSigner:
    return signing.SoftwareSigner()


def _big_bundle(signer: signing.CeremonySigner) -> b.Bundle:
    skr = bytes(range(256)) * 45  # 11,520 bytes: 13 frames at v25-M
    return make_bundle(
        signer,
        [
            b.Artifact("skr.xml", skr, "application/xml", "SKR example.com"),
            b.Artifact("ds.txt", b"example.com. IN DS 1 13 2 AB", "text/plain", "DS example.com"),
        ],
    )


def _collect(texts: list[str]) -> frames.Collector:
    collector = frames.Collector()
    collector.add_texts(texts, "scan")
    return collector


def test_complete_set_in_any_order_verifies(signer: signing.SoftwareSigner) -> None:
    bundle = _big_bundle(signer)
    texts = [t for _, t in sheet.frame_texts(bundle)]
    result = decode.assemble(_collect(texts[::-1]), signer.public_key_der())
    assert result.complete
    assert [a.data for a in result.verified] == [a.data for a in bundle.artifacts]


def test_missing_frames_are_named(signer: signing.SoftwareSigner) -> None:
    bundle = _big_bundle(signer)
    labelled = sheet.frame_texts(bundle)
    skr = [t for label, t in labelled if label.startswith("SKR")]
    count = len(skr)
    assert count >= 10
    dropped = {skr[3], skr[8]}
    result = decode.assemble(
        _collect([t for _, t in labelled if t not in dropped]), signer.public_key_der()
    )
    assert result.missing == [f"SKR example.com: frames 4 and 9 of {count} missing"]
    assert [a.name for a in result.verified] == ["ds.txt"]
    assert not result.complete


def test_missing_manifest_stops_everything(signer: signing.SoftwareSigner) -> None:
    labelled = sheet.frame_texts(_big_bundle(signer))
    texts = [t for label, t in labelled if not label.startswith("Manifest")]
    with pytest.raises(DecodeError, match="manifest is incomplete"):
        decode.assemble(_collect(texts), signer.public_key_der())


def test_frames_of_another_set_are_set_aside(signer: signing.SoftwareSigner) -> None:
    ours = [t for _, t in sheet.frame_texts(_big_bundle(signer))]
    other_bundle = make_bundle(signer, ceremony_id="kc-2027-q1")
    theirs = [t for _, t in sheet.frame_texts(other_bundle)]
    result = decode.assemble(_collect(theirs[:2] + ours), signer.public_key_der())
    assert result.complete
    assert any(
        f"2 frame(s) of set {other_bundle.manifest.set_id}" in n and "set aside" in n
        for n in result.notes
    )


def test_forged_manifest_signature_rejects_everything(signer: signing.SoftwareSigner) -> None:
    bundle = _big_bundle(signer)
    doc = json.loads(bundle.signed.encode())
    doc["signature"]["value"] = ("00" * 63) + "01"
    forged = canonical.dumps(doc)
    set_id = bundle.manifest.set_id
    texts = [f.text() for f in frames.split(forged, set_id, 0, 1451)]
    texts += [t for label, t in sheet.frame_texts(bundle) if not label.startswith("Manifest")]
    with pytest.raises(signing.SignatureInvalid):
        decode.assemble(_collect(texts), signer.public_key_der())


def test_artifact_changed_after_signing_is_rejected(signer: signing.SoftwareSigner) -> None:
    bundle = _big_bundle(signer)
    flipped = bytearray(bundle.artifacts[0].data)
    flipped[1000] ^= 0x40
    tampered = b.Bundle(
        bundle.signed,
        (b.Artifact("skr.xml", bytes(flipped), "application/xml", "SKR example.com"),
         bundle.artifacts[1]),
    )  # fmt: skip
    texts = [t for _, t in sheet.frame_texts(tampered)]
    result = decode.assemble(_collect(texts), signer.public_key_der())
    assert [a.name for a in result.verified] == ["ds.txt"]
    assert len(result.rejected) == 1
    assert result.rejected[0].startswith("SKR example.com: SHA-256")


def test_set_id_must_match_the_manifest(signer: signing.SoftwareSigner) -> None:
    bundle = _big_bundle(signer)
    texts = [f.text() for f in frames.split(bundle.signed.encode(), "AAAA", 0, 1451)]
    with pytest.raises(DecodeError, match="belongs to set"):
        decode.assemble(_collect(texts), signer.public_key_der())


@pytest.mark.parametrize(
    ("missing", "count", "text"),
    [
        ([4], 12, "frame 4 of 12 missing"),
        ([4, 9], 12, "frames 4 and 9 of 12 missing"),
        ([2, 4, 9], 12, "frames 2, 4 and 9 of 12 missing"),
        ([1, 5, 6, 7, 8, 11], 12, "frames 1, 5-8 and 11 of 12 missing"),
    ],
)
def test_describe_missing(missing: list[int], count: int, text: str) -> None:
    assert decode.describe_missing(missing, count) == text


def test_no_frames_at_all() -> None:
    with pytest.raises(DecodeError, match="no ceremony QR frames"):
        decode.assemble(frames.Collector(), b"")
