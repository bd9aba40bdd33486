"""The sheet's layout and content (PDF bytes, no rasteriser), and saving without a printer."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from appliance import pgpwords, signing
from appliance.outputs import frames, qr, sheet
from appliance.outputs.errors import SheetError
from appliance.outputs.printer import print_or_save
from tests.unit.test_outputs_bundle import make_bundle

pytestmark = pytest.mark.skipif(
    not (sheet.FONT_DIR / "DejaVuSans.ttf").exists(), reason="fonts-dejavu-core not installed"
)


@pytest.fixture(scope="module")
def rendered() -> tuple[sheet.Sheet, signing.SoftwareSigner]:
    signer = signing.SoftwareSigner()
    facts = sheet.SheetFacts(zones=("example.com",), ksk_key_tags=(20326,), ds_records=("DS",))
    return sheet.render_sheet(make_bundle(signer), facts), signer


def _page_text(pdf: bytes) -> bytes:
    """All content streams inflated (fpdf2 compresses them)."""
    out = b""
    for part in pdf.split(b"stream\n")[1:]:
        body = part.split(b"\nendstream")[0]
        try:
            out += zlib.decompress(body)
        except zlib.error:
            continue
    return out


def test_grid_per_paper() -> None:
    assert sheet.grid("A4") == (3, 4)
    assert sheet.grid("Letter") == (3, 3)
    assert qr.CHOSEN.size_mm == pytest.approx(59.44, abs=0.01)
    with pytest.raises(SheetError):
        sheet.render_sheet(make_bundle(signing.SoftwareSigner()), paper="A5")  # type: ignore[arg-type]


def test_codes_are_labelled_and_carry_every_frame(
    rendered: tuple[sheet.Sheet, signing.SoftwareSigner],
) -> None:
    s, _ = rendered
    set_id = frames.parse(s.codes[0].text).set_id
    labels = [c.label for c in s.codes]
    assert labels == [
        f"Manifest 1/2, set {set_id}",
        f"Manifest 2/2, set {set_id}",
        f"SKR example.com 1/1, set {set_id}",
        f"DS example.com 1/1, set {set_id}",
    ]
    assert all(c.page == 2 for c in s.codes)
    assert s.pages == 2


def test_fonts_are_embedded(rendered: tuple[sheet.Sheet, signing.SoftwareSigner]) -> None:
    s, _ = rendered
    assert s.pdf.count(b"/FontFile2") >= 3  # sans, sans bold, mono: TrueType embedded
    assert b"DejaVuSans" in s.pdf


def test_codes_are_vectors_on_the_pixel_grid(
    rendered: tuple[sheet.Sheet, signing.SoftwareSigner],
) -> None:
    s, _ = rendered
    assert b"/Subtype /Image" not in s.pdf
    text = _page_text(s.pdf)
    rects = [line for line in text.split(b"\n") if line.endswith(b" re f")]
    assert len(rects) > 300
    grid_pt = 72 / 150
    for line in rects[:200]:
        x, _y, w, _h = (float(v) for v in line.split()[:4])
        assert abs(x / grid_pt - round(x / grid_pt)) < 0.05
        assert abs(w / grid_pt - round(w / grid_pt)) < 0.05


def test_summary_page_states_hashes_as_hex_and_words(
    rendered: tuple[sheet.Sheet, signing.SoftwareSigner],
) -> None:
    s, signer = rendered
    # fpdf2 writes subset-font glyph ids, not text: check the layout inputs instead.
    bundle = make_bundle(signer)
    head_words = pgpwords.words(bytes.fromhex(bundle.manifest.journal_head))
    assert len(head_words) == 32
    assert sheet._grouped_hex("ab" * 32) == [" ".join(["abab"] * 16)]
    assert signing.fingerprint(signer.public_key_der()) == bundle.signed.key_fingerprint


def test_same_bundle_same_pdf(rendered: tuple[sheet.Sheet, signing.SoftwareSigner]) -> None:
    s, signer = rendered
    facts = sheet.SheetFacts(zones=("example.com",), ksk_key_tags=(20326,), ds_records=("DS",))
    bundle = make_bundle(signer)
    assert sheet.render_sheet(bundle, facts).pdf == sheet.render_sheet(bundle, facts).pdf


def test_without_a_printer_the_pdf_goes_to_the_media(tmp_path: Path) -> None:
    outcome = print_or_save(b"%PDF-1.4\n", tmp_path / "media", "sheet.pdf", "")
    assert outcome.status == "saved"
    assert (tmp_path / "media" / "sheet.pdf").read_bytes() == b"%PDF-1.4\n"
    assert "No printer is configured" in outcome.operator_text()
    assert str(tmp_path / "media" / "sheet.pdf") in outcome.operator_text()


def test_ipp_response_parsing() -> None:
    import struct

    from appliance.outputs import ipp
    from appliance.outputs.errors import PrintError

    def attr(tag: int, name: str, value: bytes) -> bytes:
        return (
            struct.pack(">BH", tag, len(name))
            + name.encode()
            + struct.pack(">H", len(value))
            + value
        )

    body = struct.pack(">BBHI", 2, 0, 0, 1) + b"\x01" + attr(0x47, "attributes-charset", b"utf-8")
    body += b"\x02" + attr(0x23, "job-state", struct.pack(">i", 8))
    body += attr(0x44, "job-state-reasons", b"aborted-by-system") + attr(0x44, "", b"other")
    body += b"\x03"
    attrs = ipp._parse(body)
    assert attrs["job-state"] == [struct.pack(">i", 8)]
    assert attrs["job-state-reasons"] == [b"aborted-by-system", b"other"]
    with pytest.raises(PrintError, match="0x0406"):
        ipp._parse(struct.pack(">BBHI", 2, 0, 0x0406, 1) + b"\x03")
    assert ipp._request("q", 7).endswith(b"job-state-reasons\x03")


def test_page_one_facts_come_from_the_ds_artifacts() -> None:
    from appliance.outputs import bundle as b

    ds = (
        "example.com. 3600 IN DS 20326 13 2 E06D44B80B8F1D39A95C0B0D7C65D084\n"
        "example.org.\tDS 4711 8 2 abcdef0123\n"
        "; a comment line\n"
    )
    made = make_bundle(
        signing.SoftwareSigner(),
        [
            b.Artifact("ds.txt", ds.encode(), "text/plain", "DS"),
            b.Artifact("skr.xml", b"<x> IN DS 1 2 3 AB </x>", "application/xml", "SKR"),
        ],
    )
    facts = sheet.facts_from_bundle(made)
    assert facts.zones == ("example.com.", "example.org.")
    assert facts.ksk_key_tags == (20326, 4711)
    assert facts.ds_records == (
        "example.com. 3600 IN DS 20326 13 2 E06D44B80B8F1D39A95C0B0D7C65D084",
        "example.org. DS 4711 8 2 abcdef0123",
    )
