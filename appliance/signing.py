"""The ceremony key's signatures: one format for journals, bundles, backups and rosters.

The ceremony key is an ECDSA P-256 key in the HSM. Signatures are raw r||s (64 bytes, the
form PKCS#11 returns) over SHA-256 of the message. Anything that signs implements
`CeremonySigner`; the HSM adapter provides the real one, `SoftwareSigner` serves tests and
the registry-side tools that only verify.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from appliance.errors import ApplianceError

ALGORITHM = "ecdsa-p256-sha256"


class SignatureInvalid(ApplianceError):
    title = "Signature"


class CeremonySigner(Protocol):
    def public_key_der(self) -> bytes:
        """SubjectPublicKeyInfo DER of the signing key."""
        ...

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 over SHA-256(data), raw r||s (64 bytes)."""
        ...


def fingerprint(public_key_der: bytes) -> str:
    """SHA-256 of the SubjectPublicKeyInfo, hex: how people name the ceremony key."""
    return hashlib.sha256(public_key_der).hexdigest()


def raw_to_der(signature: bytes) -> bytes:
    if len(signature) != 64:
        raise SignatureInvalid(f"signature has {len(signature)} bytes, expected 64 (r||s)")
    return encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )


def der_to_raw(signature: bytes) -> bytes:
    r, s = decode_dss_signature(signature)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def load_public_key(public_key_der: bytes) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(public_key_der)
    except ValueError:
        raise SignatureInvalid("the ceremony public key is not valid DER") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise SignatureInvalid("the ceremony public key is not an ECDSA P-256 key")
    return key


def verify(public_key_der: bytes, data: bytes, signature: bytes) -> None:
    """Raise SignatureInvalid unless `signature` is the ceremony key's over `data`."""
    key = load_public_key(public_key_der)
    try:
        key.verify(raw_to_der(signature), data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise SignatureInvalid(
            "signature does not verify with ceremony key " + fingerprint(public_key_der)[:16],
            hint="The data was changed or was signed by another key: do not use it.",
        ) from None


class SoftwareSigner:
    """A P-256 key in process memory: for tests and tools, never for a real ceremony."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey | None = None) -> None:
        self._key = private_key or ec.generate_private_key(ec.SECP256R1())

    def public_key_der(self) -> bytes:
        return self._key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, data: bytes) -> bytes:
        return der_to_raw(self._key.sign(data, ec.ECDSA(hashes.SHA256())))
