"""Hostile media: links, devices, FIFOs, huge files, path traversal, unexpected files.

Every ceremony input (KSR, zones file, roster, any file read aloud) enters through one door,
Workspace.copy_input (ctx.load_input): it must refuse a symbolic link, a directory, a FIFO
(which would block the step forever), a device (/dev/zero would fill memory) and a file over
MAX_INPUT_BYTES, before any byte is used, and a ceremony step reading such an input fails
with that message, not a traceback. The stand-alone readers (`appliance ksr`, the roster,
bundles read back from the media, HSM backups given to a restore, scans given to `appliance
decode`) go through appliance.media and refuse the same things; bundles and backups also
refuse names and blob paths that leave their folder (even when the manifest carrying them is
validly signed), links in place of their files, and any file their signed manifest does not
list, before a listed file is read. Scans are checked by content, pixels and pages before
a decoder sees them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from appliance import canonical
from appliance.ceremony.workspace import MAX_INPUT_BYTES, Workspace
from appliance.errors import ApplianceError, CeremonyError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def media(tmp_path: Path) -> Path:
    m = tmp_path / "media"
    m.mkdir()
    (m / "good.txt").write_bytes(b"a KSR\n")
    (tmp_path / "secret-of-the-appliance").write_bytes(b"not for the media\n")
    (m / "link.txt").symlink_to(tmp_path / "secret-of-the-appliance")
    (m / "folder").mkdir()
    os.mkfifo(m / "fifo")
    with open(m / "huge.bin", "wb") as f:
        f.truncate(MAX_INPUT_BYTES + 1)  # sparse: costs no disk
    return m


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("link.txt", "symbolic link"),
        ("folder", "not a regular file"),
        ("fifo", "not a regular file"),
        ("huge.bin", "larger than"),
        ("missing.txt", "Cannot read"),
    ],
)
def test_workspace_refuses_hostile_inputs(
    media: Path, tmp_path: Path, name: str, says: str
) -> None:
    ws = Workspace(tmp_path / "ws")
    ws.ensure()
    with pytest.raises(CeremonyError, match=says) as refused:
        ws.copy_input("ksr", media / name)
    assert refused.value.hint
    assert not ws.input_path("ksr").exists(), "nothing half-copied"


def test_workspace_refuses_a_device() -> None:
    ws_root = Path(os.environ.get("TMPDIR", "/tmp")) / f"rel-dev-{os.getpid()}"
    ws = Workspace(ws_root)
    ws.ensure()
    with pytest.raises(CeremonyError, match="not a regular file"):
        ws.copy_input("ksr", Path("/dev/zero"))
    assert ws.copy_input("ok", Path(__file__)).size == Path(__file__).stat().st_size


def test_a_ceremony_step_reading_a_linked_input_fails_cleanly(media: Path, tmp_path: Path) -> None:
    """The mini ceremony's hash.readaloud step given a link: the action fails with the
    reason (the headless operator aborts), no traceback, the appliance file not copied."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    (tmp_path / "root/sys/class/net/lo").mkdir(parents=True)
    (tmp_path / "config.toml").write_text(
        '[hsm]\nmodule = "/usr/lib/softhsm/libsofthsm2.so"\n[airgap]\nrequired = true\n'
    )
    (tmp_path / "answers.toml").write_text(
        '[attendance]\nCA = "Alice"\nIW = "Ian"\nCO1 = "Carol"\nCO2 = "Chris"\n'
        f'[inputs]\ndoc = "{media / "link.txt"}"\n'
    )
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance",
            "--config",
            str(tmp_path / "config.toml"),
            "run",
            str(ROOT / "tests/data/ceremony/mini.toml"),
            "--answers",
            str(tmp_path / "answers.toml"),
            "--signing-key",
            str(tmp_path / "key.pem"),
            "--airgap-root",
            str(tmp_path / "root"),
            "--workspace",
            str(tmp_path / "ws"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "symbolic link" in out and "Traceback" not in out, out[-2000:]
    assert not (tmp_path / "ws/inputs/doc").exists()
    assert b"not for the media" not in (tmp_path / "ws/journal.jsonl").read_bytes()


# --- bundles read back from the media ---------------------------------------------------


def _bundle(tmp_path: Path) -> tuple[Path, bytes, Any]:
    from appliance.outputs import bundle as bundle_mod
    from tests.unit.test_fuzz_inputs import signer

    b = bundle_mod.build_bundle(
        ceremony_id="media",
        script_sha256="0" * 64,
        journal_head="1" * 64,
        artifacts=[bundle_mod.Artifact("skr.txt", b"signed key response\n", "text/plain")],
        signer=signer(),
        created="2026-12-04T10:00:00Z",
        appliance_version="0",
        image_sha256="2" * 64,
    )
    return bundle_mod.write_bundle(b, tmp_path / "media"), signer().public_key_der(), b


def test_a_signed_manifest_naming_a_path_outside_its_folder_is_refused(tmp_path: Path) -> None:
    from appliance.outputs import bundle as bundle_mod
    from tests.unit.test_fuzz_inputs import signer

    folder, public, _ = _bundle(tmp_path)
    doc = json.loads((folder / "manifest.json").read_bytes())
    for evil in ("../../etc/passwd", "/etc/passwd", "sub/skr.txt", ".hidden", "manifest.json"):
        doc["manifest"]["artifacts"][0]["name"] = evil
        doc["signature"] = signer().sign(canonical.dumps(doc["manifest"])).hex()
        raw = canonical.dumps(doc)
        with pytest.raises(ApplianceError, match="safe file name|signature|manifest"):
            bundle_mod.parse_signed_manifest(raw, public)


def test_a_linked_artifact_or_folder_is_refused_before_reading(tmp_path: Path) -> None:
    from appliance.outputs import bundle as bundle_mod

    folder, public, _ = _bundle(tmp_path)
    original = (folder / "skr.txt").read_bytes()
    (tmp_path / "elsewhere").write_bytes(original)  # the same bytes: still refused
    (folder / "skr.txt").unlink()
    (folder / "skr.txt").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ApplianceError, match=r"symbolic link\(s\) in place of files: 'skr.txt'"):
        bundle_mod.read_bundle_dir(folder, public)
    (folder / "skr.txt").unlink()
    (folder / "skr.txt").write_bytes(original)

    (tmp_path / "linked-bundle").symlink_to(folder)
    with pytest.raises(ApplianceError, match="linked-bundle is a symbolic link"):
        bundle_mod.read_bundle_dir(tmp_path / "linked-bundle", public)
    assert bundle_mod.read_bundle_dir(folder, public).artifacts


def test_unexpected_files_in_a_bundle_folder_are_refused_by_name(tmp_path: Path) -> None:
    from appliance.outputs import bundle as bundle_mod

    folder, public, made = _bundle(tmp_path)
    (folder / bundle_mod.SHEET_NAME).write_bytes(b"%PDF-1.4 the printed form\n")
    assert [a.name for a in bundle_mod.read_bundle_dir(folder, public).artifacts] == [
        "skr.txt"
    ]  # the appliance's own sheet beside the bundle is no stranger
    (folder / "evil.sh").write_bytes(b"#!/bin/sh\nrm -rf /\n")
    (folder / "sub").mkdir()
    with pytest.raises(ApplianceError, match="did not write there: 'evil.sh', 'sub'") as err:
        bundle_mod.read_bundle_dir(folder, public)
    assert "Copy the folder again" in err.value.hint
    (folder / "evil.sh").unlink()
    (folder / "sub").rmdir()

    # a write cut short by a power cut leaves a temporary file: the next write of the
    # bundle removes it, so the reader never has to tolerate strangers
    (folder / ".skr.txt.ab12cd_9.tmp").write_bytes(b"half")
    with pytest.raises(ApplianceError, match=r"'\.skr\.txt\.ab12cd_9\.tmp'"):
        bundle_mod.read_bundle_dir(folder, public)
    bundle_mod.write_bundle(made, tmp_path / "media")
    assert not (folder / ".skr.txt.ab12cd_9.tmp").exists()
    assert bundle_mod.read_bundle_dir(folder, public).artifacts


# --- HSM backups given to a restore ------------------------------------------------------


@pytest.fixture
def backup(softhsm: Any, tmp_path: Path) -> Any:
    from appliance.hsm import keygen
    from appliance.hsm.backup import create_backup

    label = "media-backup"
    softhsm.init_token(label)
    try:
        with softhsm.open(label) as session:
            ceremony = keygen.generate_ceremony_key(session)
            keygen.generate_key(session, 13, role="zsk", zone="example.")
            made = create_backup(session, bytearray(range(32)), tmp_path / "backups", lock=False)
            yield made.backup.path, ceremony
    finally:
        softhsm.delete_token(label)


def test_backup_blob_paths_and_links_cannot_leave_the_backup(backup: Any, tmp_path: Path) -> None:
    from appliance.hsm.backup import load_backup

    folder, ceremony = backup
    public = ceremony.public_key_der()
    load_backup(folder, expected_ceremony_key_der=public)
    raw = (folder / "manifest.json").read_bytes()
    doc = json.loads(raw)
    blob = folder / doc["manifest"]["keys"][0]["blob"]
    original = blob.read_bytes()

    # a blob link pointing outside the backup folder, even to the same bytes
    (tmp_path / "outside.bin").write_bytes(original)
    blob.unlink()
    blob.symlink_to(tmp_path / "outside.bin")
    with pytest.raises(ApplianceError, match="leaves the backup directory"):
        load_backup(folder, expected_ceremony_key_der=public)
    blob.unlink()
    blob.symlink_to(folder / "manifest.json")  # inside the folder: a link all the same
    with pytest.raises(ApplianceError, match=r"symbolic link\(s\) in place of files"):
        load_backup(folder, expected_ceremony_key_der=public)
    blob.unlink()
    blob.write_bytes(original)

    # the backup folder itself, or its blobs/ folder, a link
    (tmp_path / "linked-backup").symlink_to(folder)
    with pytest.raises(ApplianceError, match="linked-backup is a symbolic link"):
        load_backup(tmp_path / "linked-backup", expected_ceremony_key_der=public)
    (folder / "blobs").rename(tmp_path / "real-blobs")
    (folder / "blobs").symlink_to(tmp_path / "real-blobs")
    with pytest.raises(ApplianceError, match="leaves the backup directory"):
        load_backup(folder, expected_ceremony_key_der=public)
    (folder / "blobs").unlink()
    (tmp_path / "real-blobs").rename(folder / "blobs")

    # a validly signed manifest naming ../ paths (a ceremony key misused): still refused
    doc["manifest"]["keys"][0]["blob"] = "../../outside.bin"
    doc["signature"] = ceremony.sign(canonical.dumps(doc["manifest"])).hex()
    (folder / "manifest.json").write_bytes(canonical.dumps(doc))
    with pytest.raises(ApplianceError, match="leaves the backup directory|blob"):
        load_backup(folder, expected_ceremony_key_der=public)
    (folder / "manifest.json").write_bytes(raw)

    # a file the manifest does not list, in blobs/ or beside the manifest: refused by name
    for extra in (folder / "blobs" / "extra.bin", folder / "notes.txt"):
        extra.write_bytes(b"\0" * 100)
        with pytest.raises(ApplianceError, match=f"did not write there: '{extra.name}'"):
            load_backup(folder, expected_ceremony_key_der=public)
        extra.unlink()
    loaded = load_backup(folder, expected_ceremony_key_der=public)
    assert len(loaded.entries) == 2 and loaded.blob(loaded.entries[0]) == original

    # the media changed between the verification and the restore's read: refused again
    blob.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    with pytest.raises(ApplianceError, match="changed since the backup was verified"):
        loaded.blob(loaded.entries[0])
    blob.unlink()
    blob.symlink_to(tmp_path / "outside.bin")
    with pytest.raises(ApplianceError, match="is a symbolic link"):
        loaded.blob(loaded.entries[0])


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("fifo", "not a regular file"),
        ("folder", "not a regular file"),
        ("huge.bin", "limit"),
        ("link.txt", "symbolic link"),
    ],
)
def test_the_ksr_reader_refuses_fifos_folders_huge_files_and_links(
    media: Path, name: str, says: str
) -> None:
    """`appliance ksr inspect|check|sign` read the media directly (formats.read_limited):
    a FIFO used to block open() forever."""
    from appliance.dnssec import formats
    from appliance.dnssec.limits import InputLimits

    with pytest.raises(ApplianceError, match=says):
        formats.load_document(media / name, InputLimits(max_bytes=MAX_INPUT_BYTES))


@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("fifo", "not a regular file"),
        ("folder", "not a regular file"),
        ("huge.bin", "larger than"),
        ("link.txt", "symbolic link"),
    ],
)
def test_the_roster_reader_refuses_fifos_folders_huge_files_and_links(
    media: Path, name: str, says: str
) -> None:
    from appliance.sharing import roster as rosters

    if name == "huge.bin":
        with open(media / name, "r+b") as f:
            f.truncate(rosters.MAX_ROSTER_BYTES + 1)
    with pytest.raises(ApplianceError, match=says):
        rosters.load(media / name, trusted_fingerprint="00" * 32)


def test_a_backup_whose_manifest_or_blob_is_a_fifo_is_refused(backup: Any) -> None:
    from appliance.hsm.backup import load_backup

    folder, ceremony = backup
    public = ceremony.public_key_der()
    blob = (
        folder / json.loads((folder / "manifest.json").read_bytes())["manifest"]["keys"][0]["blob"]
    )
    original = blob.read_bytes()
    blob.unlink()
    os.mkfifo(blob)
    with pytest.raises(ApplianceError, match="missing|blob"):
        load_backup(folder, expected_ceremony_key_der=public)
    blob.unlink()
    blob.write_bytes(original)
    manifest = (folder / "manifest.json").read_bytes()
    (folder / "manifest.json").unlink()
    os.mkfifo(folder / "manifest.json")
    with pytest.raises(ApplianceError, match="not a regular file"):
        load_backup(folder, expected_ceremony_key_der=public)
    (folder / "manifest.json").unlink()
    (folder / "manifest.json").write_bytes(manifest)
    assert load_backup(folder, expected_ceremony_key_der=public).entries


def test_a_bundle_with_fifos_or_a_swollen_artifact_is_refused(tmp_path: Path) -> None:
    from appliance.outputs import bundle as bundle_mod

    folder, public, _ = _bundle(tmp_path)
    original = (folder / "skr.txt").read_bytes()
    with open(folder / "skr.txt", "ab") as f:  # 1 GiB more, sparse: must not be read whole
        f.truncate(len(original) + (1 << 30))
    with pytest.raises(ApplianceError, match="does not match"):
        bundle_mod.read_bundle_dir(folder, public)
    (folder / "skr.txt").unlink()
    os.mkfifo(folder / "skr.txt")
    with pytest.raises(ApplianceError, match="not a regular file"):
        bundle_mod.read_bundle_dir(folder, public)
    (folder / "skr.txt").unlink()
    (folder / "skr.txt").write_bytes(original)
    manifest = (folder / "manifest.json").read_bytes()
    (folder / "manifest.json").unlink()
    os.mkfifo(folder / "manifest.json")
    with pytest.raises(ApplianceError, match="not a regular file"):
        bundle_mod.read_bundle_dir(folder, public)
    (folder / "manifest.json").unlink()
    (folder / "manifest.json").write_bytes(manifest)
    assert bundle_mod.read_bundle_dir(folder, public).artifacts


# --- scans given to `appliance decode` ----------------------------------------------------


def _png(path: Path, size: tuple[int, int] = (64, 64)) -> Path:
    from PIL import Image

    Image.new("1", size, 1).save(path)
    return path


def _pdf(path: Path, pages: int, inches: float = 8.27) -> Path:
    from fpdf import FPDF

    pdf = FPDF(unit="in", format=(inches, inches))
    for _ in range(pages):
        pdf.add_page()
    pdf.output(str(path))
    return path


def test_scans_are_checked_before_any_decoder_sees_them(media: Path, tmp_path: Path) -> None:
    from appliance.outputs import decode
    from appliance.outputs.errors import DecodeError

    good = _png(media / "page1.png")
    with pytest.raises(DecodeError, match="no ceremony QR frames"):  # checks passed: read
        decode.assemble(decode.read_scans([good]), b"")
    (media / "linked.png").symlink_to(good)
    (media / "text.png").write_bytes(b"hello, not an image\n")
    (media / "renamed.pdf").write_bytes(good.read_bytes())
    with open(media / "huge.png", "wb") as f:  # sparse
        f.write(b"\x89PNG\r\n\x1a\n")
        f.truncate(decode.MAX_SCAN_BYTES + 1)
    bomb = _png(media / "bomb.png", (20_000, 20_000))  # 400 Mpx in a few KB
    assert bomb.stat().st_size < 1_000_000
    _png(media / "bomb2.png", (12_000, 12_000))  # 144 Mpx: under Pillow's own limit
    cases = [
        ("linked.png", "symbolic link"),
        ("fifo", "not a regular file"),
        ("folder", "not a regular file"),
        ("huge.png", "larger than 256 MiB"),
        ("text.png", "neither an image nor a PDF by its content"),
        ("renamed.pdf", "is a PNG file by its content"),
        ("bomb.png", "more than the 120 million pixels"),
        ("bomb2.png", "more than the 120 million pixels"),
        ("missing.png", "is missing"),
    ]
    for name, says in cases:
        with pytest.raises(DecodeError, match=says) as err:
            decode.read_scans([media / name])
        assert err.value.hint, name


def test_hostile_pdfs_are_bounded_before_rendering(tmp_path: Path) -> None:
    from appliance.outputs import decode
    from appliance.outputs.errors import DecodeError

    many = _pdf(tmp_path / "many.pdf", decode.MAX_PDF_PAGES + 1)
    with pytest.raises(DecodeError, match=f"{decode.MAX_PDF_PAGES + 1} pages"):
        decode.read_scans([many])
    # a page declared 200 inches square renders only its top-left 17-inch square
    giant = _pdf(tmp_path / "giant.pdf", 1, inches=200)
    out = tmp_path / "pages"
    out.mkdir()
    pages = decode.rasterise_pdf(giant.read_bytes(), "giant.pdf", out, 100)
    from PIL import Image

    with Image.open(pages[0]) as img:
        assert img.size == (decode.PDF_PAGE_INCHES * 100, decode.PDF_PAGE_INCHES * 100)
    # the largest resolution keeps the largest rendered square under the pixel cap
    assert (decode.PDF_PAGE_INCHES * 600) ** 2 <= decode.MAX_PIXELS
    with pytest.raises(DecodeError, match="ask for 50 to 600"):
        decode.rasterise_pdf(giant.read_bytes(), "giant.pdf", out, 601)
    two = _pdf(tmp_path / "two.pdf", 2)
    with pytest.raises(DecodeError, match="no ceremony QR frames"):
        decode.assemble(decode.read_scans([two]), b"")


def test_decode_cli_refuses_a_linked_scan_or_bundle_and_writes_nothing(
    media: Path, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    (tmp_path / "pub.pem").write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    (media / "scan.png").symlink_to(_png(tmp_path / "real.png"))
    folder, _, _ = _bundle(tmp_path)
    (tmp_path / "bundle-link").symlink_to(folder)
    for target, says in (
        (media / "scan.png", "scan.png is a symbolic link"),
        (tmp_path / "bundle-link", "bundle-link is a symbolic link"),
    ):
        out = tmp_path / f"out-{target.name}"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "appliance",
                "decode",
                str(target),
                "--pubkey",
                str(tmp_path / "pub.pem"),
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        text = done.stdout + done.stderr
        assert done.returncode != 0 and says in text and "Traceback" not in text, text
        assert not out.exists() or not list(out.iterdir())
