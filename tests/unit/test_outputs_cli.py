"""`appliance decode` on a media bundle folder, key formats and usage errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from appliance import cli, signing
from appliance.outputs import bundle as b
from tests.unit.test_outputs_bundle import make_bundle


@pytest.fixture
def media(tmp_path: Path) -> tuple[Path, signing.SoftwareSigner, b.Bundle]:
    signer = signing.SoftwareSigner()
    bundle = make_bundle(signer)
    return b.write_bundle(bundle, tmp_path / "media"), signer, bundle


def _pem(signer: signing.SoftwareSigner, path: Path) -> Path:
    key = serialization.load_der_public_key(signer.public_key_der())
    path.write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def test_media_folder_verifies_with_a_pem_key(
    media: tuple[Path, signing.SoftwareSigner, b.Bundle],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, signer, bundle = media
    key = _pem(signer, tmp_path / "key.pem")
    out = tmp_path / "out"
    assert cli.main(["decode", str(folder), "--pubkey", str(key), "--out", str(out)]) == 0
    for a in bundle.artifacts:
        assert (out / a.name).read_bytes() == a.data
    assert "All 2 artifact(s) verified" in capsys.readouterr().out


def test_media_folder_with_a_flipped_byte_is_refused(
    media: tuple[Path, signing.SoftwareSigner, b.Bundle],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, signer, _ = media
    data = bytearray((folder / "ds.txt").read_bytes())
    data[0] ^= 0x20
    (folder / "ds.txt").write_bytes(bytes(data))
    key = tmp_path / "key.der"
    key.write_bytes(signer.public_key_der())
    out = tmp_path / "out"
    assert cli.main(["decode", str(folder), "--pubkey", str(key), "--out", str(out)]) == 1
    assert "DS example.com: SHA-256" in capsys.readouterr().err
    assert not out.exists()


def test_wrong_key_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "key.pem"
    key.write_text("-----BEGIN PUBLIC KEY-----\nnonsense\n-----END PUBLIC KEY-----\n")
    assert cli.main(["decode", "x.png", "--pubkey", str(key), "--out", str(tmp_path)]) == 2
    assert "not a PEM public key" in capsys.readouterr().err


def test_no_codes_in_the_scans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("L", (200, 200), 255).save(blank)
    key = tmp_path / "key.der"
    key.write_bytes(signing.SoftwareSigner().public_key_der())
    code = cli.main(["decode", str(blank), "--pubkey", str(key), "--out", str(tmp_path / "o")])
    assert code == 1
    assert "no ceremony QR frames were found" in capsys.readouterr().err
