"""The signer port: what a KSK must offer to sign DNSSEC data, wherever its private half lives.

The HSM adapter's key objects satisfy `DnssecKeySigner` structurally; this package never
imports the HSM layer. `DnssecPrivateKey` plugs any such signer into dnspython
(`dns.dnssecalgs` GenericPrivateKey) so dnspython builds and verifies the RRSIGs.
`SoftwareKeySigner` holds a key in memory: for tests, benchmarks and labs, never a ceremony.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import dns.dnssecalgs
import dns.rdataclass
import dns.rdatatype
from dns.dnssecalgs.base import GenericPrivateKey, GenericPublicKey
from dns.rdtypes.ANY.DNSKEY import DNSKEY

from appliance.dnssec.errors import SigningError

#: DNSSEC algorithms a KSK may use (RSASHA256, ECDSAP256SHA256, ECDSAP384SHA384, ED25519).
SIGNING_ALGORITHMS = (8, 13, 14, 15)


@runtime_checkable
class DnssecKeySigner(Protocol):
    @property
    def algorithm(self) -> int: ...  # 8, 13, 14, 15

    @property
    def dnskey_public_key(self) -> bytes: ...  # DNSKEY public key field (RFC 3110 / 6605 / 8080)

    def sign(self, data: bytes) -> bytes: ...  # DNSSEC wire-format signature over data


class DnssecPrivateKey(GenericPrivateKey):
    """A dnspython private key whose signatures come from a `DnssecKeySigner`."""

    def __init__(self, key: Any) -> None:
        if not isinstance(key, DnssecKeySigner):
            raise TypeError("DnssecPrivateKey needs a DnssecKeySigner")
        self.signer: DnssecKeySigner = key
        # A signer may offer `sign_unverified` (the HSM key does): used only by callers that
        # verify every signature themselves, as `appliance.dnssec.sign` does for each RRSIG.
        self.sign_fast = getattr(key, "sign_unverified", key.sign)
        self.algorithm = key.algorithm
        self.public_cls = dns.dnssecalgs.get_algorithm_cls(key.algorithm).public_cls
        self._public = self.public_cls.from_dnskey(self.dnskey())

    def dnskey(self, flags: int = 257) -> DNSKEY:
        return DNSKEY(  # type: ignore[no-untyped-call]
            dns.rdataclass.IN,
            dns.rdatatype.DNSKEY,
            flags,
            3,
            self.signer.algorithm,
            self.signer.dnskey_public_key,
        )

    def sign(self, data: bytes, verify: bool = False, deterministic: bool = True) -> bytes:
        signature = self.signer.sign(data)
        if verify:
            try:
                self._public.verify(signature, data)
            except Exception as exc:
                raise SigningError(
                    f"The KSK's signature did not verify ({type(exc).__name__}).",
                    hint="Stop: the HSM key and its published DNSKEY disagree, or the HSM "
                    "is faulty. Nothing was written.",
                ) from None
        return signature

    def public_key(self) -> GenericPublicKey:
        return self._public

    @classmethod
    def from_pem(cls, private_pem: bytes, password: bytes | None = None) -> GenericPrivateKey:
        raise NotImplementedError("an HSM-backed key is never loaded from PEM")

    def to_pem(self, password: bytes | None = None) -> bytes:
        raise NotImplementedError("an HSM-backed key never leaves the HSM")


class SoftwareKeySigner:
    """A KSK held in memory by `cryptography` (tests, benchmarks, labs; never a ceremony)."""

    def __init__(self, private_key: Any, algorithm: int) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        expected: dict[int, type[Any]] = {
            8: rsa.RSAPrivateKey,
            13: ec.EllipticCurvePrivateKey,
            14: ec.EllipticCurvePrivateKey,
            15: ed25519.Ed25519PrivateKey,
        }
        if algorithm not in expected or not isinstance(private_key, expected[algorithm]):
            raise SigningError(f"Key type does not fit DNSSEC algorithm {algorithm}.")
        self._key = private_key
        self._algorithm = algorithm
        self._public = _encode_public(private_key, algorithm)

    @classmethod
    def generate(cls, algorithm: int, rsa_bits: int = 2048) -> SoftwareKeySigner:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        key: Any
        if algorithm == 8:
            key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
        elif algorithm == 13:
            key = ec.generate_private_key(ec.SECP256R1())
        elif algorithm == 14:
            key = ec.generate_private_key(ec.SECP384R1())
        elif algorithm == 15:
            key = ed25519.Ed25519PrivateKey.generate()
        else:
            raise SigningError(f"DNSSEC algorithm {algorithm} is not supported for a KSK.")
        return cls(key, algorithm)

    @classmethod
    def from_pem(cls, pem: bytes, algorithm: int) -> SoftwareKeySigner:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        return cls(load_pem_private_key(pem, password=None), algorithm)

    def to_pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        data: bytes = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return data

    @property
    def algorithm(self) -> int:
        return self._algorithm

    @property
    def dnskey_public_key(self) -> bytes:
        return self._public

    def sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec, padding
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        if self._algorithm == 8:
            out: bytes = self._key.sign(data, padding.PKCS1v15(), hashes.SHA256())
            return out
        if self._algorithm in (13, 14):
            size = 32 if self._algorithm == 13 else 48
            hash_alg = hashes.SHA256() if self._algorithm == 13 else hashes.SHA384()
            r, s = decode_dss_signature(self._key.sign(data, ec.ECDSA(hash_alg)))
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        raw: bytes = self._key.sign(data)
        return raw


def _encode_public(private_key: Any, algorithm: int) -> bytes:
    from cryptography.hazmat.primitives import serialization

    public = private_key.public_key()
    if algorithm == 8:
        numbers = public.public_numbers()
        exponent = numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")
        modulus = numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")
        if len(exponent) < 256:
            head = bytes([len(exponent)])
        else:
            head = b"\x00" + len(exponent).to_bytes(2, "big")
        encoded: bytes = head + exponent + modulus
        return encoded
    if algorithm in (13, 14):
        point: bytes = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return point[1:]
    raw: bytes = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw
