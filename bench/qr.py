"""QR sheet capacity and decodability, measured on rasterised pages.

For each candidate (version, error-correction level, module pitch) this renders an A4 sheet
of random payload, rasterises it with pdftoppm at 150 dpi, and counts the frames zxing-cpp
and zbar read back. It prints payload bytes per page and the time to build the sheet for
200 KB at the chosen settings, plus the base45 vs base32 comparison. Output: one JSON object
per line.

    .venv/bin/python bench/qr.py            # the chosen settings + encoding comparison
    .venv/bin/python bench/qr.py --sweep    # every candidate (several minutes)
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from appliance import signing  # noqa: E402
from appliance.outputs import base45, decode, frames, qr, sheet  # noqa: E402
from appliance.outputs import bundle as b  # noqa: E402

CANDIDATES = [
    qr.QrSettings(25, "M", 3),
    qr.QrSettings(25, "M", 60 / 117 / qr.GRID_MM),  # 60 mm, modules off the pixel grid
    qr.QrSettings(25, "L", 3),
    qr.QrSettings(25, "Q", 3),
    qr.QrSettings(30, "M", 3),
    qr.QrSettings(40, "M", 2),
    qr.QrSettings(40, "M", 2.1),  # the same, 5 % larger: modules off the pixel grid
    qr.QrSettings(40, "M", 2.5),
    qr.QrSettings(40, "M", 3),
    qr.QrSettings(20, "M", 3),
    qr.QrSettings(20, "M", 4),
]


def _bundle(size: int, signer: signing.SoftwareSigner) -> b.Bundle:
    data = random.Random(size).randbytes(size)
    return b.build_bundle(
        ceremony_id="bench",
        script_sha256="0" * 64,
        journal_head="1" * 64,
        artifacts=[b.Artifact("payload.bin", data, "application/octet-stream", "Payload")],
        signer=signer,
        created="2026-12-04T00:00:00Z",
    )


def _pages(pdf: bytes, dpi: int, folder: Path) -> list[Path]:
    path = folder / "sheet.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", str(dpi), "-gray", "-png", str(path), str(folder / "p")],
                   check=True)  # fmt: skip
    return sorted(folder.glob("p-*.png"))


def _zbar(pages: list[Path]) -> set[str]:
    out = subprocess.run(["zbarimg", "-q", "--raw", *map(str, pages)],
                         capture_output=True, text=True, check=False)  # fmt: skip
    return set(out.stdout.splitlines())


def _degrade(page: Path) -> Path:
    """A scan, not a perfect rendering: 1.5 degrees of tilt, a little blur, JPEG."""
    from PIL import Image, ImageFilter

    with Image.open(page) as img:
        tilted = img.convert("L").rotate(1.5, expand=True, fillcolor=255)
        out = page.with_suffix(".jpg")
        tilted.filter(ImageFilter.GaussianBlur(0.6)).save(out, quality=75)
    return out


def measure(settings: qr.QrSettings, payload: int, dpi: int = 150) -> dict[str, object]:
    """Decodability and density of one candidate on A4 at `dpi`."""
    signer = signing.SoftwareSigner()
    bundle = _bundle(payload, signer)
    try:
        cols, rows = sheet.grid("A4", settings)
    except Exception as exc:  # noqa: BLE001 - a candidate that does not fit is a result
        return {"settings": settings.__dict__, "fits": False, "error": str(exc)}
    t0 = time.perf_counter()
    rendered = sheet.render_sheet(bundle, paper="A4", settings=settings)
    build = time.perf_counter() - t0
    expected = {c.text for c in rendered.codes}
    with tempfile.TemporaryDirectory() as tmp:
        pages = _pages(rendered.pdf, dpi, Path(tmp))[1:]
        zx: set[str] = set()
        for page in pages:
            zx |= set(decode.read_image(page))
        zb = _zbar(pages)
        scans = [_degrade(p) for p in pages]
        zx_scan: set[str] = set()
        for scan in scans:
            zx_scan |= set(decode.read_image(scan))
        zb_scan = _zbar(scans)
    capacity = qr.capacity_chars(settings.version, settings.ec)
    per_frame = frames.bytes_per_frame(capacity, "AAAA", 1, 999)
    return {
        "settings": {**settings.__dict__, "size_mm": round(settings.size_mm, 1)},
        "dpi": dpi,
        "codes_per_a4_page": cols * rows,
        "bytes_per_frame": per_frame,
        "payload_bytes_per_a4_page": per_frame * cols * rows,
        "frames": len(expected),
        "zxing_read": len(expected & zx),
        "zbar_read": len(expected & zb),
        "zxing_read_tilted_blurred": len(expected & zx_scan),
        "zbar_read_tilted_blurred": len(expected & zb_scan),
        "sheet_build_seconds": round(build, 2),
    }


def encodings() -> dict[str, object]:
    """Bytes one v25-M symbol carries with base45 against unpadded base32."""
    capacity = qr.capacity_chars(25, "M")
    header = capacity - frames.bytes_per_frame(capacity, "AAAA", 1, 999) // 2 * 3
    free = capacity - header
    b45 = free // 3 * 2
    b32 = free * 5 // 8
    sample = random.Random(0).randbytes(3000)
    return {
        "capacity_chars_v25M": capacity,
        "base45_bytes_per_frame": b45,
        "base32_bytes_per_frame": b32,
        "base45_chars_per_byte": round(len(base45.encode(sample)) / len(sample), 3),
        "base32_chars_per_byte": round(
            len(base64.b32encode(sample).decode().rstrip("=")) / len(sample), 3
        ),
        "base45_gain_percent": round(100 * (b45 - b32) / b32, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sweep", action="store_true", help="measure every candidate")
    parser.add_argument("--payload", type=int, default=60_000, help="bytes per candidate")
    args = parser.parse_args()
    for tool in ("pdftoppm", "zbarimg"):
        if shutil.which(tool) is None:
            print(json.dumps({"error": f"{tool} missing"}))
            return 1
    print(json.dumps({"encoding": encodings()}))
    for settings in CANDIDATES if args.sweep else [qr.CHOSEN]:
        print(json.dumps({"candidate": measure(settings, args.payload)}), flush=True)
    signer = signing.SoftwareSigner()
    big_bundle = _bundle(200 * 1024, signer)
    t0, c0 = time.perf_counter(), time.process_time()
    big = sheet.render_sheet(big_bundle, paper="A4")
    cpu = time.process_time() - c0
    print(json.dumps({"chosen": qr.CHOSEN.__dict__, "payload_bytes": 200 * 1024,
                      "pages": big.pages, "codes": len(big.codes),
                      "pdf_bytes": len(big.pdf),
                      "sheet_build_seconds": round(time.perf_counter() - t0, 2),
                      "sheet_build_cpu_seconds": round(cpu, 2),
                      "load_average": round(os.getloadavg()[0], 1)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
