"""Paper copies (Markdown, PDF) and the `appliance script` commands."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from appliance.ceremony import render
from appliance.ceremony.loader import load_script
from appliance.ceremony.registry import default_registry
from appliance.cli import main
from tests.support.services import need_tool

ROOT = Path(__file__).resolve().parents[2]
KSR_SIGN = ROOT / "scripts/ksr-sign.toml"


def test_markdown_has_words_checks_and_signature_lines() -> None:
    script = load_script(KSR_SIGN, default_registry())
    text = render.markdown(script)
    assert text.startswith("# KSR signing ceremony")
    assert script.sha256 in text
    assert "| CO3 | | |" in text  # a row per seat to fill in
    assert "> I sign the key bundles of the KSR with the KSK and write the SKR." in text
    assert "- [ ] IW confirms the words match the hash received from the zone operator." in text
    assert '**Action:** `ksr.sign(ksr = "load-ksr", zones = "zones")`' in text
    assert text.count("IW initials: ________") == sum(1 for _ in script.steps())
    assert "SSC2: ______________________________  date: __________" in text


def test_pdf_embeds_the_font_and_carries_the_words(tmp_path: Path) -> None:
    pdftotext = need_tool("pdftotext", "poppler-utils")
    if not (render.FONT_DIR / "DejaVuSans.ttf").exists():
        pytest.fail("fonts-dejavu-core is missing (deps/apt-packages.txt)")
    out = tmp_path / "ksr-sign.pdf"
    assert main(["script", "print", str(KSR_SIGN), "--pdf", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(b"%PDF") and b"DejaVu" in data
    text = subprocess.run(
        [pdftotext, str(out), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "KSR signing ceremony" in text and "Sign the KSR" in text
    assert "\u2610 IW reads the SKR hash from the screen." in text
    again = tmp_path / "again.pdf"
    render.pdf(load_script(KSR_SIGN, default_registry()), again)
    assert again.read_bytes() == data  # same script, same paper


def test_script_check_cli(capsys: pytest.CaptureFixture[str]) -> None:
    broken = ROOT / "tests/data/scripts-broken/unknown-action.toml"
    assert main(["script", "check", str(KSR_SIGN), str(broken)]) == 1
    captured = capsys.readouterr()
    assert f"{KSR_SIGN}: ok (ksr-sign 1.0: 4 acts, 11 steps)" in captured.out
    assert f"{broken}, line 22: unknown action 'hsm.activat'" in captured.err
    assert main(["script", "print", str(KSR_SIGN), "--markdown"]) == 0
    assert capsys.readouterr().out.startswith("# KSR signing ceremony")
    assert main(["script", "actions"]) == 0
    listing = capsys.readouterr().out
    assert "hash.readaloud [implemented]" in listing
    assert "    quorum: a whole number >= 1 and <= 16" in listing
