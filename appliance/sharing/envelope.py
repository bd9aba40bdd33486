"""Sealed envelopes: a binary share sealed to one card's ECDH P-256 key.

Layout (version 1), all integers big-endian:

    off  size  field
    0    1     version (1)
    1    1     purpose (see `Purpose`)
    2    2     set id (the SLIP-39 identifier, 15 bits)
    4    1     group index
    5    1     member index
    6    1     group threshold
    7    1     member threshold
    8    1     n = length of the card serial
    9    n     card serial (ASCII)
    9+n  33    ephemeral public key, compressed SEC1 point
    42+n m+16  AES-256-GCM ciphertext of the binary share, then the tag

Key and nonce: HKDF-SHA256(IKM = ECDH X coordinate, salt = none,
info = "appliance sealed share v1" 00 || card's uncompressed public key || header), 44 bytes:
32 key, 12 nonce (fresh ephemeral key per envelope, so a derived nonce never repeats).
AAD = header (bytes 0 .. 42+n). A 32-byte secret's share (42 bytes) with a 12-character
serial gives 112 bytes: well under the 254 bytes an OpenPGP card must allow for a
private-use DO (v3.4 cards announce their maximum in the extended capabilities).

Opening needs the card: the ECDH step is PSO:DECIPHER after the holder's PIN. Sealing needs
only the card's public key (from the card or the roster).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appliance.sharing import slip39
from appliance.sharing.errors import EnvelopeError, ShareFormatError
from appliance.sharing.ports import HolderCard
from appliance.sharing.wipe import wipe

VERSION = 1
_INFO = b"appliance sealed share v1\x00"
_FIXED = 9
_POINT = 33
_TAG = 16
MAX_SERIAL = 32
#: The smallest private-use DO an OpenPGP card v3.x must accept.
PRIVATE_DO_MIN_CAPACITY = 254


class Purpose(enum.IntEnum):
    HSM_ACTIVATION = 1
    BACKUP_KEY = 2
    LOCATION_HINT = 3
    EMERGENCY_CONTACT = 4

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def from_label(cls, label: str) -> Purpose:
        for p in cls:
            if p.label == label:
                return p
        raise ValueError(label)


@dataclass(frozen=True)
class Header:
    version: int
    purpose: Purpose
    set_id: int
    group_index: int
    index: int
    group_threshold: int
    threshold: int
    card_serial: str

    def encode(self) -> bytes:
        serial = self.card_serial.encode("ascii")
        return (
            bytes([self.version, int(self.purpose)])
            + self.set_id.to_bytes(2, "big")
            + bytes([self.group_index, self.index, self.group_threshold, self.threshold])
            + bytes([len(serial)])
            + serial
        )


@dataclass(frozen=True)
class Envelope:
    header: Header
    ephemeral: bytes  # compressed point, 33 bytes
    ciphertext: bytes  # with the GCM tag
    raw: bytes

    @property
    def aad(self) -> bytes:
        return self.raw[: len(self.raw) - len(self.ciphertext)]


def _point(public_key: bytes) -> ec.EllipticCurvePublicKey:
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_key)
    except ValueError:
        raise EnvelopeError(
            "the card's ECDH public key is not a P-256 point",
            hint="Read the key from the card again; the card may not be provisioned.",
        ) from None


def _uncompressed(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _derive(shared_x: bytearray, card_public: bytes, header: bytes) -> bytearray:
    okm = HKDF(
        algorithm=hashes.SHA256(), length=44, salt=None, info=_INFO + card_public + header
    ).derive(bytes(shared_x))
    return bytearray(okm)


def seal(share: bytearray, *, card_public_key: bytes, card_serial: str, purpose: Purpose) -> bytes:
    """Seal a binary share to the card whose ECDH public key (uncompressed) is given."""
    info = slip39.identify(share)
    if not card_serial.isascii() or not 0 < len(card_serial) <= MAX_SERIAL:
        raise EnvelopeError(f"card serial {card_serial!r} must be 1..{MAX_SERIAL} ASCII chars")
    recipient = _point(card_public_key)
    card_public = _uncompressed(recipient)
    header = Header(
        VERSION,
        purpose,
        info.identifier,
        info.group_index,
        info.index,
        info.group_threshold,
        info.threshold,
        card_serial,
    ).encode()
    eph = ec.generate_private_key(ec.SECP256R1())
    eph_point = eph.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint
    )
    shared = bytearray(eph.exchange(ec.ECDH(), recipient))
    okm = _derive(shared, card_public, header)
    try:
        aad = header + eph_point
        ct = AESGCM(bytes(okm[:32])).encrypt(bytes(okm[32:]), bytes(share), aad)
    finally:
        wipe(shared, okm)
    return aad + ct


def parse(data: bytes) -> Envelope:
    """Strictly parse an envelope (no secret needed); errors name what is wrong."""
    data = bytes(data)
    if len(data) < _FIXED + _POINT + _TAG + 20:
        raise EnvelopeError(
            f"sealed envelope has {len(data)} bytes, too short",
            hint="The card's data object or the roster entry is damaged or empty.",
        )
    if data[0] != VERSION:
        raise EnvelopeError(f"sealed envelope version {data[0]} is not supported (expected 1)")
    try:
        purpose = Purpose(data[1])
    except ValueError:
        raise EnvelopeError(f"sealed envelope has unknown purpose code {data[1]}") from None
    n = data[8]
    if not 0 < n <= MAX_SERIAL or len(data) < _FIXED + n + _POINT + _TAG + 20:
        raise EnvelopeError("sealed envelope has a bad card serial length")
    try:
        serial = data[_FIXED : _FIXED + n].decode("ascii")
    except UnicodeDecodeError:
        raise EnvelopeError("sealed envelope's card serial is not ASCII") from None
    header = Header(
        data[0],
        purpose,
        int.from_bytes(data[2:4], "big"),
        data[4],
        data[5],
        data[6],
        data[7],
        serial,
    )
    eph = data[_FIXED + n : _FIXED + n + _POINT]
    if eph[0] not in (2, 3):
        raise EnvelopeError("sealed envelope's ephemeral key is not a compressed point")
    return Envelope(header, eph, data[_FIXED + n + _POINT :], data)


def open_with_card(card: HolderCard, data: bytes) -> bytearray:
    """Open an envelope through the card (PSO:DECIPHER; the holder's PIN verified before).

    Returns the binary share (caller wipes it). Refuses an envelope sealed for another card,
    one that was changed, and one whose share disagrees with its authenticated header.
    """
    env = parse(data)
    if env.header.card_serial != card.serial:
        raise EnvelopeError(
            f"this envelope was sealed for card {env.header.card_serial}, "
            f"not for card {card.serial}",
            hint="Insert the card named in the roster for this member.",
        )
    card_public = card.ecdh_public_key()
    eph = _uncompressed(_point(env.ephemeral))
    shared = card.decipher(eph)
    okm = _derive(shared, _uncompressed(_point(card_public)), env.aad[:-_POINT])
    try:
        plain = AESGCM(bytes(okm[:32])).decrypt(bytes(okm[32:]), env.ciphertext, env.aad)
    except InvalidTag:
        raise EnvelopeError(
            f"the sealed share for card {card.serial} does not authenticate: it was changed, "
            "or the card's key was regenerated since it was sealed",
            hint="Do not use this card for the quorum; retest it and replace the credential "
            "with a quorum if the retest fails.",
            serial=card.serial,
        ) from None
    finally:
        wipe(shared, okm)
    share = bytearray(plain)
    try:
        info = slip39.identify(share)
    except ShareFormatError:
        wipe(share)
        raise EnvelopeError("the sealed share is not a valid SLIP-39 share") from None
    h = env.header
    if (info.identifier, info.group_index, info.index, info.group_threshold, info.threshold) != (
        h.set_id,
        h.group_index,
        h.index,
        h.group_threshold,
        h.threshold,
    ):
        wipe(share)
        raise EnvelopeError("the sealed share disagrees with its envelope header")
    return share
