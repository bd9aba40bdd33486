"""DNSSEC algorithm helpers: public key fields, key tags, host-side hashing, verification."""

from __future__ import annotations

import hashlib

import dns.dnssec
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.DNSKEY
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from appliance.hsm import algorithms as alg
from appliance.hsm.errors import SignatureCheckFailed, UnsupportedAlgorithm

Private = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def _software_key(algorithm: int) -> Private:
    if algorithm == 8:
        return rsa.generate_private_key(65537, 2048)
    if algorithm == 13:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == 14:
        return ec.generate_private_key(ec.SECP384R1())
    return ed25519.Ed25519PrivateKey.generate()


def _spki(key: Private) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _token_sign(key: Private, algorithm: int, token_input: bytes) -> bytes:
    """What the token returns for `token_input` (as PKCS#11 mechanisms define it)."""
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(token_input, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

        h = hashes.SHA256() if algorithm == 13 else hashes.SHA384()
        r, s = decode_dss_signature(key.sign(token_input, ec.ECDSA(Prehashed(h))))
        size = 32 if algorithm == 13 else 48
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")
    return key.sign(token_input)


@pytest.mark.parametrize("algorithm", [8, 13, 14, 15])
def test_dnskey_field_and_key_tags_match_dnspython(algorithm: int) -> None:
    key = _software_key(algorithm)
    reference = dns.dnssec.make_dnskey(key.public_key(), algorithm, flags=257)
    field = alg.dnskey_public_key(_spki(key))
    assert field == reference.key
    for flags in (257, 256):
        rdata = dns.rdtypes.ANY.DNSKEY.DNSKEY(
            dns.rdataclass.IN, dns.rdatatype.DNSKEY, flags, 3, algorithm, field
        )
        assert alg.key_tag(flags, algorithm, field) == dns.dnssec.key_id(rdata)


@pytest.mark.parametrize("algorithm", [8, 13, 14, 15])
def test_verifier_accepts_token_signatures_and_rejects_others(algorithm: int) -> None:
    key = _software_key(algorithm)
    spec = alg.spec_from_public_key(_spki(key))
    assert spec.algorithm == algorithm
    token_input = alg.prepare(spec)(b"the RRset")
    signature = _token_sign(key, algorithm, token_input)
    check = alg.verifier(_spki(key))
    check(token_input, signature)
    with pytest.raises(SignatureCheckFailed):
        check(alg.prepare(spec)(b"another RRset"), signature)
    other = _software_key(algorithm)
    with pytest.raises(SignatureCheckFailed):
        alg.verifier(_spki(other))(token_input, signature)


def test_ecdsa_hashes_on_the_host() -> None:
    assert alg.prepare(alg.spec_for(13))(b"x") == hashlib.sha256(b"x").digest()
    assert alg.prepare(alg.spec_for(14))(b"x") == hashlib.sha384(b"x").digest()
    assert alg.prepare(alg.spec_for(8))(b"x") == b"x"
    assert alg.prepare(alg.spec_for(15))(b"x") == b"x"


def test_specs_and_unsupported_choices() -> None:
    assert alg.spec_for(8).bits == 2048
    assert alg.spec_for(8, 4096).type_name == "rsa-4096"
    assert alg.spec_for(14).type_name == "ec-p384"
    with pytest.raises(UnsupportedAlgorithm, match="1024"):
        alg.spec_for(8, 1024)
    with pytest.raises(UnsupportedAlgorithm, match="algorithm 10"):
        alg.spec_for(10)
    with pytest.raises(UnsupportedAlgorithm):
        alg.spec_for(13, 256)


def test_ec_point_wrapping_round_trips() -> None:
    point = b"\x04" + bytes(range(64))
    wrapped = alg.wrap_ec_point(point)
    assert wrapped[:2] == b"\x04\x41"
    assert alg.strip_ec_point(wrapped) == point
    long_point = b"\x04" + bytes(range(96)) + bytes(32)
    assert alg.strip_ec_point(alg.wrap_ec_point(long_point)) == long_point


@pytest.mark.parametrize("algorithm", [8, 13, 14, 15])
def test_token_numbers_rebuild_the_same_public_key(algorithm: int) -> None:
    spki = _spki(_software_key(algorithm))
    nums = alg.public_numbers_for_token(spki)
    if algorithm == 8:
        rebuilt = alg.spki_from_rsa(nums["modulus"], nums["exponent"])
    else:
        rebuilt = alg.spki_from_ec(nums["params"], nums["point"])
    assert rebuilt == spki


def test_key_id_is_sha1_of_spki() -> None:
    spki = _spki(_software_key(13))
    assert alg.key_id(spki) == hashlib.sha1(spki).digest()  # noqa: S324 - the convention
