"""DNSSEC algorithms as the HSM sees them: key types, mechanisms, public keys, key tags.

Pure code (no PKCS#11): what each algorithm needs from the token, how its public key is
written into a DNSKEY record, and how a signature is checked in software.

| DNSSEC | key                | token mechanism   | host-side hashing     | signature  |
|--------|--------------------|-------------------|-----------------------|------------|
| 8      | RSA 2048/3072/4096 | CKM_SHA256_RSA_PKCS | none (token hashes) | PKCS#1 v1.5 |
| 13     | EC P-256           | CKM_ECDSA         | SHA-256               | r||s 64    |
| 14     | EC P-384           | CKM_ECDSA         | SHA-384               | r||s 96    |
| 15     | Ed25519            | CKM_EDDSA         | none (pure EdDSA)     | 64 bytes   |

SoftHSM 2.6.1 has no CKM_ECDSA_SHA256/384, so ECDSA hashes on the host; the output of every
mechanism above is already the DNSSEC wire format (RFC 5702, 6605, 8080).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from appliance.hsm.errors import SignatureCheckFailed, UnsupportedAlgorithm

KeyKind = Literal["rsa", "ec", "ed25519"]

#: DER of the named-curve OIDs (CKA_EC_PARAMS).
P256_PARAMS = bytes.fromhex("06082a8648ce3d030107")
P384_PARAMS = bytes.fromhex("06052b81040022")
ED25519_PARAMS = bytes.fromhex("06032b6570")

RSA_SIZES = (2048, 3072, 4096)
RSA_EXPONENT = 65537


@dataclass(frozen=True)
class KeySpec:
    """What to generate: a DNSSEC algorithm (or the ceremony key) and, for RSA, a size."""

    kind: KeyKind
    bits: int
    ec_params: bytes = b""
    #: DNSSEC algorithm number, None for the ceremony key.
    algorithm: int | None = None

    @property
    def type_name(self) -> str:
        """Short type name as written in manifests and inventories."""
        if self.kind == "rsa":
            return f"rsa-{self.bits}"
        if self.kind == "ed25519":
            return "ed25519"
        return "ec-p256" if self.ec_params == P256_PARAMS else "ec-p384"


def spec_for(algorithm: int, bits: int | None = None) -> KeySpec:
    """The key to generate for a DNSSEC algorithm; RSA sizes 2048 (default), 3072, 4096."""
    if algorithm == 8:
        size = bits or 2048
        if size not in RSA_SIZES:
            raise UnsupportedAlgorithm(
                f"RSA key size {size} is not offered.",
                hint="Choose 2048, 3072 or 4096 bits for algorithm 8 (RSASHA256).",
                algorithm=algorithm,
            )
        return KeySpec("rsa", size, algorithm=8)
    if bits is not None:
        raise UnsupportedAlgorithm(
            f"Algorithm {algorithm} has a fixed key size; do not pass a size.",
            hint="Give a size only for algorithm 8 (RSA).",
            algorithm=algorithm,
        )
    if algorithm == 13:
        return KeySpec("ec", 256, P256_PARAMS, 13)
    if algorithm == 14:
        return KeySpec("ec", 384, P384_PARAMS, 14)
    if algorithm == 15:
        return KeySpec("ed25519", 256, ED25519_PARAMS, 15)
    raise UnsupportedAlgorithm(
        f"DNSSEC algorithm {algorithm} is not supported.",
        hint="Use 8 (RSASHA256), 13 (ECDSAP256SHA256), 14 (ECDSAP384SHA384) or 15 (ED25519).",
        algorithm=algorithm,
    )


CEREMONY_SPEC = KeySpec("ec", 256, P256_PARAMS, None)


def spec_from_public_key(public_key_der: bytes, *, ceremony: bool = False) -> KeySpec:
    """The spec of an existing key, from its SubjectPublicKeyInfo."""
    key = serialization.load_der_public_key(public_key_der)
    if isinstance(key, rsa.RSAPublicKey):
        return KeySpec("rsa", key.key_size, algorithm=8)
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name == "secp256r1":
            return CEREMONY_SPEC if ceremony else KeySpec("ec", 256, P256_PARAMS, 13)
        if key.curve.name == "secp384r1":
            return KeySpec("ec", 384, P384_PARAMS, 14)
    if isinstance(key, ed25519.Ed25519PublicKey):
        return KeySpec("ed25519", 256, ED25519_PARAMS, 15)
    raise UnsupportedAlgorithm("The public key is of a type the appliance does not use.")


# -- public keys ---------------------------------------------------------------------------


def strip_ec_point(value: bytes) -> bytes:
    """CKA_EC_POINT arrives DER-wrapped in an OCTET STRING (04 len ...): return the content."""
    if len(value) >= 2 and value[0] == 0x04:
        length = value[1]
        if length < 0x80 and len(value) == 2 + length:
            return value[2:]
        if length == 0x81 and len(value) >= 3 and len(value) == 3 + value[2]:
            return value[3:]
    return value  # some modules return the raw point


def wrap_ec_point(point: bytes) -> bytes:
    """The DER OCTET STRING form of CKA_EC_POINT (what a public key object stores)."""
    if len(point) < 0x80:
        return bytes([0x04, len(point)]) + point
    return bytes([0x04, 0x81, len(point)]) + point


def spki_from_rsa(modulus: bytes, exponent: bytes) -> bytes:
    n = int.from_bytes(modulus, "big")
    e = int.from_bytes(exponent, "big")
    return _spki(rsa.RSAPublicNumbers(e, n).public_key())


def spki_from_ec(params: bytes, ec_point: bytes) -> bytes:
    point = strip_ec_point(ec_point)
    if params == P256_PARAMS:
        return _spki(ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point))
    if params == P384_PARAMS:
        return _spki(ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP384R1(), point))
    if params == ED25519_PARAMS or params.startswith(b"\x13"):  # OID or printable "edwards25519"
        return _spki(ed25519.Ed25519PublicKey.from_public_bytes(point))
    raise UnsupportedAlgorithm(f"EC parameters {params.hex()} are not a curve the appliance uses.")


def _spki(key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def public_numbers_for_token(public_key_der: bytes) -> dict[str, bytes]:
    """What a PKCS#11 public key object needs: modulus/exponent or params/point."""
    key = serialization.load_der_public_key(public_key_der)
    if isinstance(key, rsa.RSAPublicKey):
        nums = key.public_numbers()
        return {
            "modulus": nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big"),
            "exponent": nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big"),
        }
    if isinstance(key, ec.EllipticCurvePublicKey):
        params = P256_PARAMS if key.curve.name == "secp256r1" else P384_PARAMS
        point = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"params": params, "point": wrap_ec_point(point)}
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"params": ED25519_PARAMS, "point": wrap_ec_point(raw)}
    raise UnsupportedAlgorithm("The public key is of a type the appliance does not use.")


def dnskey_public_key(public_key_der: bytes) -> bytes:
    """The DNSKEY public key field: RFC 3110 (RSA), RFC 6605 x||y (ECDSA), RFC 8080 raw."""
    key = serialization.load_der_public_key(public_key_der)
    if isinstance(key, rsa.RSAPublicKey):
        nums = key.public_numbers()
        exp = nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big")
        mod = nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big")
        prefix = bytes([len(exp)]) if len(exp) < 256 else b"\x00" + len(exp).to_bytes(2, "big")
        return prefix + exp + mod
    if isinstance(key, ec.EllipticCurvePublicKey):
        point = key.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return point[1:]
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raise UnsupportedAlgorithm("The public key is of a type the appliance does not use.")


def key_tag(flags: int, algorithm: int, dnskey_key: bytes) -> int:
    """RFC 4034 appendix B key tag of the DNSKEY (flags, protocol 3, algorithm, key)."""
    rdata = flags.to_bytes(2, "big") + bytes([3, algorithm]) + dnskey_key
    acc = 0
    for i, byte in enumerate(rdata):
        acc += byte if i & 1 else byte << 8
    acc += (acc >> 16) & 0xFFFF
    return acc & 0xFFFF


def key_id(public_key_der: bytes) -> bytes:
    """CKA_ID convention: SHA-1 of the SubjectPublicKeyInfo DER (20 bytes).

    This is the key ID GnuTLS computes (and Knot's PKCS#11 keystore uses), so the same key
    gets the same id on every token it is restored to.
    """
    return hashlib.sha1(public_key_der, usedforsecurity=False).digest()


# -- signing helpers -----------------------------------------------------------------------


def prepare(spec: KeySpec) -> Callable[[bytes], bytes]:
    """What goes to the token for `data`: the data itself or its host-side hash."""
    if spec.kind == "ec":
        return _sha256 if spec.bits == 256 else _sha384
    return _identity


def _identity(data: bytes) -> bytes:
    return data


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _sha384(data: bytes) -> bytes:
    return hashlib.sha384(data).digest()


Verifier = Callable[[bytes, bytes], None]


def verifier(public_key_der: bytes) -> Verifier:
    """A function (token_input, signature) raising SignatureCheckFailed unless it verifies.

    `token_input` is what was sent to the token (`prepare(spec)(data)`): the data for RSA and
    Ed25519, the host-side digest for ECDSA (checked as a pre-hashed value, so the data is
    hashed once). The public key is loaded once: a check costs only the verification.
    """
    key = serialization.load_der_public_key(public_key_der)
    fail = "The HSM's signature does not verify with the recorded public key."
    hint = "Do not use this signature; check the token and its keys (appliance hsm inventory)."
    if isinstance(key, rsa.RSAPublicKey):
        rsa_key = key
        pkcs1 = padding.PKCS1v15()
        sha256 = hashes.SHA256()

        def check_rsa(data: bytes, signature: bytes) -> None:
            try:
                rsa_key.verify(signature, data, pkcs1, sha256)
            except InvalidSignature:
                raise SignatureCheckFailed(fail, hint=hint) from None

        return check_rsa
    if isinstance(key, ec.EllipticCurvePublicKey):
        ec_key = key
        size = (key.curve.key_size + 7) // 8
        ecdsa = ec.ECDSA(Prehashed(hashes.SHA256() if size == 32 else hashes.SHA384()))

        def check_ec(data: bytes, signature: bytes) -> None:
            if len(signature) != 2 * size:
                raise SignatureCheckFailed(fail, hint=hint)
            der = encode_dss_signature(
                int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            )
            try:
                ec_key.verify(der, data, ecdsa)
            except InvalidSignature:
                raise SignatureCheckFailed(fail, hint=hint) from None

        return check_ec
    if isinstance(key, ed25519.Ed25519PublicKey):
        ed_key = key

        def check_ed(data: bytes, signature: bytes) -> None:
            try:
                ed_key.verify(signature, data)
            except InvalidSignature:
                raise SignatureCheckFailed(fail, hint=hint) from None

        return check_ed
    raise UnsupportedAlgorithm("The public key is of a type the appliance does not use.")
