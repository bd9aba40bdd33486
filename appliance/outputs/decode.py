"""The registry-side verifier: scans in, verified artifacts out, or a precise refusal.

Scans (photos, scanner images, PDFs rasterised with pdftoppm) are read with zxing-cpp; every
frame is checked on its own (CRC), frames are grouped by set and payload in whatever order
they arrive, the signed manifest is verified against the pinned ceremony key, and each
artifact is checked against the manifest's size and SHA-256 before it is written. A bad
signature rejects everything; a missing frame is named ("SKR example.com: frames 4 and 9 of
12 missing"); a frame from another set is set aside with a note.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from appliance import atomic
from appliance.outputs import bundle as bundle_mod
from appliance.outputs.errors import DecodeError
from appliance.outputs.frames import Collector

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp", ".pgm", ".ppm"}


def read_image(path: Path) -> list[str]:
    """Texts of every QR code zxing-cpp finds in one image."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            gray = img.convert("L")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise DecodeError(f"cannot read image {path}: {exc}") from None
    found = zxingcpp.read_barcodes(
        gray,
        formats=zxingcpp.barcode_formats_from_str("QRCode"),
        text_mode=zxingcpp.TextMode.Plain,
    )
    return [b.text for b in found if b.valid]


def rasterise_pdf(path: Path, folder: Path, dpi: int) -> list[Path]:
    """pdftoppm each page of `path` into `folder` (grayscale PNG)."""
    tool = shutil.which("pdftoppm")
    if tool is None:
        raise DecodeError("pdftoppm is needed to read PDF files", hint="Install poppler-utils.")
    prefix = folder / path.stem
    result = subprocess.run(  # noqa: S603 - fixed tool, our arguments
        [tool, "-r", str(dpi), "-gray", "-png", str(path), str(prefix)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise DecodeError(f"pdftoppm cannot read {path}: {result.stderr.strip()}")
    return sorted(folder.glob(f"{path.stem}-*.png"))


def read_scans(paths: Iterable[Path], dpi: int = 200) -> Collector:
    """Every frame found in `paths` (images and PDFs), grouped; unreadable codes noted."""
    collector = Collector()
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise DecodeError(f"scan {path} does not exist")
        if path.suffix.lower() == ".pdf":
            with tempfile.TemporaryDirectory(prefix="appliance-decode-") as tmp:
                for page_no, page in enumerate(rasterise_pdf(path, Path(tmp), dpi), start=1):
                    texts = read_image(page)
                    collector.add_texts(texts, f"{path.name} page {page_no}")
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            collector.add_texts(read_image(path), path.name)
        else:
            raise DecodeError(
                f"{path} is neither an image nor a PDF",
                hint="Pass scans as PNG/JPEG/TIFF images or PDF files.",
            )
    return collector


def describe_missing(missing: Sequence[int], count: int) -> str:
    """'frame 4 of 12', 'frames 4 and 9 of 12', 'frames 2, 5-9 and 11 of 12'."""
    parts: list[str] = []
    run: list[int] = []
    for i in [*missing, None]:
        if run and (i is None or i != run[-1] + 1):
            parts.append(f"{run[0]}-{run[-1]}" if len(run) > 2 else ", ".join(map(str, run)))
            run = []
        if i is not None:
            run.append(i)
    text = ", ".join(parts)
    if "," in text:
        head, _, tail = text.rpartition(", ")
        text = f"{head} and {tail}"
    noun = "frame" if len(missing) == 1 else "frames"
    return f"{noun} {text} of {count} missing"


@dataclass
class DecodeResult:
    set_id: str
    signed: bundle_mod.SignedManifest
    verified: list[bundle_mod.Artifact] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.missing and not self.rejected

    def report(self) -> list[str]:
        m = self.signed.manifest
        lines = [
            f"Set {self.set_id}: ceremony {m.ceremony_id} of {m.created}, manifest signed by "
            f"the pinned ceremony key {self.signed.key_fingerprint[:16]}...",
        ]
        lines += [
            f"OK {a.title}: {a.name}, {len(a.data)} bytes, SHA-256 verified" for a in self.verified
        ]
        lines += [f"MISSING {x}" for x in self.missing]
        lines += [f"REJECTED {x}" for x in self.rejected]
        lines += [f"NOTE {x}" for x in self.notes]
        return lines


def _choose_set(collector: Collector, wanted: str | None) -> tuple[str, list[str]]:
    if not collector.sets:
        raise DecodeError(
            "no ceremony QR frames were found in the scans",
            hint="Scan at 150 dpi or more, the whole code in the picture, flat and in focus.",
            notes=list(collector.notes),
        )
    if wanted is not None:
        if wanted not in collector.sets:
            raise DecodeError(
                f"no frame of set {wanted} was found; sets seen: {', '.join(collector.sets)}"
            )
        chosen = wanted
    else:
        ranked = sorted(collector.sets, key=collector.frame_count, reverse=True)
        if len(ranked) > 1 and (
            collector.frame_count(ranked[0]) == collector.frame_count(ranked[1])
        ):
            raise DecodeError(
                f"the scans hold as many frames of set {ranked[0]} as of set {ranked[1]}",
                hint="Name the set to decode with --set (it is printed on every label).",
            )
        chosen = ranked[0]
    notes = [
        f"{collector.frame_count(other)} frame(s) of set {other} (another bundle, e.g. a page "
        f"from another ceremony) set aside"
        for other in collector.sets
        if other != chosen
    ]
    return chosen, notes


def assemble(
    collector: Collector, pinned_key_der: bytes, set_id: str | None = None
) -> DecodeResult:
    """Verify and reassemble one set. Raises for a missing, malformed or badly signed
    manifest (nothing can be trusted then); otherwise lists what is verified or missing."""
    chosen, notes = _choose_set(collector, set_id)
    payloads = collector.sets[chosen]
    manifest_frames = payloads.get(0)
    if manifest_frames is None or manifest_frames.data() is None:
        what = (
            "every frame"
            if manifest_frames is None
            else describe_missing(manifest_frames.missing(), manifest_frames.count)
        )
        raise DecodeError(
            f"set {chosen}: the signed manifest is incomplete ({what}); "
            "nothing can be verified without it",
            hint="Scan the pages with the codes labelled 'Manifest'.",
            notes=notes + collector.notes,
        )
    data = manifest_frames.data()
    assert data is not None  # noqa: S101 - checked just above
    signed = bundle_mod.parse_signed_manifest(data, pinned_key_der)
    if signed.manifest.set_id != chosen:
        raise DecodeError(
            f"the manifest belongs to set {signed.manifest.set_id}, but its frames say {chosen}",
            hint="The codes were altered: do not use these outputs.",
        )
    result = DecodeResult(chosen, signed, notes=notes + list(collector.notes))
    entries = signed.manifest.artifacts
    for number, entry in enumerate(entries, start=1):
        got = payloads.get(number)
        if got is None:
            result.missing.append(f"{entry.title}: all frames missing")
            continue
        body = got.data()
        if body is None:
            result.missing.append(f"{entry.title}: {describe_missing(got.missing(), got.count)}")
            continue
        problem = bundle_mod.check_artifact(entry, body)
        if problem:
            result.rejected.append(problem)
            continue
        result.verified.append(bundle_mod.Artifact(entry.name, body, entry.media_type, entry.label))
    for number in sorted(payloads):
        if number > len(entries):
            result.notes.append(f"payload {number} is not in the manifest: set aside")
    return result


def write_verified(result: DecodeResult, out_dir: Path) -> list[Path]:
    """Write the verified artifacts and the signed manifest (atomically) into `out_dir`."""
    written = []
    for a in result.verified:
        atomic.write_bytes(out_dir / a.name, a.data)
        written.append(out_dir / a.name)
    atomic.write_bytes(out_dir / bundle_mod.MANIFEST_NAME, result.signed.encode())
    written.append(out_dir / bundle_mod.MANIFEST_NAME)
    return written


def decode_scans(
    scans: Sequence[Path],
    pinned_key_der: bytes,
    out_dir: Path,
    *,
    dpi: int = 200,
    set_id: str | None = None,
) -> DecodeResult:
    """The whole verifier: read, reassemble, verify, write what verified."""
    result = assemble(read_scans(scans, dpi), pinned_key_der, set_id)
    write_verified(result, Path(out_dir))
    return result
