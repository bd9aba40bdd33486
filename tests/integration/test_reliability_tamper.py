"""Every single-byte change to a journal, bundle, backup, roster or attestation is detected.

A "flip" replaces one byte with another value: at every position of the signed, structured
part (journal: every byte of the file; bundle and backup: every byte of manifest.json;
roster and attestation: every byte of the JSON file and of the QR text) with a seeded
random non-zero XOR, plus the lowest bit flipped at every position of the roster. For the
large opaque parts (artifact files, wrapped key blobs) a seeded sample of SAMPLE positions
each, since a SHA-256 in the signed manifest guards them all alike.
"Detected" means the reader refuses the file with the layer's error, or, for the journal,
that `verify` no longer reports a clean, fully signed, ended ceremony.

The figures are printed; docs/reliability.md records them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance import signing
from appliance.errors import ApplianceError

SEED = 1212
SAMPLE = 64


def flips(size: int, rng: random.Random, low_bit: bool = False) -> Iterator[tuple[int, int]]:
    for pos in range(size):
        yield pos, rng.randrange(1, 256)
        if low_bit:
            yield pos, 1


def sample(size: int, rng: random.Random) -> Iterator[tuple[int, int]]:
    for pos in sorted(rng.sample(range(size), min(SAMPLE, size))):
        yield pos, rng.randrange(1, 256)


def flipped(data: bytes, pos: int, xor: int) -> bytes:
    out = bytearray(data)
    out[pos] ^= xor
    return bytes(out)


def count_undetected(
    data: bytes, positions: Iterator[tuple[int, int]], detects: Callable[[bytes], bool]
) -> tuple[int, list[int]]:
    tried, missed = 0, []
    for pos, xor in positions:
        tried += 1
        if not detects(flipped(data, pos, xor)):
            missed.append(pos)
    return tried, missed


def refused(call: Callable[[], object]) -> bool:
    try:
        call()
    except ApplianceError:
        return True
    return False


# --- journal -----------------------------------------------------------------------------


def test_every_byte_flip_of_a_journal_is_detected(tmp_path: Path) -> None:
    from appliance.ceremony import journal
    from tests.unit.test_fuzz_inputs import journal_bytes, signer

    data = journal_bytes()
    public = signer().public_key_der()
    path = tmp_path / "journal.jsonl"
    path.write_bytes(data)
    clean = journal.verify(path, public)
    assert clean.state.outcome == "ended" and clean.unsigned_tail == 0

    def detects(blob: bytes) -> bool:
        path.write_bytes(blob)
        try:
            v = journal.verify(path, public)
        except ApplianceError:
            return True
        return bool(
            v.state.torn
            or v.unsigned_tail
            or v.state.outcome != "ended"
            or len(v.signatures) != len(clean.signatures)
        )

    tried, missed = count_undetected(data, flips(len(data), random.Random(SEED)), detects)
    print(f"\njournal: {tried} flips over all {len(data)} bytes, {len(missed)} undetected")
    assert missed == []


# --- bundle ------------------------------------------------------------------------------


def test_every_byte_flip_of_a_bundle_manifest_and_a_sample_of_its_files_is_detected(
    tmp_path: Path,
) -> None:
    from appliance.outputs import bundle as bundle_mod
    from tests.unit.test_fuzz_inputs import signer

    artifacts = [
        bundle_mod.Artifact("skr.xml", random.Random(1).randbytes(20000), "application/xml"),
        bundle_mod.Artifact("ds.txt", b". IN DS 20326 8 2 e06d44b8\n", "text/plain"),
    ]
    bundle = bundle_mod.build_bundle(
        ceremony_id="tamper",
        script_sha256="0" * 64,
        journal_head="1" * 64,
        artifacts=artifacts,
        signer=signer(),
        created="2026-12-04T10:00:00Z",
        appliance_version="0",
        image_sha256="2" * 64,
    )
    folder = bundle_mod.write_bundle(bundle, tmp_path / "media")
    public = signer().public_key_der()
    bundle_mod.read_bundle_dir(folder, public)
    rng = random.Random(SEED)
    report = []
    for name in ["manifest.json", "skr.xml", "ds.txt"]:
        path = folder / name
        original = path.read_bytes()
        positions = (
            flips(len(original), rng)
            if name == "manifest.json" or len(original) < 200
            else sample(len(original), rng)
        )

        def detects(blob: bytes, path: Path = path) -> bool:
            path.write_bytes(blob)
            return refused(lambda: bundle_mod.read_bundle_dir(folder, public))

        tried, missed = count_undetected(original, positions, detects)
        path.write_bytes(original)
        report.append(f"{name}: {tried} of {len(original)} bytes, {len(missed)} undetected")
        assert missed == [], (name, missed[:10])
    print("\nbundle: " + "; ".join(report))


# --- roster and attestation --------------------------------------------------------------


def test_every_byte_flip_of_a_roster_and_an_attestation_is_detected() -> None:
    from datetime import UTC, datetime

    from appliance.sharing import attest
    from appliance.sharing import roster as rosters
    from tests.unit.test_fuzz_inputs import roster_world, signer

    stored, roster, att_json = roster_world()
    public = signer().public_key_der()
    rosters.loads(stored, trusted_public_key=public)
    tried, missed = count_undetected(
        stored,
        flips(len(stored), random.Random(SEED), True),
        lambda b: refused(lambda: rosters.loads(b, trusted_public_key=public)),
    )
    print(f"\nroster: {tried} flips over all {len(stored)} bytes, {len(missed)} undetected")
    assert missed == []  # JSON layout and hex case included: one spelling only

    when = datetime(2026, 3, 2, tzinfo=UTC)
    attest.verify(roster, attest.parse(att_json), now=when)
    qr = attest.parse(att_json).qr_text().encode()
    for name, data in (("attestation JSON", att_json), ("attestation QR text", qr)):
        tried, missed = count_undetected(
            data,
            flips(len(data), random.Random(SEED)),
            lambda b: refused(lambda: attest.verify(roster, attest.parse(b), now=when)),
        )
        print(f"{name}: {tried} flips over all {len(data)} bytes, {len(missed)} undetected")
        assert missed == []


# --- HSM backup (SoftHSM) ----------------------------------------------------------------


@pytest.fixture
def backup_dir(softhsm: Any, tmp_path: Path) -> Iterator[tuple[Path, bytes]]:
    from appliance.hsm import keygen
    from appliance.hsm.backup import create_backup

    label = "tamper-backup"
    softhsm.init_token(label)
    try:
        with softhsm.open(label) as session:
            ceremony = keygen.generate_ceremony_key(session)
            keygen.generate_key(session, 13, role="zsk", zone="example.")
            keygen.generate_key(session, 8, role="ksk", zone="example.")
            result = create_backup(session, bytearray(range(32)), tmp_path / "backups", lock=False)
            yield result.backup.path, ceremony.public_key_der()
    finally:
        softhsm.delete_token(label)


def test_every_byte_flip_of_a_backup_manifest_and_a_sample_of_its_blobs_is_detected(
    backup_dir: tuple[Path, bytes],
) -> None:
    from appliance.hsm.backup import load_backup

    folder, public = backup_dir
    load_backup(folder, expected_ceremony_key_der=public)
    rng = random.Random(SEED)
    files = [folder / "manifest.json", *sorted((folder / "blobs").iterdir())]
    report = []
    for path in files:
        original = path.read_bytes()
        positions = (
            flips(len(original), rng)
            if path.name == "manifest.json"
            else sample(len(original), rng)
        )

        def detects(blob: bytes, path: Path = path) -> bool:
            path.write_bytes(blob)
            return refused(lambda: load_backup(folder, expected_ceremony_key_der=public))

        tried, missed = count_undetected(original, positions, detects)
        path.write_bytes(original)
        report.append(f"{path.name}: {tried} of {len(original)} bytes")
        assert missed == [], (path.name, missed[:10])
    print("\nbackup: " + "; ".join(report) + "; 0 undetected")


def test_helpers_sanity() -> None:
    """The flip helper really changes a byte, and the sampler is seeded."""
    assert flipped(b"abc", 1, 1) == b"acc"
    assert list(sample(1000, random.Random(3))) == list(sample(1000, random.Random(3)))
    assert signing.ALGORITHM


def _respell_signature(doc: bytes, field: bytes) -> bytes:
    """The same signature bytes in upper-case hex at the first letter of `field`'s value."""
    start = doc.index(field) + len(field)
    pos = next(i for i in range(start, len(doc)) if doc[i : i + 1] in b"abcdef")
    return doc[:pos] + doc[pos : pos + 1].upper() + doc[pos + 1 :]


def test_another_spelling_of_the_same_signature_is_a_change(
    backup_dir: tuple[Path, bytes], tmp_path: Path
) -> None:
    """Upper-case hex, or base64 with non-zero padding bits, decode to the same bytes; a random
    byte flip hits them now and then (XOR 0x20 on a hex letter), so they are pinned here."""
    import base64

    from appliance.hsm.backup import load_backup
    from appliance.outputs import bundle as bundle_mod
    from tests.unit.test_fuzz_inputs import signer

    folder, public = backup_dir
    manifest = folder / "manifest.json"
    manifest.write_bytes(_respell_signature(manifest.read_bytes(), b'"signature":"'))
    assert refused(lambda: load_backup(folder, expected_ceremony_key_der=public))

    bundle = bundle_mod.build_bundle(
        ceremony_id="respell",
        script_sha256="0" * 64,
        journal_head="1" * 64,
        artifacts=[bundle_mod.Artifact("ds.txt", b". IN DS 1 8 2 00\n", "text/plain")],
        signer=signer(),
        created="2026-12-04T10:00:00Z",
        appliance_version="0",
        image_sha256="2" * 64,
    )
    out = bundle_mod.write_bundle(bundle, tmp_path / "media")
    key = signer().public_key_der()
    path = out / "manifest.json"
    original = path.read_bytes()
    path.write_bytes(_respell_signature(original, b'"value":"'))
    assert refused(lambda: bundle_mod.read_bundle_dir(out, key))

    text = base64.b64encode(key).decode()
    assert text.endswith("==")  # 91-byte SPKI: the last data character carries 4 padding bits
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    other = text[:-3] + alphabet[alphabet.index(text[-3]) ^ 1] + "=="
    assert base64.b64decode(other) == key
    path.write_bytes(original.replace(text.encode(), other.encode()))
    assert refused(lambda: bundle_mod.read_bundle_dir(out, key))
    path.write_bytes(original)
    bundle_mod.read_bundle_dir(out, key)
