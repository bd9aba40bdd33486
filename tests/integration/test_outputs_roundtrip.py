"""Paper round trips: sheet PDF -> pdftoppm (150 and 300 dpi) -> `appliance decode`.

Also checks that zbar, an independent decoder, reads every frame of the 150 dpi rendering,
and that a missing page, shuffled pages, a page from another ceremony, a forged manifest
signature and a changed artifact are each reported as the verifier promises.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance import cli, signing
from appliance.outputs import bundle as b
from appliance.outputs import frames
from appliance.outputs.sheet import Sheet, SheetFacts, render_sheet
from tests.support.services import need_tool
from tests.unit.test_outputs_bundle import make_bundle

DS = (
    "example.com. 3600 IN DS 20326 13 2 "
    + "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"
)
FACTS = SheetFacts(zones=("example.com",), ksk_key_tags=(20326,), ds_records=(DS,))


@dataclass
class Rendered:
    bundle: b.Bundle
    sheet: Sheet
    pdf: Path

    def pages(self, dpi: int, first: int | None = None, last: int | None = None) -> list[Path]:
        """Rasterised pages (grayscale PNG), cached per resolution and range."""
        folder = self.pdf.parent / f"r{dpi}-{first}-{last}"
        if not folder.exists():
            folder.mkdir()
            args = [need_tool("pdftoppm", "poppler-utils"), "-r", str(dpi), "-gray", "-png"]
            if first:
                args += ["-f", str(first)]
            if last:
                args += ["-l", str(last)]
            subprocess.run([*args, str(self.pdf), str(folder / "p")], check=True)
        return sorted(folder.glob("p-*.png"))


def _artifacts(size: int, seed: int = 7) -> list[b.Artifact]:
    skr = random.Random(seed).randbytes(size)
    return [
        b.Artifact("skr.bin", skr, "application/xml", "SKR example.com"),
        b.Artifact("ds.txt", DS.encode() + b"\n", "text/plain", "DS example.com"),
    ]


@pytest.fixture(scope="module")
def signer() -> signing.SoftwareSigner:
    return signing.SoftwareSigner()


@pytest.fixture(scope="module")
def key_file(signer: signing.SoftwareSigner, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "ceremony-key.der"
    path.write_bytes(signer.public_key_der())
    return path


@pytest.fixture(scope="module")
def render(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., Rendered]:
    cache: dict[tuple[object, ...], Rendered] = {}

    def _render(
        bundle: b.Bundle, paper: str = "A4", only: tuple[int, ...] | None = None
    ) -> Rendered:
        key = (bundle.signed.encode(), tuple(a.data for a in bundle.artifacts), paper, only)
        if key not in cache:
            sheet = render_sheet(bundle, FACTS, paper=paper, only_payloads=only)  # type: ignore[arg-type]
            pdf = tmp_path_factory.mktemp("sheet") / "sheet.pdf"
            pdf.write_bytes(sheet.pdf)
            cache[key] = Rendered(bundle, sheet, pdf)
        return cache[key]

    return _render


@pytest.fixture(scope="module")
def bundles(signer: signing.SoftwareSigner) -> dict[int, b.Bundle]:
    return {size: make_bundle(signer, _artifacts(size)) for size in (1024, 50 * 1024, 200 * 1024)}


def run_decode(
    scans: list[Path], key: Path, out: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    code = cli.main(["decode", *map(str, scans), "--pubkey", str(key), "--out", str(out)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def zbar_texts(pages: list[Path]) -> set[str]:
    zbarimg = need_tool("zbarimg", "zbar-tools")
    result = subprocess.run(
        [zbarimg, "-q", "--raw", *map(str, pages)], capture_output=True, text=True, check=False
    )
    return set(result.stdout.splitlines())


def assert_written(out: Path, bundle: b.Bundle) -> None:
    for a in bundle.artifacts:
        assert (out / a.name).read_bytes() == a.data
    assert (out / "manifest.json").read_bytes() == bundle.signed.encode()


@pytest.mark.parametrize("size", [1024, 50 * 1024])
def test_round_trip_150_and_300_dpi(
    size: int,
    bundles: dict[int, b.Bundle],
    render: Callable[..., Rendered],
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    r = render(bundles[size])
    for dpi in (150, 300):
        out = tmp_path / f"out{dpi}"
        code, text = run_decode(r.pages(dpi), key_file, out, capsys)
        assert code == 0, text
        assert_written(out, r.bundle)
        assert "All 2 artifact(s) verified" in text
    qr_pages = r.pages(150)[1:]
    assert zbar_texts(qr_pages) == {c.text for c in r.sheet.codes}


def test_round_trip_200kb(
    bundles: dict[int, b.Bundle],
    render: Callable[..., Rendered],
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    r = render(bundles[200 * 1024])
    assert r.sheet.pages >= 18  # ~12 KB of payload per A4 page
    low = r.pages(150)
    code, text = run_decode(low, key_file, tmp_path / "out150", capsys)
    assert code == 0, text
    assert_written(tmp_path / "out150", r.bundle)
    assert zbar_texts(low[1:]) == {c.text for c in r.sheet.codes}
    # 300 dpi is slow to rasterise: three pages at 300 dpi, the rest at 150 dpi.
    high = r.pages(300, 2, 4)
    assert len(high) == 3
    mixed = high + low[4:]
    code, text = run_decode(mixed, key_file, tmp_path / "out300", capsys)
    assert code == 0, text
    assert_written(tmp_path / "out300", r.bundle)


def test_us_letter_sheet_round_trip(
    bundles: dict[int, b.Bundle],
    render: Callable[..., Rendered],
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    r = render(bundles[50 * 1024], paper="Letter")
    assert r.sheet.paper == "Letter"
    first_qr_page = min(c.page for c in r.sheet.codes)
    assert len(r.sheet.codes_on_page(first_qr_page)) == 9  # 3 x 3 codes of 59.4 mm on Letter
    pdfinfo = subprocess.run(
        [need_tool("pdfinfo", "poppler-utils"), str(r.pdf)], capture_output=True, text=True
    )
    assert "612 x 792 pts" in pdfinfo.stdout
    code, text = run_decode(r.pages(150), key_file, tmp_path / "out", capsys)
    assert code == 0, text
    assert_written(tmp_path / "out", r.bundle)


def test_missing_page_names_the_missing_frames(
    bundles: dict[int, b.Bundle],
    render: Callable[..., Rendered],
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    r = render(bundles[50 * 1024])
    pages = r.pages(150)
    second_qr_page = sorted({c.page for c in r.sheet.codes})[1]
    lost = r.sheet.codes_on_page(second_qr_page)
    indexes = [frames.parse(c.text).index for c in lost]
    count = frames.parse(lost[0].text).count
    assert {frames.parse(c.text).payload for c in lost} == {1}
    out = tmp_path / "out"
    kept = pages[: second_qr_page - 1] + pages[second_qr_page:]
    code, text = run_decode(kept, key_file, out, capsys)
    assert code == 1
    expected = f"SKR example.com: frames {indexes[0]}-{indexes[-1]} of {count} missing"
    assert f"MISSING {expected}" in text
    assert (out / "ds.txt").exists()
    assert not (out / "skr.bin").exists()


def test_shuffled_pages_and_a_page_from_another_ceremony(
    signer: signing.SoftwareSigner,
    bundles: dict[int, b.Bundle],
    render: Callable[..., Rendered],
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ours = render(bundles[50 * 1024])
    other_bundle = make_bundle(signer, _artifacts(5000, seed=9), ceremony_id="kc-2027-q1")
    other = render(other_bundle)
    pages = ours.pages(150)[1:]
    random.Random(3).shuffle(pages)
    foreign_page = min(c.page for c in other.sheet.codes)
    foreign = other.pages(150)[foreign_page - 1]
    code, text = run_decode([*pages[:3], foreign, *pages[3:]], key_file, tmp_path / "out", capsys)
    assert code == 0, text
    assert_written(tmp_path / "out", ours.bundle)
    n = len(other.sheet.codes_on_page(foreign_page))
    assert f"NOTE {n} frame(s) of set {other_bundle.manifest.set_id}" in text
    assert "set aside" in text


def test_forged_manifest_signature_rejects_everything(
    signer: signing.SoftwareSigner,
    bundles: dict[int, b.Bundle],
    render: Callable[..., Rendered],
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    genuine = bundles[1024]
    forged = b.Bundle(
        b.SignedManifest(
            genuine.signed.manifest, genuine.signed.public_key_der, bytes(63) + b"\x01"
        ),
        genuine.artifacts,
    )
    r = render(forged)
    out = tmp_path / "out"
    code, text = run_decode(r.pages(150), key_file, out, capsys)
    assert code == 1
    assert "Signature: signature does not verify" in text
    assert not out.exists() or not any(out.iterdir())


def test_flipped_byte_in_an_artifact_is_rejected(
    bundles: dict[int, b.Bundle],
    render: Callable[..., Rendered],
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    genuine = bundles[1024]
    data = bytearray(genuine.artifacts[0].data)
    data[100] ^= 0x01
    tampered = b.Bundle(
        genuine.signed,
        (b.Artifact("skr.bin", bytes(data), "application/xml", "SKR example.com"),
         genuine.artifacts[1]),
    )  # fmt: skip
    r = render(tampered)
    out = tmp_path / "out"
    code, text = run_decode(r.pages(150), key_file, out, capsys)
    assert code == 1
    assert "REJECTED SKR example.com: SHA-256" in text
    assert not (out / "skr.bin").exists()
    assert (out / "ds.txt").read_bytes() == genuine.artifacts[1].data


def test_photo_like_scan_decodes(
    bundles: dict[int, b.Bundle],
    render: Callable[..., Rendered],
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A tilted, blurred, JPEG-compressed 200 dpi 'photo' of each page still decodes."""
    from PIL import Image, ImageFilter

    r = render(bundles[1024])
    photos = []
    for i, page in enumerate(r.pages(300)):
        with Image.open(page) as img:
            tilted = img.convert("L").rotate(3 + i, expand=True, fillcolor=255)
            small = tilted.resize((tilted.width * 2 // 3, tilted.height * 2 // 3))
            blurred = small.filter(ImageFilter.GaussianBlur(0.8))
            path = tmp_path / f"photo-{i}.jpg"
            blurred.save(path, quality=70)
            photos.append(path)
    code, text = run_decode(photos, key_file, tmp_path / "out", capsys)
    assert code == 0, text
    assert_written(tmp_path / "out", r.bundle)
