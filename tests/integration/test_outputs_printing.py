"""Printing through a real cupsd (started by tests.support.cups) into a PDF-writing queue."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from appliance import signing
from appliance.outputs import bundle as b
from appliance.outputs.printer import print_or_save
from appliance.outputs.sheet import render_sheet
from tests.support.cups import Cups
from tests.unit.test_outputs_bundle import make_bundle

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def signer() -> signing.SoftwareSigner:
    return signing.SoftwareSigner()


@pytest.fixture(scope="module")
def bundle(signer: signing.SoftwareSigner) -> b.Bundle:
    skr = bytes(range(256)) * 12
    return make_bundle(
        signer,
        [
            b.Artifact("skr.xml", skr, "application/xml", "SKR example.com"),
            b.Artifact("ds.txt", b"example.com. IN DS 1 13 2 AB\n", "text/plain", "DS example.com"),
        ],
    )


def test_printed_job_decodes_back_to_the_artifacts(
    cups: Cups, bundle: b.Bundle, signer: signing.SoftwareSigner, tmp_path: Path
) -> None:
    sheet = render_sheet(bundle)
    media = tmp_path / "media"
    before = set(cups.printed())
    outcome = print_or_save(
        sheet.pdf, media, "sheet.pdf", cups.queue, copies=2, server=cups.socket, wait_seconds=30
    )
    assert outcome.status == "printed", (outcome, cups.log()[-2000:])
    assert outcome.job_id.startswith(f"{cups.queue}-")
    assert "Printed on ceremony-pdf" in outcome.operator_text()
    assert (media / "sheet.pdf").read_bytes() == sheet.pdf  # the copy on the media
    (printed,) = set(cups.printed()) - before
    key = tmp_path / "ceremony.der"
    key.write_bytes(signer.public_key_der())
    out = tmp_path / "out"
    # The real entry point, reading the printed PDF itself (pdftoppm inside).
    result = subprocess.run(
        [sys.executable, "-m", "appliance", "decode", str(printed), "--pubkey", str(key),
         "--out", str(out), "--dpi", "150"],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    for a in bundle.artifacts:
        assert (out / a.name).read_bytes() == a.data


def test_failed_job_is_reported_and_the_pdf_is_kept(
    cups: Cups, bundle: b.Bundle, tmp_path: Path
) -> None:
    cups.add_queue("broken", Path("/nonexistent/printer"))
    outcome = print_or_save(b"%PDF-1.4 test\n", tmp_path, "sheet.pdf", "broken",
                            server=cups.socket, wait_seconds=30)  # fmt: skip
    assert outcome.status == "failed"
    assert "aborted" in outcome.detail
    assert "failed" in outcome.operator_text()
    assert (tmp_path / "sheet.pdf").exists()


def test_unknown_queue_fails_with_cups_message(cups: Cups, tmp_path: Path) -> None:
    outcome = print_or_save(b"%PDF-1.4\n", tmp_path, "s.pdf", "no-such-queue", server=cups.socket)
    assert outcome.status == "failed"
    assert "no-such-queue" in outcome.detail or "does not exist" in outcome.detail


def test_job_on_a_stopped_printer_is_reported_queued(cups: Cups, tmp_path: Path) -> None:
    cups.add_queue("paused", cups.out)
    subprocess.run(["cupsdisable", "paused"], env=cups.env(), check=True)
    outcome = print_or_save(b"%PDF-1.4\n", tmp_path, "s.pdf", "paused",
                            server=cups.socket, wait_seconds=1)  # fmt: skip
    assert outcome.status == "queued"
    assert "pending" in outcome.detail
    assert "still waiting on paused" in outcome.operator_text()
