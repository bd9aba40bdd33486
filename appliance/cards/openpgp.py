"""An OpenPGP card v3.4 session over any Transport.

The session speaks the card's APDUs (SELECT, GET/PUT DATA, VERIFY, CHANGE REFERENCE DATA,
RESET RETRY COUNTER, GENERATE ASYMMETRIC KEY PAIR, PSO:CDS, PSO:DECIPHER, TERMINATE DF,
ACTIVATE FILE) and turns status words into appliance.cards.errors. It never prompts, never
stores a PIN: PINs come in as bytearrays the caller wipes.

A card is identified by its serial (from the AID) and its key fingerprints, never by the
reader it sits in.
"""

from __future__ import annotations

import enum
import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.cards import apdu, tlv
from appliance.cards.errors import (
    CardError,
    NotSupported,
    PinBlocked,
    WrongCard,
    WrongPin,
    pin_name,
)
from appliance.cards.transport import Transport

#: RID + PIX application prefix of the OpenPGP card application.
AID_PREFIX = bytes.fromhex("D27600012401")
#: OID of NIST P-256 (1.2.840.10045.3.1.7) as the card writes it (no tag/length).
OID_P256 = bytes.fromhex("2A8648CE3D030107")
ALGO_RSA = 0x01
ALGO_ECDH = 0x12
ALGO_ECDSA = 0x13
#: No OpenPGP card answer is longer than an extended-length response (GET RESPONSE cap).
MAX_RESPONSE = 65536
#: GET RESPONSE rounds for one command (256 rounds of 256 bytes make 64 KiB).
MAX_GET_RESPONSE = 512

MANUFACTURERS = {
    0x0000: "test card",
    0x0001: "PPC Card Systems",
    0x0002: "Prism",
    0x0003: "OpenFortress",
    0x0004: "Wewid",
    0x0005: "ZeitControl",
    0x0006: "Yubico",
    0x0007: "OpenKMS",
    0x0008: "LogoEmail",
    0x000F: "Nitrokey",
    0x000B: "Dangerous Things",
    0x002A: "Magrathea",
    0x0042: "GnuPG e.V.",
    0x1337: "Warsaw Hackerspace",
    0x2342: "warpzone",
    0x4354: "Confidential Technologies",
    0x5443: "TIF-IT e.V.",
    0x63AF: "Trustica",
    0xBA53: "c-base e.V.",
    0xBD0E: "Paranoidlabs",
    0xF1D0: "CanoKeys",
    0xF517: "FSIJ",
    0xF5EC: "F-Secure",
    0xFFFF: "test card",
}


class Pin(enum.IntEnum):
    """PIN references for VERIFY and friends."""

    SIGN = 0x81  # PW1 for PSO:CDS
    USER = 0x82  # PW1 for decipher, authenticate and private DOs 0101/0103
    ADMIN = 0x83  # PW3


@dataclass(frozen=True)
class _SlotInfo:
    crt: int
    attributes: int
    fingerprint: int
    ca_fingerprint: int
    timestamp: int
    key_ref: int


class KeySlot(enum.Enum):
    SIG = _SlotInfo(0xB6, 0xC1, 0xC7, 0xCA, 0xCE, 1)
    DEC = _SlotInfo(0xB8, 0xC2, 0xC8, 0xCB, 0xCF, 2)
    AUT = _SlotInfo(0xA4, 0xC3, 0xC9, 0xCC, 0xD0, 3)

    @property
    def index(self) -> int:
        return self.value.key_ref - 1


@dataclass(frozen=True)
class AlgorithmAttributes:
    raw: bytes

    @property
    def algorithm(self) -> int:
        return self.raw[0] if self.raw else 0

    @property
    def is_p256(self) -> bool:
        return self.algorithm in (ALGO_ECDH, ALGO_ECDSA) and self.raw[1:9] == OID_P256

    def describe(self) -> str:
        if self.is_p256:
            return "nistp256"
        if self.algorithm == ALGO_RSA and len(self.raw) >= 3:
            return f"rsa{int.from_bytes(self.raw[1:3], 'big')}"
        return self.raw.hex() or "none"

    @classmethod
    def p256(cls, slot: KeySlot) -> AlgorithmAttributes:
        algo = ALGO_ECDH if slot is KeySlot.DEC else ALGO_ECDSA
        return cls(bytes([algo]) + OID_P256)


@dataclass(frozen=True)
class PinStatus:
    """DO C4: PIN policy and retry counters."""

    pw1_valid_for_several_signatures: bool
    max_len_pw1: int
    max_len_rc: int
    max_len_pw3: int
    tries_pw1: int
    tries_rc: int
    tries_pw3: int

    @classmethod
    def parse(cls, raw: bytes) -> PinStatus:
        if len(raw) < 7:
            raise CardError(0x6F00, "PIN status (C4) is too short")
        return cls(raw[0] == 1, raw[1] & 0x7F, raw[2], raw[3] & 0x7F, raw[4], raw[5], raw[6])


@dataclass(frozen=True)
class ExtendedCapabilities:
    """DO C0 plus the card capabilities of the historical bytes."""

    raw: bytes
    command_chaining: bool
    extended_length: bool
    max_special_do: int
    max_command: int
    max_response: int

    @property
    def private_dos(self) -> bool:
        return bool(self.raw and self.raw[0] & 0x08)

    @property
    def algorithm_attributes_changeable(self) -> bool:
        return bool(self.raw and self.raw[0] & 0x04)


@dataclass(frozen=True)
class CardIdentity:
    """What tells two cards apart: serial and key fingerprints."""

    serial: str
    fingerprints: tuple[bytes, bytes, bytes]

    def matches(self, other: CardIdentity) -> bool:
        return self.serial == other.serial and self.fingerprints == other.fingerprints


@dataclass(frozen=True)
class CardStatus:
    """Application related data (6E), parsed."""

    aid: bytes
    version: tuple[int, int]
    manufacturer_id: int
    serial: str
    capabilities: ExtendedCapabilities
    attributes: dict[KeySlot, AlgorithmAttributes]
    fingerprints: dict[KeySlot, bytes]
    timestamps: dict[KeySlot, int]
    key_status: dict[KeySlot, int]
    pins: PinStatus

    @property
    def manufacturer(self) -> str:
        if 0xFF00 <= self.manufacturer_id <= 0xFFFE:
            return "unmanaged S/N range"
        return MANUFACTURERS.get(self.manufacturer_id, f"unknown ({self.manufacturer_id:04X})")

    @property
    def version_text(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    def identity(self) -> CardIdentity:
        fps = (
            self.fingerprints[KeySlot.SIG],
            self.fingerprints[KeySlot.DEC],
            self.fingerprints[KeySlot.AUT],
        )
        return CardIdentity(self.serial, fps)


def _pin_error(sw: int, ref: int) -> None:
    name = pin_name(ref)
    if sw & 0xFFF0 == 0x63C0:
        left = sw & 0x0F
        if left == 0:
            raise PinBlocked(pin=name)
        raise WrongPin(left, pin=name)
    if sw == 0x6983:
        raise PinBlocked(pin=name)


def openpgp_fingerprint(
    public_key: ec.EllipticCurvePublicKey, slot: KeySlot, timestamp: int
) -> bytes:
    """RFC 4880 v4 fingerprint of a P-256 key as gpg computes it for a card key."""
    point = public_key.public_bytes(
        encoding=serialization.Encoding.X962,
        format=serialization.PublicFormat.UncompressedPoint,
    )
    algo = ALGO_ECDH if slot is KeySlot.DEC else ALGO_ECDSA
    body = struct.pack(">BIB", 4, timestamp, algo) + bytes([len(OID_P256)]) + OID_P256
    body += struct.pack(">H", 515) + point  # MPI: bit count of 04||X||Y
    if algo == ALGO_ECDH:
        body += bytes([3, 1, 8, 7])  # KDF: SHA-256, AES-128 (gpg's default for P-256)
    return hashlib.sha1(b"\x99" + struct.pack(">H", len(body)) + body).digest()  # noqa: S324


def _parse_public_point(data: bytes) -> ec.EllipticCurvePublicKey:
    outer = tlv.find(data, 0x7F49)
    if outer is None:
        raise CardError(0x6F00, "the card's public key has no 7F49 template")
    point = tlv.find(outer, 0x86)
    if point is None:
        raise NotSupported("EC public keys (the key is not on a curve)")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise CardError(0x6F00, "the card returned an invalid P-256 point") from None


class OpenPgpSession:
    """One open OpenPGP application on one card. SELECTs on construction.

    `finish_reset`: a card pulled between TERMINATE DF and ACTIVATE FILE stays terminated
    (SELECT answers 6285) and its keys and data are already gone; a flow that is about to
    reset the card anyway (enrolment) opens it with `finish_reset=True` to complete the
    interrupted reset. Without it such a card is refused with CardError 6285.
    """

    def __init__(self, transport: Transport, *, finish_reset: bool = False) -> None:
        self._transport = transport
        self._extended = False
        self._chaining = False
        self._status: CardStatus | None = None
        self._finish_reset = finish_reset
        #: True once this session completed a reset that an earlier session left half done
        self.completed_reset = False
        self.select()

    # -- plumbing -------------------------------------------------------------

    def _transmit(self, command: bytes) -> tuple[bytes, int]:
        data, sw = self._transport.transmit(command)
        out = bytearray(data)
        rounds = 0
        while sw >> 8 == 0x61:
            rounds += 1
            if len(out) > MAX_RESPONSE or rounds > MAX_GET_RESPONSE:
                # a hostile or broken card must not hang the host
                raise CardError(sw, "GET RESPONSE: the card kept announcing more data")
            more = sw & 0xFF or 256
            data, sw = self._transport.transmit(apdu.encode(0, 0xC0, 0, 0, ne=more))
            out += data
        return bytes(out), sw

    def send(
        self, ins: int, p1: int, p2: int, data: bytes = b"", *, expect: bool = True
    ) -> tuple[bytes, int]:
        """One logical command: chaining or extended length as the card allows; 61xx handled."""
        extended = self._extended and (len(data) > 255 or expect)
        ne = (65536 if extended else 256) if expect else 0
        if len(data) > 255 and not extended:
            if not self._chaining:
                raise NotSupported("long commands (chaining or extended length)", self._ver())
            chunks = [data[i : i + 255] for i in range(0, len(data), 255)]
            for chunk in chunks[:-1]:
                _, sw = self._transmit(apdu.encode(0x10, ins, p1, p2, chunk))
                if sw != apdu.SW_OK:
                    return b"", sw
            return self._transmit(apdu.encode(0, ins, p1, p2, chunks[-1], ne))
        return self._transmit(apdu.encode(0, ins, p1, p2, data, ne, extended=extended))

    def _call(self, what: str, ins: int, p1: int, p2: int, data: bytes = b"") -> bytes:
        resp, sw = self.send(ins, p1, p2, data)
        if sw != apdu.SW_OK:
            if sw in (0x6D00, 0x6E00):
                raise NotSupported(what, self._ver())
            raise CardError(sw, what)
        return resp

    def _ver(self) -> str:
        return self._status.version_text if self._status else ""

    # -- application ------------------------------------------------------------

    def select(self) -> None:
        """SELECT the OpenPGP application and learn the card's capabilities."""
        _, sw = self.send(0xA4, 0x04, 0x00, AID_PREFIX)
        if sw == 0x6285 and self._finish_reset:
            _, sw = self.send(0x44, 0, 0, expect=False)  # ACTIVATE FILE: reset completed
            if sw != apdu.SW_OK:
                raise CardError(sw, "ACTIVATE FILE (finishing an interrupted reset)")
            self.completed_reset = True
            _, sw = self.send(0xA4, 0x04, 0x00, AID_PREFIX)
        if sw == 0x6285:
            raise CardError(sw, "SELECT")
        if sw != apdu.SW_OK:
            raise CardError(0x6A82 if sw in (0x6A82, 0x6D00, 0x6E00) else sw, "SELECT")
        self._status = None
        self._status = self.status()

    def status(self) -> CardStatus:
        """Read and parse the application related data (6E)."""
        raw = self.get_data(0x6E)
        outer = tlv.find(raw, 0x6E)
        top = tlv.as_dict(outer if outer is not None else raw)
        aid = top.get(0x4F, b"")
        if len(aid) != 16 or not aid.startswith(AID_PREFIX):
            raise CardError(0x6A82, "application data")
        disc = tlv.as_dict(top.get(0x73, b""))
        hist = top.get(0x5F52, b"")
        chaining, extended = _historical_caps(hist)
        c0 = disc.get(0xC0, b"")
        max_special = int.from_bytes(c0[6:8], "big") if len(c0) >= 8 else 255
        lengths = tlv.parse(top.get(0x7F66, b""))
        max_cmd = int.from_bytes(lengths[0][1], "big") if len(lengths) >= 2 else 255
        max_rsp = int.from_bytes(lengths[1][1], "big") if len(lengths) >= 2 else 256
        if 0x7F66 in top:
            extended = True
        caps = ExtendedCapabilities(c0, chaining, extended, max_special, max_cmd, max_rsp)
        fps_raw = disc.get(0xC5, bytes(60)).ljust(60, b"\0")
        ts_raw = disc.get(0xCD, bytes(12)).ljust(12, b"\0")
        info = disc.get(0xDE, b"")
        key_status = {s: 0 for s in KeySlot}
        for i in range(0, len(info) - 1, 2):
            for s in KeySlot:
                if s.value.key_ref == info[i]:
                    key_status[s] = info[i + 1]
        status = CardStatus(
            aid=aid,
            version=(aid[6], aid[7]),
            manufacturer_id=int.from_bytes(aid[8:10], "big"),
            serial=aid[10:14].hex().upper(),
            capabilities=caps,
            attributes={s: AlgorithmAttributes(disc.get(s.value.attributes, b"")) for s in KeySlot},
            fingerprints={s: fps_raw[20 * s.index : 20 * s.index + 20] for s in KeySlot},
            timestamps={
                s: int.from_bytes(ts_raw[4 * s.index : 4 * s.index + 4], "big") for s in KeySlot
            },
            key_status=key_status,
            pins=PinStatus.parse(disc.get(0xC4, b"")),
        )
        self._extended, self._chaining = caps.extended_length, caps.command_chaining
        self._status = status
        return status

    @property
    def serial(self) -> str:
        assert self._status is not None  # noqa: S101 - select() sets it
        return self._status.serial

    def identity(self) -> CardIdentity:
        return self.status().identity()

    def expect(self, serial: str) -> CardStatus:
        """Refuse to go on unless this is the card with `serial`."""
        status = self.status()
        if status.serial != serial.upper():
            raise WrongCard(serial.upper(), status.serial)
        return status

    # -- data objects -----------------------------------------------------------

    def get_data(self, tag: int) -> bytes:
        resp, sw = self.send(0xCA, tag >> 8, tag & 0xFF)
        if sw == 0x6A88:
            return b""
        if sw != apdu.SW_OK:
            raise CardError(sw, f"GET DATA {tag:04X}")
        return resp

    def put_data(self, tag: int, value: bytes) -> None:
        """PUT DATA; most tags need the admin PIN verified first."""
        self._call(f"PUT DATA {tag:04X}", 0xDA, tag >> 8, tag & 0xFF, value)
        if tag in (0xC1, 0xC2, 0xC3, 0xC4) or 0xC7 <= tag <= 0xD0:
            self._status = None

    def name(self) -> str:
        """Cardholder name (5B, inside cardholder related data 65)."""
        related = self.get_data(0x65)
        inner = tlv.find(related, 0x65) if related[:1] == b"\x65" else None
        return _text(tlv.find(inner if inner is not None else related, 0x5B))

    def set_name(self, name: str) -> None:
        self.put_data(0x5B, _encode_text(name, 39, "cardholder name"))

    def login_data(self) -> str:
        return _text(self.get_data(0x5E))

    def set_login_data(self, login: str) -> None:
        limit = self.status().capabilities.max_special_do
        self.put_data(0x5E, _encode_text(login, limit, "login data"))

    def url(self) -> str:
        return _text(self.get_data(0x5F50))

    def set_url(self, url: str) -> None:
        limit = self.status().capabilities.max_special_do
        self.put_data(0x5F50, _encode_text(url, limit, "URL"))

    def private_do(self, number: int) -> bytes:
        """Private-use DO 0101..0104 (0103 needs the user PIN, 0104 the admin PIN)."""
        if not 1 <= number <= 4:
            raise ValueError("private-use DOs are numbered 1 to 4")
        return self.get_data(0x0100 + number)

    def put_private_do(self, number: int, value: bytes) -> None:
        """Write DO 01xx (0101/0103 need the user PIN, 0102/0104 the admin PIN)."""
        if not 1 <= number <= 4:
            raise ValueError("private-use DOs are numbered 1 to 4")
        limit = self.status().capabilities.max_special_do
        if len(value) > limit:
            raise CardError(0x6700, f"DO 010{number} holds at most {limit} bytes")
        self.put_data(0x0100 + number, value)

    def signature_counter(self) -> int:
        sst = self.get_data(0x7A)
        inner = tlv.find(sst, 0x7A)
        counter = tlv.find(inner if inner is not None else sst, 0x93)
        return int.from_bytes(counter or b"", "big")

    # -- PINs -------------------------------------------------------------------

    def verify(self, pin_ref: Pin, pin: bytearray) -> None:
        """VERIFY; raises WrongPin(tries_left) or PinBlocked. The caller wipes `pin`."""
        if not pin:
            raise ValueError("an empty PIN is not a PIN; use tries_left() to read the counter")
        command = bytearray(apdu.encode(0, 0x20, 0, pin_ref, bytes(pin)))
        try:
            _, sw = self._transmit(bytes(command))
        finally:
            command[:] = bytes(len(command))
        _pin_error(sw, pin_ref)
        if sw != apdu.SW_OK:
            raise CardError(sw, "VERIFY")

    def is_verified(self, pin_ref: Pin) -> bool:
        _, sw = self._transmit(apdu.encode(0, 0x20, 0, pin_ref))
        return sw == apdu.SW_OK

    def tries_left(self, pin_ref: Pin) -> int:
        """Retry counter, read with an empty VERIFY so no try is spent."""
        _, sw = self._transmit(apdu.encode(0, 0x20, 0, pin_ref))
        if sw == apdu.SW_OK or sw == 0x6982:
            ref = 0x83 if pin_ref == Pin.ADMIN else 0x81
            pins = self.status().pins
            return pins.tries_pw3 if ref == 0x83 else pins.tries_pw1
        if sw & 0xFFF0 == 0x63C0:
            return sw & 0x0F
        if sw == 0x6983:
            return 0
        raise CardError(sw, "VERIFY (read retry counter)")

    def reset_verification(self, pin_ref: Pin) -> None:
        """Forget a verified PIN (VERIFY P1=FF)."""
        self._call("VERIFY reset", 0x20, 0xFF, pin_ref)

    def change_pin(self, pin_ref: Pin, old: bytearray, new: bytearray) -> None:
        """CHANGE REFERENCE DATA for PW1 (81) or PW3 (83)."""
        ref = 0x83 if pin_ref == Pin.ADMIN else 0x81
        self._pin_command(0x24, 0x00, ref, old + new, pin_ref=ref)

    def reset_pin_with_code(self, reset_code: bytearray, new_pin: bytearray) -> None:
        """RESET RETRY COUNTER, reset code form: unblocks PW1 and sets it."""
        self._pin_command(0x2C, 0x00, 0x81, reset_code + new_pin, pin_ref=0x00)

    def reset_pin_as_admin(self, new_pin: bytearray) -> None:
        """RESET RETRY COUNTER, PW3 form (verify the admin PIN first)."""
        self._pin_command(0x2C, 0x02, 0x81, new_pin, pin_ref=0x83)

    def set_reset_code(self, reset_code: bytearray) -> None:
        """PUT DATA D3 (admin PIN verified first). An empty code removes it."""
        command = bytearray(apdu.encode(0, 0xDA, 0, 0xD3, bytes(reset_code)))
        try:
            _, sw = self._transmit(bytes(command))
        finally:
            command[:] = bytes(len(command))
        if sw != apdu.SW_OK:
            raise CardError(sw, "set reset code")
        self._status = None

    def _pin_command(self, ins: int, p1: int, p2: int, body: bytearray, *, pin_ref: int) -> None:
        command = bytearray(apdu.encode(0, ins, p1, p2, bytes(body)))
        try:
            _, sw = self._transmit(bytes(command))
        finally:
            command[:] = bytes(len(command))
            body[:] = bytes(len(body))
        _pin_error(sw, pin_ref)
        if sw != apdu.SW_OK:
            raise CardError(sw, {0x24: "CHANGE PIN", 0x2C: "RESET RETRY COUNTER"}[ins])

    def set_pin_policy(self, several_signatures: bool) -> None:
        """C4 byte 1: is one VERIFY 81 good for several signatures?"""
        self.put_data(0xC4, b"\x01" if several_signatures else b"\x00")

    # -- keys -------------------------------------------------------------------

    def set_algorithm_p256(self, slot: KeySlot) -> None:
        """PUT DATA C1/C2/C3: ECDSA (SIG, AUT) or ECDH (DEC) on NIST P-256."""
        status = self.status()
        if status.attributes[slot].is_p256:
            return
        if not status.capabilities.algorithm_attributes_changeable:
            raise NotSupported("changing algorithm attributes", status.version_text)
        resp, sw = self.send(0xDA, 0, slot.value.attributes, AlgorithmAttributes.p256(slot).raw)
        if sw == 0x6A80:
            raise NotSupported("NIST P-256 keys", status.version_text)
        if sw != apdu.SW_OK:
            raise CardError(sw, "set algorithm attributes")
        self._status = None

    def generate_key(self, slot: KeySlot, timestamp: int) -> ec.EllipticCurvePublicKey:
        """Generate a P-256 key on the card and record its fingerprint and timestamp.

        Needs the admin PIN verified. The private key never leaves the card.
        """
        self.set_algorithm_p256(slot)
        crt = bytes([slot.value.crt, 0])
        resp = self._call("GENERATE KEY", 0x47, 0x80, 0x00, crt)
        key = _parse_public_point(resp)
        fp = openpgp_fingerprint(key, slot, timestamp)
        self.put_data(slot.value.fingerprint, fp)
        self.put_data(slot.value.timestamp, timestamp.to_bytes(4, "big"))
        return key

    def public_key(self, slot: KeySlot) -> ec.EllipticCurvePublicKey:
        """Read the public half of a card key (no PIN)."""
        if not self.status().attributes[slot].is_p256:
            raise NotSupported(f"reading {self.status().attributes[slot].describe()} keys")
        resp, sw = self.send(0x47, 0x81, 0x00, bytes([slot.value.crt, 0]))
        if sw == 0x6A88:
            raise CardError(sw, f"public key of slot {slot.name}")
        if sw != apdu.SW_OK:
            raise CardError(sw, "read public key")
        return _parse_public_point(resp)

    def sign_digest(self, digest: bytes) -> bytes:
        """PSO:COMPUTE DIGITAL SIGNATURE over a SHA-256 digest: raw r||s (64 bytes)."""
        if len(digest) != 32:
            raise ValueError("PSO:CDS on P-256 takes a 32-byte SHA-256 digest")
        sig = self._call("sign", 0x2A, 0x9E, 0x9A, digest)
        if len(sig) != 64:
            raise CardError(0x6F00, f"the card returned a {len(sig)}-byte signature")
        return sig

    def sign(self, data: bytes) -> bytes:
        """ECDSA P-256 / SHA-256 over `data` with the signature key: raw r||s."""
        return self.sign_digest(hashlib.sha256(data).digest())

    def ecdh(self, peer: ec.EllipticCurvePublicKey) -> bytes:
        """PSO:DECIPHER with the decryption key: the ECDH shared secret (X coordinate)."""
        point = peer.public_bytes(
            encoding=serialization.Encoding.X962,
            format=serialization.PublicFormat.UncompressedPoint,
        )
        body = tlv.encode(0xA6, tlv.encode(0x7F49, tlv.encode(0x86, point)))
        secret = self._call("decipher", 0x2A, 0x80, 0x86, body)
        if len(secret) != 32:
            raise CardError(0x6F00, f"the card returned a {len(secret)}-byte shared secret")
        return secret

    # -- life cycle -------------------------------------------------------------

    def factory_reset(self) -> None:
        """TERMINATE DF + ACTIVATE FILE: erase keys, PINs back to defaults.

        The card allows it only after the admin PIN was verified or when it is blocked.
        """
        _, sw = self.send(0xE6, 0, 0, expect=False)
        if sw not in (apdu.SW_OK, 0x6285):
            raise CardError(sw, "TERMINATE DF")
        _, sw = self.send(0x44, 0, 0, expect=False)
        if sw != apdu.SW_OK:
            raise CardError(sw, "ACTIVATE FILE")
        self.select()


def _historical_caps(hist: bytes) -> tuple[bool, bool]:
    """Command chaining and extended length bits from the card capabilities (tag 73)."""
    if not hist or hist[0] != 0x00:
        return False, False
    i, end = 1, len(hist) - 3
    while i < end:
        tag, length = hist[i] >> 4, hist[i] & 0x0F
        value = hist[i + 1 : i + 1 + length]
        if tag == 0x7 and len(value) >= 3:
            return bool(value[2] & 0x80), bool(value[2] & 0x40)
        i += 1 + length
    return False, False


def _text(raw: bytes | None) -> str:
    return (raw or b"").decode("utf-8", errors="replace")


def _encode_text(text: str, limit: int, what: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > limit:
        raise CardError(0x6700, f"{what} holds at most {limit} bytes ({len(raw)} given)")
    return raw
