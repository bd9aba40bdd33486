from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance import atomic, canonical, pgpwords, signing


def test_pgp_words_known_values() -> None:
    assert pgpwords.phrase(bytes([0x00, 0x00, 0xFF, 0xFF])) == "aardvark adroitness Zulu Yucatan"
    assert pgpwords.words(bytes([0x17, 0x17])) == ["banjo", "bookseller"]


@given(st.binary(max_size=64))
def test_pgp_words_round_trip(data: bytes) -> None:
    assert pgpwords.decode(pgpwords.phrase(data)) == data


def test_pgp_words_detect_swapped_words() -> None:
    with pytest.raises(ValueError, match="word 1"):
        pgpwords.decode("adroitness aardvark")


def test_canonical_json_is_sorted_and_compact() -> None:
    assert (
        canonical.dumps({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'.encode()
    )
    with pytest.raises(TypeError):
        canonical.dumps({"x": 1.5})
    assert canonical.sha256_hex({"a": 1}) == hashlib.sha256(b'{"a":1}').hexdigest()


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"
    atomic.write_text(target, "one")
    atomic.write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]


def test_atomic_write_failure_keeps_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out.txt"
    atomic.write_text(target, "old")

    def boom(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", boom)
    with pytest.raises(OSError):
        atomic.write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_signatures_verify_and_detect_changes() -> None:
    signer = signing.SoftwareSigner()
    sig = signer.sign(b"journal head")
    assert len(sig) == 64
    signing.verify(signer.public_key_der(), b"journal head", sig)
    with pytest.raises(signing.SignatureInvalid):
        signing.verify(signer.public_key_der(), b"journal head!", sig)
    with pytest.raises(signing.SignatureInvalid):
        signing.verify(signing.SoftwareSigner().public_key_der(), b"journal head", sig)
    with pytest.raises(signing.SignatureInvalid, match="64"):
        signing.verify(signer.public_key_der(), b"journal head", sig[:63])
    assert len(signing.fingerprint(signer.public_key_der())) == 64


def test_hex_and_base64_accept_only_the_spelling_the_appliance_writes() -> None:
    assert canonical.hex_bytes("00ab") == b"\x00\xab"
    with pytest.raises(ValueError, match="canonical"):
        canonical.hex_bytes("00AB")  # same bytes, another spelling: a changed file
    assert canonical.b64_bytes("QQ==") == b"A"
    with pytest.raises(ValueError, match="canonical"):
        canonical.b64_bytes("QR==")  # non-zero padding bits still decode to b"A"
    with pytest.raises(ValueError):
        canonical.b64_bytes("Q!==")
