"""The printable sheet: a summary people read aloud, then the QR codes that carry the data.

Page 1 (large type) names the ceremony, its zones, KSK key tags and DS records, and the
SHA-256 of every artifact as hex and as PGP words, the journal head and the ceremony key's
fingerprint: witnesses compare these by voice. The QR pages follow, each code labelled
("SKR example.com 3/12, set 7QX2") so a person can see at once which one is missing.
QR codes are drawn as vector rectangles: rasterisers blur tiny embedded images.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from appliance import pgpwords
from appliance.outputs import frames, qr
from appliance.outputs.bundle import Bundle
from appliance.outputs.errors import SheetError

Paper = Literal["A4", "Letter"]
PAPER_MM: dict[str, tuple[float, float]] = {"A4": (210.0, 297.0), "Letter": (215.9, 279.4)}
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_FONTS = {
    ("sans", ""): "DejaVuSans.ttf",
    ("sans", "B"): "DejaVuSans-Bold.ttf",
    ("mono", ""): "DejaVuSansMono.ttf",
    ("mono", "B"): "DejaVuSansMono-Bold.ttf",
}
MARGIN = 10.0
HEADER = 8.0
LABEL = 5.0
GAP_X = 5.0
GAP_Y = 2.0


@dataclass(frozen=True)
class SheetFacts:
    """What page 1 states besides the manifest: the engine knows these from the ceremony."""

    title: str = "Key ceremony outputs"
    zones: tuple[str, ...] = ()
    ksk_key_tags: tuple[int, ...] = ()
    ds_records: tuple[str, ...] = ()


@dataclass(frozen=True)
class Code:
    """One QR code as placed on the sheet."""

    label: str
    text: str
    page: int


@dataclass(frozen=True)
class Sheet:
    pdf: bytes
    codes: tuple[Code, ...]
    pages: int
    paper: str

    def codes_on_page(self, page: int) -> list[Code]:
        return [c for c in self.codes if c.page == page]


def grid(paper: Paper, settings: qr.QrSettings = qr.CHOSEN) -> tuple[int, int]:
    """(columns, rows) of codes that fit one page of `paper`."""
    width, height = PAPER_MM[paper]
    size = settings.size_mm
    cols = int((width - 2 * MARGIN + GAP_X) // (size + GAP_X))
    rows = int((height - 2 * MARGIN - HEADER + GAP_Y) // (size + LABEL + GAP_Y))
    if cols < 1 or rows < 1:
        raise SheetError(f"a {size} mm code does not fit on {paper} paper")
    return cols, rows


def frame_texts(bundle: Bundle, settings: qr.QrSettings = qr.CHOSEN) -> list[tuple[str, str]]:
    """(label, frame text) for every frame of every payload, manifest first."""
    capacity = qr.capacity_chars(settings.version, settings.ec)
    set_id = bundle.manifest.set_id
    out = []
    for number, title, data in bundle.payloads():
        parts = frames.split(data, set_id, number, capacity)
        for f in parts:
            out.append((f"{title} {f.index}/{f.count}, set {set_id}", f.text()))
    return out


def _snap(mm: float) -> float:
    """Onto the 150-dpi pixel grid (see qr.GRID_MM)."""
    return round(mm / qr.GRID_MM) * qr.GRID_MM


def _grouped_hex(digest: str) -> list[str]:
    """A SHA-256 in groups of four, on one line (fits A4 and Letter at 11 pt)."""
    return [" ".join(digest[i : i + 4] for i in range(0, len(digest), 4))]


class _Pdf:
    """fpdf2 with our fonts and a few helpers; imported lazily (start-up time)."""

    def __init__(self, paper: Paper, created: datetime) -> None:
        from fpdf import FPDF

        self.pdf = FPDF(orientation="portrait", unit="mm", format=PAPER_MM[paper])
        self.pdf.set_creation_date(created)
        self.pdf.set_creator("ceremony appliance")
        self.pdf.set_margins(MARGIN, MARGIN, MARGIN)
        self.pdf.set_auto_page_break(True, MARGIN)
        for (family, style), file in _FONTS.items():
            path = FONT_DIR / file
            if not path.exists():
                raise SheetError(
                    f"font {path} is missing",
                    hint="Install the Debian package fonts-dejavu-core.",
                )
            self.pdf.add_font(family, style, str(path))

    def text(self, text: str, size: float, family: str = "sans", style: str = "") -> None:
        self.pdf.set_font(family, style, size)
        self.pdf.multi_cell(0, size * 0.45, text, align="L", new_x="LMARGIN", new_y="NEXT")

    def pair(self, key: str, value: str, size: float = 13, family: str = "sans") -> None:
        self.pdf.set_font("sans", "B", size)
        self.pdf.cell(48, size * 0.45, key)
        self.pdf.set_font(family, "", size)
        self.pdf.multi_cell(0, size * 0.45, value, align="L", new_x="LMARGIN", new_y="NEXT")

    def code(self, modules: list[list[bool]], x: float, y: float, m: float) -> None:
        """Dark modules (pitch `m` mm) as rectangles: runs merged across a row, then down
        equal runs."""
        n = len(modules)
        open_rects: dict[tuple[int, int], int] = {}  # (start, end) -> first row
        rects: list[tuple[int, int, int, int]] = []
        for r in range(n + 1):
            runs: set[tuple[int, int]] = set()
            if r < n:
                row = modules[r]
                c = 0
                while c < n:
                    if row[c]:
                        start = c
                        while c < n and row[c]:
                            c += 1
                        runs.add((start, c))
                    else:
                        c += 1
            for key in list(open_rects):
                if key not in runs:
                    rects.append((key[0], open_rects.pop(key), key[1], r))
            for key in runs:
                open_rects.setdefault(key, r)
        from fpdf.enums import RenderStyle

        fill = RenderStyle.F  # the enum, not "F": fpdf2 coerces strings on every call
        self.pdf.set_fill_color(0, 0, 0)
        for c0, r0, c1, r1 in rects:
            self.pdf.rect(x + c0 * m, y + r0 * m, (c1 - c0) * m, (r1 - r0) * m, style=fill)


def render_sheet(
    bundle: Bundle,
    facts: SheetFacts | None = None,
    *,
    paper: Paper = "A4",
    settings: qr.QrSettings = qr.CHOSEN,
    only_payloads: Sequence[int] | None = None,
) -> Sheet:
    """The whole sheet as PDF bytes, and where each code landed (for tests and reports).

    `only_payloads` restricts the QR pages to some payload numbers (0 = manifest)."""
    if paper not in PAPER_MM:
        raise SheetError(f"paper {paper!r} is not one of {', '.join(PAPER_MM)}")
    facts = facts or facts_from_bundle(bundle)
    manifest = bundle.manifest
    try:
        created = datetime.strptime(manifest.created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        created = datetime(2000, 1, 1, tzinfo=UTC)
    doc = _Pdf(paper, created)
    pdf = doc.pdf
    pdf.add_page()
    doc.text(facts.title, 20, style="B")
    pdf.ln(1)
    doc.pair("Ceremony", manifest.ceremony_id)
    doc.pair("Date", manifest.created)
    doc.pair("Zones", ", ".join(facts.zones) or "-")
    doc.pair("KSK key tags", ", ".join(str(t) for t in facts.ksk_key_tags) or "-")
    doc.pair("QR set", f"{manifest.set_id}  (every code below carries it)")
    doc.pair("Appliance", f"{manifest.appliance_version}, image {manifest.image_sha256 or '-'}")
    doc.text(
        "Verify: appliance decode SCANS... --pubkey CEREMONY-KEY.der --out DIR "
        "(checks every frame, every SHA-256 and the manifest signature).",
        10,
    )
    if facts.ds_records:
        pdf.ln(2)
        doc.text("DS records", 15, style="B")
        for ds in facts.ds_records:
            doc.text(ds, 11, family="mono")
    pdf.ln(2)
    doc.text("Journal head (SHA-256)", 15, style="B")
    for line in _grouped_hex(manifest.journal_head):
        doc.text(line, 11, family="mono")
    doc.text(pgpwords.phrase(bytes.fromhex(manifest.journal_head)), 11)
    pdf.ln(2)
    doc.text("Ceremony key fingerprint (SHA-256 of the public key)", 15, style="B")
    for line in _grouped_hex(bundle.signed.key_fingerprint):
        doc.text(line, 11, family="mono")
    manifest_hash = hashlib.sha256(bundle.signed.encode()).hexdigest()
    entries: list[tuple[str, str, str]] = [
        ("Signed manifest", "manifest.json, application/json", manifest_hash)
    ]
    entries += [
        (a.title, f"{a.name}, {a.media_type}, {a.size} bytes", a.sha256) for a in manifest.artifacts
    ]
    for title, detail, digest in entries:
        pdf.ln(1)
        doc.text(title, 15, style="B")
        doc.text(detail, 11)
        for line in _grouped_hex(digest):
            doc.text(line, 11, family="mono")
        doc.text(pgpwords.phrase(bytes.fromhex(digest)), 11)

    texts = frame_texts(bundle, settings)
    if only_payloads is not None:
        keep = set(only_payloads)
        texts = [(label, t) for label, t in texts if frames.parse(t).payload in keep]
    cols, rows = grid(paper, settings)
    per_page = cols * rows
    width, _height = PAPER_MM[paper]
    used = cols * settings.size_mm + (cols - 1) * GAP_X
    left = _snap((width - used) / 2)
    first_qr_page = pdf.page + 1
    qr_pages = -(-len(texts) // per_page)
    codes: list[Code] = []
    for i, (label, text) in enumerate(texts):
        slot = i % per_page
        if slot == 0:
            pdf.add_page()
            pdf.set_font("sans", "B", 10)
            page_no = pdf.page - first_qr_page + 1
            pdf.set_xy(MARGIN, MARGIN)
            pdf.cell(
                0,
                5,
                f"{manifest.ceremony_id}   set {manifest.set_id}   QR page {page_no} of {qr_pages}",
            )
        col, row = slot % cols, slot // cols
        x = _snap(left + col * (settings.size_mm + GAP_X))
        y = _snap(MARGIN + HEADER + row * (settings.size_mm + LABEL + GAP_Y))
        single = frames.parse(text).count == 1
        modules = qr.matrix(text, None if single else settings.version, settings.ec)
        # A smaller symbol (a single frame) gets the largest whole-pixel pitch that fits.
        pitch = qr.pitch_for(len(modules), settings.size_mm) if single else settings.module_mm
        offset = _snap((settings.size_mm - pitch * len(modules)) / 2)
        doc.code(modules, x + offset, y + offset, pitch)
        pdf.set_font("sans", "", 9)
        pdf.set_xy(x, y + settings.size_mm + 0.5)
        pdf.cell(settings.size_mm, 4, label, align="C")
        codes.append(Code(label, text, pdf.page))
    return Sheet(bytes(pdf.output()), tuple(codes), pdf.page, paper)


_DS_LINE = re.compile(
    r"^(?P<owner>\S+)\s+(?:\d+\s+)?(?:IN\s+)?DS\s+(?P<tag>\d+)\s+\d+\s+\d+\s+[0-9A-Fa-f ]+$",
    re.IGNORECASE,
)


def facts_from_bundle(bundle: Bundle) -> SheetFacts:
    """Page-1 facts read from the bundle's own text artifacts: every DS record line, with
    its zone and KSK key tag. The engine may pass richer SheetFacts instead."""
    ds: list[str] = []
    zones: list[str] = []
    tags: list[int] = []
    for a in bundle.artifacts:
        if not a.media_type.startswith("text/") or len(a.data) > 65536:
            continue
        for line in a.data.decode("utf-8", "replace").splitlines():
            match = _DS_LINE.match(line.strip())
            if match is None:
                continue
            ds.append(" ".join(line.split()))
            if match["owner"] not in zones:
                zones.append(match["owner"])
            if int(match["tag"]) not in tags:
                tags.append(int(match["tag"]))
    return SheetFacts(zones=tuple(zones), ksk_key_tags=tuple(tags), ds_records=tuple(ds))


def facts_from(data: dict[str, Any]) -> SheetFacts:
    """SheetFacts from plain data (engine action parameters)."""
    return SheetFacts(
        title=str(data.get("title", SheetFacts.title)),
        zones=tuple(str(z) for z in data.get("zones", ())),
        ksk_key_tags=tuple(int(t) for t in data.get("ksk_key_tags", ())),
        ds_records=tuple(str(d) for d in data.get("ds_records", ())),
    )
