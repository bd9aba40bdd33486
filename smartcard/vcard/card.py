"""A virtual OpenPGP card v3.4: the card's side of every APDU the appliance uses.

Faithful where the appliance and standard tools (gpg, OpenSC) look: status words, retry
counters that block at zero, the reset code, access conditions on data objects, real
on-card P-256 key generation, ECDSA and ECDH with `cryptography`, command chaining,
extended length and GET RESPONSE. Every change to the card's memory is written to its
state file before the response leaves the card, as an EEPROM write would be.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

from vcard.state import CardState
from vcard.tlv import parse, tlv

AID_RID_PIX = bytes.fromhex("D27600012401")
VERSION = bytes([3, 4])
OID_P256 = bytes.fromhex("2A8648CE3D030107")
ALGO_ECDH, ALGO_ECDSA, ALGO_RSA = 0x12, 0x13, 0x01
MAX_SPECIAL_DO = 2048
MAX_APDU = 2048
PIN_MAX = 127
PIN_MIN = {0x81: 6, 0x83: 8, 0x00: 8}

SW_OK = 0x9000
CRT_SLOT = {0xB6: "1", 0xB8: "2", 0xA4: "3"}
ATTR_SLOT = {0xC1: "1", 0xC2: "2", 0xC3: "3"}
FP_SLOT = {0xC7: "1", 0xC8: "2", 0xC9: "3"}
CA_FP_SLOT = {0xCA: "1", 0xCB: "2", 0xCC: "3"}
TS_SLOT = {0xCE: "1", 0xCF: "2", 0xD0: "3"}


class Status(Exception):
    """Ends a command with a status word (internal control flow of the card)."""

    def __init__(self, sw: int) -> None:
        super().__init__(f"{sw:04X}")
        self.sw = sw


@dataclass
class Command:
    cla: int
    ins: int
    p1: int
    p2: int
    data: bytes
    ne: int
    extended: bool


def parse_apdu(raw: bytes) -> Command:
    if len(raw) < 4:
        raise Status(0x6700)
    cla, ins, p1, p2 = raw[:4]
    body = raw[4:]
    if not body:
        return Command(cla, ins, p1, p2, b"", 0, False)
    if len(body) == 1:
        return Command(cla, ins, p1, p2, b"", body[0] or 256, False)
    if body[0] != 0:
        nc = body[0]
        if len(body) == 1 + nc:
            return Command(cla, ins, p1, p2, body[1:], 0, False)
        if len(body) == 2 + nc:
            return Command(cla, ins, p1, p2, body[1 : 1 + nc], body[-1] or 256, False)
        raise Status(0x6700)
    if len(body) == 3:
        return Command(cla, ins, p1, p2, b"", int.from_bytes(body[1:3], "big") or 65536, True)
    nc = int.from_bytes(body[1:3], "big")
    if nc == 0:
        raise Status(0x6700)
    if len(body) == 3 + nc:
        return Command(cla, ins, p1, p2, body[3:], 0, True)
    if len(body) == 5 + nc:
        ne = int.from_bytes(body[-2:], "big") or 65536
        return Command(cla, ins, p1, p2, body[3 : 3 + nc], ne, True)
    raise Status(0x6700)


class VirtualCard:
    """One card. `process(apdu) -> response` is all a reader needs."""

    def __init__(self, state: CardState, path: Path | None = None) -> None:
        self.state = state
        self.path = path
        self._verified: set[int] = set()
        self._chain: tuple[int, int, int, bytearray] | None = None
        self._pending = b""
        self._dirty = False
        self._synced: tuple[int, int, int] | None = None
        self._lock_fd: int | None = None
        if path is not None:
            self._lock_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            weakref.finalize(self, os.close, self._lock_fd)
            self._synced = _signature(path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time per card folder, across processes: the card server and an
        in-process DirectTransport may open the same card file."""
        if self._lock_fd is None:
            yield
            return
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _sync_in(self) -> None:
        """Another holder of this card file wrote it: its memory is the card's memory."""
        if self.path is None:
            return
        now = _signature(self.path)
        if now is not None and now != self._synced:
            self.state = CardState.load(self.path)
            self._synced = now

    @classmethod
    def open(cls, path: Path, serial: str | None = None) -> VirtualCard:
        """Load the card stored at `path`, or make a factory-fresh one there."""
        if path.exists():
            return cls(CardState.load(path), path)
        card = cls(CardState.factory(serial), path)
        card.save()  # no file yet: written
        return card

    def save(self) -> None:
        """Write the card's memory to its file (a no-op for a file another holder of this
        card changed since: its newer memory is loaded instead of being overwritten)."""
        with self._locked():
            self._save_locked()

    def _save_locked(self) -> None:
        if self.path is not None:
            if self._synced is not None and _signature(self.path) not in (None, self._synced):
                self._sync_in()
            else:
                self.state.save(self.path)
                self._synced = _signature(self.path)
        self._dirty = False

    # -- what the reader sees ---------------------------------------------------

    @property
    def historical_bytes(self) -> bytes:
        caps = 0x80 if self.state.chaining else 0
        caps |= 0x40 if self.state.extended_length else 0
        return bytes([0x00, 0x73, 0x00, 0x00, caps, 0x05, 0x90, 0x00])

    @property
    def atr(self) -> bytes:
        hist = self.historical_bytes
        body = bytes([0x80 | len(hist), 0x80, 0x01]) + hist
        tck = 0
        for b in body:
            tck ^= b
        return b"\x3b" + body + bytes([tck])

    def reset(self) -> None:
        """Power cycle or warm reset: volatile state goes, memory stays."""
        self._verified.clear()
        self._chain = None
        self._pending = b""

    @property
    def aid(self) -> bytes:
        return (
            AID_RID_PIX
            + VERSION
            + self.state.manufacturer.to_bytes(2, "big")
            + bytes.fromhex(self.state.serial)
            + b"\0\0"
        )

    def process(self, apdu: bytes) -> bytes:
        """Execute one command APDU; return response data + SW1 SW2. Never raises."""
        with self._locked():
            self._sync_in()
            return self._process(apdu)

    def _process(self, apdu: bytes) -> bytes:
        ne = 0
        try:
            cmd = parse_apdu(apdu)
            ne = cmd.ne
            if cmd.extended and not self.state.extended_length:
                raise Status(0x6700)
            data = self._dispatch(cmd)
            sw = SW_OK
        except Status as status:
            data, sw = b"", status.sw
        except Exception:  # a card answers, whatever happened inside it
            data, sw = b"", 0x6F00
        if self._dirty:
            if self.path is not None:
                self.state.save(self.path)
                self._synced = _signature(self.path)
            self._dirty = False
        if sw != SW_OK:
            return sw.to_bytes(2, "big")
        return self._respond(data, ne)

    def _respond(self, data: bytes, ne: int) -> bytes:
        if len(data) <= ne or (not data):
            self._pending = b""
            return data + b"\x90\x00"
        self._pending = data[ne:]
        left = len(self._pending)
        return data[:ne] + bytes([0x61, left if left < 256 else 0])

    # -- dispatch ---------------------------------------------------------------

    def _dispatch(self, cmd: Command) -> bytes:
        if cmd.ins != 0xC0:
            self._pending = b""
        if cmd.cla & ~0x10 & 0xFF != 0:
            raise Status(0x6E00)
        if cmd.cla & 0x10:
            if not self.state.chaining:
                raise Status(0x6884)
            if self._chain is None or self._chain[:3] != (cmd.ins, cmd.p1, cmd.p2):
                self._chain = (cmd.ins, cmd.p1, cmd.p2, bytearray())
            self._chain[3].extend(cmd.data)
            if len(self._chain[3]) > 4 * MAX_APDU:
                self._chain = None
                raise Status(0x6700)
            return b""
        if self._chain is not None:
            ins, p1, p2, head = self._chain
            self._chain = None
            if (ins, p1, p2) != (cmd.ins, cmd.p1, cmd.p2):
                raise Status(0x6883)
            cmd.data = bytes(head) + cmd.data
        if self.state.terminated:
            if cmd.ins == 0x44:
                return self._activate(cmd)
            raise Status(0x6285)
        handler = {
            0xA4: self._select,
            0xCA: self._get_data,
            0xDA: self._put_data,
            0x20: self._verify,
            0x24: self._change_pin,
            0x2C: self._reset_retry_counter,
            0x47: self._generate,
            0x2A: self._pso,
            0x88: self._internal_authenticate,
            0xE6: self._terminate,
            0x44: self._activate,
            0xC0: self._get_response,
            0xA5: self._select_data,
        }.get(cmd.ins)
        if handler is None:
            raise Status(0x6D00)
        return handler(cmd)

    def _get_response(self, cmd: Command) -> bytes:
        if not self._pending:
            raise Status(0x6985)
        data = self._pending
        self._pending = b""
        return data

    def _select(self, cmd: Command) -> bytes:
        if cmd.p1 != 0x04 or not cmd.data or not self.aid.startswith(cmd.data):
            raise Status(0x6A82)
        self.reset()
        return b""

    def _select_data(self, cmd: Command) -> bytes:
        """SELECT DATA (choose which cardholder certificate 7F21 means); one here."""
        if cmd.p1 > 2:
            raise Status(0x6A86)
        return b""

    def _need(self, ref: int) -> None:
        if ref not in self._verified:
            raise Status(0x6982)

    # -- data objects -----------------------------------------------------------

    def _slot_bytes(self, table: dict[str, str]) -> bytes:
        return b"".join(bytes.fromhex(table[k]) for k in ("1", "2", "3"))

    def _pw_status(self) -> bytes:
        s = self.state
        return bytes(
            [1 if s.pw1_several else 0, PIN_MAX, PIN_MAX, PIN_MAX, s.tries_pw1, s.tries_rc]
            + [s.tries_pw3]
        )

    def _extended_caps(self) -> bytes:
        # status changeable, private DOs, algorithm attributes changeable
        return bytes([0x1C, 0x00, 0x00, 0x00]) + MAX_SPECIAL_DO.to_bytes(2, "big") * 2 + b"\0\0"

    def _app_related(self) -> bytes:
        s = self.state
        disc = tlv(0xC0, self._extended_caps())
        for tag, slot in ATTR_SLOT.items():
            disc += tlv(tag, bytes.fromhex(s.attributes[slot]))
        disc += tlv(0xC4, self._pw_status())
        disc += tlv(0xC5, self._slot_bytes(s.fingerprints))
        disc += tlv(0xC6, self._slot_bytes(s.ca_fingerprints))
        disc += tlv(0xCD, self._slot_bytes(s.timestamps))
        disc += tlv(0xDE, b"".join(bytes([int(k), s.key_status[k]]) for k in ("1", "2", "3")))
        body = tlv(0x4F, self.aid) + tlv(0x5F52, self.historical_bytes)
        if s.extended_length:
            limits = tlv(0x02, MAX_APDU.to_bytes(2, "big")) * 2
            body += tlv(0x7F66, limits)
        return tlv(0x6E, body + tlv(0x73, disc))

    def _algorithm_information(self) -> bytes:
        p256 = OID_P256
        out = b""
        for tag, algo in ((0xC1, ALGO_ECDSA), (0xC2, ALGO_ECDH), (0xC3, ALGO_ECDSA)):
            out += tlv(tag, bytes([algo]) + p256) + tlv(tag, bytes.fromhex("010800002000"))
        return tlv(0xFA, out)

    def _get_data(self, cmd: Command) -> bytes:
        s = self.state
        tag = (cmd.p1 << 8) | cmd.p2
        if tag in (0x0101, 0x0102, 0x0103, 0x0104):
            if tag == 0x0103:
                self._need(0x82)
            if tag == 0x0104:
                self._need(0x83)
            return bytes.fromhex(s.private[str(tag & 0xFF)])
        simple: dict[int, Callable[[], bytes]] = {
            0x4F: lambda: self.aid,
            0x5E: lambda: bytes.fromhex(s.login),
            0x5F50: lambda: bytes.fromhex(s.url),
            0x5F52: lambda: self.historical_bytes,
            0x5B: lambda: bytes.fromhex(s.name),
            0x5F2D: lambda: bytes.fromhex(s.lang),
            0x5F35: lambda: bytes.fromhex(s.sex),
            0x7F21: lambda: tlv(0x7F21, bytes.fromhex(s.cert)) if s.cert else b"",
            0x65: lambda: tlv(
                0x65,
                tlv(0x5B, bytes.fromhex(s.name))
                + tlv(0x5F2D, bytes.fromhex(s.lang))
                + tlv(0x5F35, bytes.fromhex(s.sex)),
            ),
            0x6E: self._app_related,
            0x7A: lambda: tlv(0x7A, tlv(0x93, s.sig_counter.to_bytes(3, "big"))),
            0xC4: self._pw_status,
            0xC0: self._extended_caps,
            0xFA: self._algorithm_information,
            0xC5: lambda: self._slot_bytes(s.fingerprints),
            0xC6: lambda: self._slot_bytes(s.ca_fingerprints),
            0xCD: lambda: self._slot_bytes(s.timestamps),
        }
        if tag == 0x7F66 and s.extended_length:
            return tlv(0x7F66, tlv(0x02, MAX_APDU.to_bytes(2, "big")) * 2)
        if tag in ATTR_SLOT:
            return bytes.fromhex(s.attributes[ATTR_SLOT[tag]])
        getter = simple.get(tag)
        if getter is None:
            raise Status(0x6A88)
        return getter()

    def _put_data(self, cmd: Command) -> bytes:
        s = self.state
        tag = (cmd.p1 << 8) | cmd.p2
        data = cmd.data
        self._need(0x82 if tag in (0x0101, 0x0103) else 0x83)
        if tag in (0x0101, 0x0102, 0x0103, 0x0104):
            self._limit(data, MAX_SPECIAL_DO)
            s.private[str(tag & 0xFF)] = data.hex()
        elif tag == 0x5B:
            self._limit(data, 39)
            s.name = data.hex()
        elif tag == 0x5E:
            self._limit(data, MAX_SPECIAL_DO)
            s.login = data.hex()
        elif tag == 0x5F50:
            self._limit(data, MAX_SPECIAL_DO)
            s.url = data.hex()
        elif tag == 0x5F2D:
            self._limit(data, 8)
            s.lang = data.hex()
        elif tag == 0x5F35:
            self._limit(data, 1)
            s.sex = data.hex()
        elif tag == 0x7F21:
            self._limit(data, MAX_SPECIAL_DO)
            s.cert = data.hex()
        elif tag in ATTR_SLOT:
            self._set_attributes(ATTR_SLOT[tag], data)
        elif tag == 0xC4:
            if not data or data[0] not in (0, 1):
                raise Status(0x6A80)
            s.pw1_several = data[0] == 1
        elif tag in FP_SLOT or tag in CA_FP_SLOT:
            if len(data) != 20:
                raise Status(0x6700)
            table = s.fingerprints if tag in FP_SLOT else s.ca_fingerprints
            table[(FP_SLOT | CA_FP_SLOT)[tag]] = data.hex()
        elif tag in TS_SLOT:
            if len(data) != 4:
                raise Status(0x6700)
            s.timestamps[TS_SLOT[tag]] = data.hex()
        elif tag == 0xD3:
            if data and not PIN_MIN[0x00] <= len(data) <= PIN_MAX:
                raise Status(0x6A80)
            s.rc = data.hex()
            s.tries_rc = 3 if data else 0
        else:
            raise Status(0x6A88)
        self._dirty = True
        return b""

    def _limit(self, data: bytes, limit: int) -> None:
        if len(data) > limit:
            raise Status(0x6700)

    def _set_attributes(self, slot: str, data: bytes) -> None:
        algo = ALGO_ECDH if slot == "2" else ALGO_ECDSA
        ec_ok = data[:1] == bytes([algo]) and data[1:9] == OID_P256 and len(data) in (9, 10)
        rsa_ok = data[:1] == b"\x01" and len(data) == 6 and data[1:3] == b"\x08\x00"
        if not (ec_ok or rsa_ok):
            raise Status(0x6A80)
        s = self.state
        if bytes.fromhex(s.attributes[slot]) != data[:9]:
            s.keys[slot] = ""  # a new algorithm deletes the old key, as real cards do
            s.key_status[slot] = 0
        s.attributes[slot] = data[:9].hex() if ec_ok else data.hex()

    # -- PINs -------------------------------------------------------------------

    def _pin(self, ref: int) -> tuple[bytes, int]:
        s = self.state
        if ref == 0x83:
            return bytes.fromhex(s.pw3), s.tries_pw3
        if ref == 0x00:
            return bytes.fromhex(s.rc), s.tries_rc
        return bytes.fromhex(s.pw1), s.tries_pw1

    def _set_tries(self, ref: int, tries: int) -> None:
        attr = {0x83: "tries_pw3", 0x00: "tries_rc"}.get(ref, "tries_pw1")
        setattr(self.state, attr, tries)
        self._dirty = True

    def _check_pin(self, ref: int, offered: bytes) -> None:
        """Compare a PIN, spending a try when it is wrong (written before answering)."""
        stored, tries = self._pin(ref)
        if tries == 0:
            raise Status(0x6983)
        if not _constant_time_eq(stored, offered):
            self._set_tries(ref, tries - 1)
            if ref in (0x81, 0x82):
                self._verified -= {0x81, 0x82}
            else:
                self._verified.discard(ref)
            raise Status(0x63C0 | (tries - 1))
        if tries != 3:
            self._set_tries(ref, 3)

    def _verify(self, cmd: Command) -> bytes:
        ref = cmd.p2
        if ref not in (0x81, 0x82, 0x83):
            raise Status(0x6A86)
        if cmd.p1 == 0xFF and not cmd.data:
            self._verified.discard(ref)
            return b""
        if cmd.p1 != 0x00:
            raise Status(0x6A86)
        if not cmd.data:
            if ref in self._verified:
                return b""
            tries = self._pin(ref)[1]
            raise Status(0x6983 if tries == 0 else 0x63C0 | tries)
        self._check_pin(ref, cmd.data)
        self._verified.add(ref)
        return b""

    def _new_pin(self, ref: int, new: bytes) -> None:
        if not PIN_MIN[ref] <= len(new) <= PIN_MAX:
            raise Status(0x6A80)
        if ref == 0x83:
            self.state.pw3 = new.hex()
            self.state.tries_pw3 = 3
        else:
            self.state.pw1 = new.hex()
            self.state.tries_pw1 = 3
        self._dirty = True

    def _change_pin(self, cmd: Command) -> bytes:
        ref = cmd.p2
        if cmd.p1 != 0 or ref not in (0x81, 0x83):
            raise Status(0x6A86)
        stored, _ = self._pin(ref)
        self._check_pin(ref, cmd.data[: len(stored)])
        self._new_pin(ref, cmd.data[len(stored) :])
        self._verified -= {0x81, 0x82} if ref == 0x81 else {0x83}
        return b""

    def _reset_retry_counter(self, cmd: Command) -> bytes:
        if cmd.p2 != 0x81:
            raise Status(0x6A86)
        if cmd.p1 == 0x02:
            self._need(0x83)
            self._new_pin(0x81, cmd.data)
            return b""
        if cmd.p1 != 0x00:
            raise Status(0x6A86)
        rc, tries = self._pin(0x00)
        if not rc or tries == 0:
            raise Status(0x6983)
        self._check_pin(0x00, cmd.data[: len(rc)])
        self._new_pin(0x81, cmd.data[len(rc) :])
        return b""

    # -- keys -------------------------------------------------------------------

    def _key(self, slot: str) -> ec.EllipticCurvePrivateKey:
        scalar = self.state.keys[slot]
        if not scalar:
            raise Status(0x6A88)
        return ec.derive_private_key(int(scalar, 16), ec.SECP256R1())

    def _is_p256(self, slot: str) -> bool:
        return bytes.fromhex(self.state.attributes[slot])[1:9] == OID_P256

    def _public_template(self, key: ec.EllipticCurvePrivateKey) -> bytes:
        point = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return tlv(0x7F49, tlv(0x86, point))

    def _generate(self, cmd: Command) -> bytes:
        if cmd.p1 not in (0x80, 0x81) or cmd.p2 != 0 or not cmd.data:
            raise Status(0x6A86 if cmd.data else 0x6700)
        slot = CRT_SLOT.get(cmd.data[0])
        if slot is None:
            raise Status(0x6A80)
        if cmd.p1 == 0x81:
            return self._public_template(self._key(slot))
        self._need(0x83)
        if not self._is_p256(slot):
            raise Status(0x6A81)  # this card generates EC keys only
        key = ec.generate_private_key(ec.SECP256R1())
        s = self.state
        s.keys[slot] = format(key.private_numbers().private_value, "064x")
        s.key_status[slot] = 1
        s.fingerprints[slot] = "00" * 20
        s.timestamps[slot] = "00" * 4
        if slot == "1":
            s.sig_counter = 0
        self._dirty = True
        return self._public_template(key)

    def _sign(self, slot: str, digest: bytes) -> bytes:
        algorithm = {32: hashes.SHA256(), 48: hashes.SHA384(), 64: hashes.SHA512()}.get(len(digest))
        if algorithm is None:
            raise Status(0x6A80)
        if not self._is_p256(slot):
            raise Status(0x6A88)
        der = self._key(slot).sign(digest, ec.ECDSA(utils.Prehashed(algorithm)))
        r, s = utils.decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def _pso(self, cmd: Command) -> bytes:
        if (cmd.p1, cmd.p2) == (0x9E, 0x9A):
            self._need(0x81)
            sig = self._sign("1", cmd.data)
            self.state.sig_counter = min(self.state.sig_counter + 1, 0xFFFFFF)
            self._dirty = True
            if not self.state.pw1_several:
                self._verified.discard(0x81)
            return sig
        if (cmd.p1, cmd.p2) == (0x80, 0x86):
            self._need(0x82)
            return self._decipher(cmd.data)
        raise Status(0x6A86)

    def _decipher(self, data: bytes) -> bytes:
        if not self._is_p256("2"):
            raise Status(0x6A88)
        try:
            point = parse(parse(parse(data)[0xA6])[0x7F49])[0x86]
            peer = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        except (KeyError, ValueError):
            raise Status(0x6A80) from None
        return self._key("2").exchange(ec.ECDH(), peer)

    def _internal_authenticate(self, cmd: Command) -> bytes:
        self._need(0x82)
        return self._sign("3", cmd.data)

    # -- life cycle -------------------------------------------------------------

    def _terminate(self, cmd: Command) -> bytes:
        if 0x83 not in self._verified and self.state.tries_pw3 != 0:
            raise Status(0x6982)
        self.state.terminated = True
        self._dirty = True
        self.reset()
        return b""

    def _activate(self, cmd: Command) -> bytes:
        if self.state.terminated:
            self.state.reset_to_factory()
            self._dirty = True
        self.reset()
        return b""


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def _constant_time_eq(a: bytes, b: bytes) -> bool:
    import hmac

    return hmac.compare_digest(hashlib.sha256(a).digest(), hashlib.sha256(b).digest())
