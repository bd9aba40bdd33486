"""The registry-side verifier: scans in, verified artifacts out, or a precise refusal.

Scans (photos, scanner images, PDFs rasterised with pdftoppm) are checked first (no link,
no FIFO, bounded size, kind by content, bounded pixels and pages), then read with zxing-cpp; every
frame is checked on its own (CRC), frames are grouped by set and payload in whatever order
they arrive, the signed manifest is verified against the pinned ceremony key, and each
artifact is checked against the manifest's size and SHA-256 before it is written. A bad
signature rejects everything; a missing frame is named ("SKR example.com: frames 4 and 9 of
12 missing"); a frame from another set is set aside with a note.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from appliance import atomic, media
from appliance.outputs import bundle as bundle_mod
from appliance.outputs.errors import DecodeError
from appliance.outputs.frames import Collector

#: Largest scan file read (a 50-page colour PDF from a scanner at 300 dpi is ~60 MB).
MAX_SCAN_BYTES = 256 * 1024 * 1024
#: Most pixels in one image (A3 at 600 dpi is 70 million): more is a decompression bomb.
MAX_PIXELS = 120_000_000
#: Most pages of one PDF (a bundle of 200 KB fills about 20 pages).
MAX_PDF_PAGES = 500
#: The part of a PDF page rendered, in inches from the top left (A3 and tabloid fit): a
#: page declared 200 inches wide is not rendered into gigabytes.
PDF_PAGE_INCHES = 17
#: Seconds pdfinfo or pdftoppm may take on one file.
PDF_TOOL_SECONDS = 600

#: Kinds of scan by their first bytes, with the suffixes that may carry them and Pillow's name.
_KINDS: tuple[tuple[str, tuple[bytes, ...], tuple[str, ...], str], ...] = (
    ("PNG", (b"\x89PNG\r\n\x1a\n",), (".png",), "PNG"),
    ("JPEG", (b"\xff\xd8\xff",), (".jpg", ".jpeg"), "JPEG"),
    ("TIFF", (b"II*\x00", b"MM\x00*"), (".tif", ".tiff"), "TIFF"),
    ("BMP", (b"BM",), (".bmp",), "BMP"),
    ("GIF", (b"GIF87a", b"GIF89a"), (".gif",), "GIF"),
    ("WebP", (b"RIFF",), (".webp",), "WEBP"),
    ("PNM", (b"P2", b"P3", b"P5", b"P6"), (".pgm", ".ppm", ".pnm"), "PPM"),
    ("PDF", (b"%PDF-",), (".pdf",), ""),
)


def scan_kind(data: bytes, name: str) -> tuple[str, str]:
    """(kind, Pillow format) of a scan, by its first bytes; refused when they are no image or
    PDF we read, or disagree with the file's suffix (a renamed file is not what it says)."""
    suffix = Path(name).suffix.lower()
    for kind, magics, suffixes, pil in _KINDS:
        if data.startswith(magics) and (kind != "WebP" or data[8:12] == b"WEBP"):
            if suffix not in suffixes:
                raise DecodeError(
                    f"{name} is a {kind} file by its content, not what its name says",
                    hint=f"Rename it to end in {suffixes[0]} if it is a genuine scan.",
                )
            return kind, pil
    raise DecodeError(
        f"{name} is neither an image nor a PDF by its content",
        hint="Pass scans as PNG/JPEG/TIFF images or PDF files.",
    )


def read_image_bytes(data: bytes, name: str, pil_format: str) -> list[str]:
    """Texts of every QR code zxing-cpp finds in one image, decoded by the one decoder its
    first bytes name, and refused before decoding when its pixels would not fit."""
    import zxingcpp
    from PIL import Image, UnidentifiedImageError

    too_big = DecodeError(
        f"image {name} has more than the {MAX_PIXELS // 1_000_000} million pixels a scan needs",
        hint="Scan at 150 to 600 dpi.",
    )
    try:
        with warnings.catch_warnings():  # Pillow's warning limit: ours is checked below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=[pil_format])
        with opened as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise too_big
            img.load()
            gray = img.convert("L")
    except Image.DecompressionBombError:  # Pillow's own, larger limit
        raise too_big from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as exc:
        raise DecodeError(
            f"cannot read image {name}: {exc}", hint="Scan the page again, or export it as PNG."
        ) from None
    found = zxingcpp.read_barcodes(
        gray,
        formats=zxingcpp.barcode_formats_from_str("QRCode"),
        text_mode=zxingcpp.TextMode.Plain,
    )
    return [b.text for b in found if b.valid]


def read_scan_file(path: Path) -> bytes:
    """A scan's bytes from the media: no link, no FIFO or device, at most MAX_SCAN_BYTES."""
    try:
        return media.read_file(path, MAX_SCAN_BYTES)
    except media.Refused as exc:
        raise DecodeError(f"scan {exc}", hint=exc.hint) from None


def read_image(path: Path) -> list[str]:
    """Texts of every QR code in one image file (checked like every scan)."""
    data = read_scan_file(path)
    _, pil = scan_kind(data, Path(path).name)
    if not pil:
        raise DecodeError(f"{path} is a PDF, not an image")
    return read_image_bytes(data, Path(path).name, pil)


def _pdf_tool(name: str) -> str:
    tool = shutil.which(name)
    if tool is None:
        raise DecodeError(f"{name} is needed to read PDF files", hint="Install poppler-utils.")
    return tool


def _run_pdf_tool(args: list[str], name: str) -> str:
    try:
        result = subprocess.run(  # noqa: S603 - fixed tool, our arguments
            args,
            capture_output=True,
            text=True,
            check=False,
            timeout=PDF_TOOL_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise DecodeError(
            f"{name} took longer than {PDF_TOOL_SECONDS} s to read",
            hint="Scan the pages again as images (PNG).",
        ) from None
    if result.returncode != 0:
        raise DecodeError(
            f"cannot read PDF {name}: {result.stderr.strip()}",
            hint="Scan the pages again, or export them as PNG.",
        )
    return result.stdout


def rasterise_pdf(data: bytes, name: str, folder: Path, dpi: int) -> list[Path]:
    """Render each page of a checked PDF (a private copy in `folder`) as grayscale PNG.

    Pages are counted first (at most MAX_PDF_PAGES) and only the top-left PDF_PAGE_INCHES
    square of each page is rendered, so a hostile PDF cannot fill the disk."""
    if not 50 <= dpi <= 600:  # 17 x 17 inches at 600 dpi stay under MAX_PIXELS
        raise DecodeError(f"{dpi} dpi: ask for 50 to 600")
    copy = folder / "scan.pdf"
    copy.write_bytes(data)
    info = _run_pdf_tool([_pdf_tool("pdfinfo"), str(copy)], name)
    match = re.search(r"^Pages:\s+(\d+)\s*$", info, re.MULTILINE)
    if match is None:
        raise DecodeError(f"cannot read PDF {name}: it names no page count")
    pages = int(match.group(1))
    if pages > MAX_PDF_PAGES:
        raise DecodeError(
            f"PDF {name} has {pages} pages, more than {MAX_PDF_PAGES}",
            hint="Pass the scans of one bundle only.",
        )
    side = str(PDF_PAGE_INCHES * dpi)
    _run_pdf_tool(
        [
            _pdf_tool("pdftoppm"),
            "-r",
            str(dpi),
            "-gray",
            "-png",
            "-f",
            "1",
            "-l",
            str(pages),
            "-x",
            "0",
            "-y",
            "0",
            "-W",
            side,
            "-H",
            side,
            str(copy),
            str(folder / "page"),
        ],
        name,
    )
    return sorted(folder.glob("page-*.png"), key=lambda p: int(p.stem.rpartition("-")[2]))


def read_scans(paths: Iterable[Path], dpi: int = 200) -> Collector:
    """Every frame found in `paths` (images and PDFs), grouped; unreadable codes noted.

    Each file is checked before it is decoded (appliance.media; its kind by content)."""
    collector = Collector()
    for path in paths:
        path = Path(path)
        data = read_scan_file(path)
        kind, pil = scan_kind(data, path.name)
        if kind == "PDF":
            with tempfile.TemporaryDirectory(prefix="appliance-decode-") as tmp:
                pages = rasterise_pdf(data, path.name, Path(tmp), dpi)
                for page_no, page in enumerate(pages, start=1):
                    texts = read_image_bytes(
                        page.read_bytes(), f"{path.name} page {page_no}", "PNG"
                    )
                    collector.add_texts(texts, f"{path.name} page {page_no}")
        else:
            collector.add_texts(read_image_bytes(data, path.name, pil), path.name)
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
