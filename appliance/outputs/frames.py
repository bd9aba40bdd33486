"""QR frames: a payload cut into alphanumeric-mode texts that reassemble in any order.

A frame is one QR code's text:

    CB1:7QX2:1:3:12:<base45 data>:<CRC-32 hex>

`CB1` names the format and its version; `7QX2` is the set id (one bundle: every frame of
every payload of that bundle carries it); `1` is the payload number (0 is the signed
manifest, 1.. the artifacts in manifest order); `3:12` is the frame's index and the
payload's frame count (1-based, as printed on the label). The CRC-32 covers everything before
it, so a frame misread by a scanner is refused on its own; the reassembled payload is then
checked against the SHA-256 in the signed manifest. Every character is in the QR
alphanumeric set, so decoders never guess a charset.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from appliance.outputs import base45
from appliance.outputs.errors import FrameError

MAGIC = "CB"
VERSION = 1
_SEPARATOR = ":"
_CRC_CHARS = 8
SET_ID_CHARS = 4
_SET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
#: Frames per payload and payloads per set a verifier accepts (paper holds far fewer).
MAX_FRAMES = 9999


def set_id_for(digest_source: bytes) -> str:
    """Four base32 characters (20 bits) of SHA-256: short enough to read off a label."""
    return base64.b32encode(hashlib.sha256(digest_source).digest()[:5]).decode()[:SET_ID_CHARS]


@dataclass(frozen=True)
class Frame:
    set_id: str
    payload: int
    index: int
    count: int
    data: bytes

    def text(self) -> str:
        head = _SEPARATOR.join(
            [
                f"{MAGIC}{VERSION}",
                self.set_id,
                str(self.payload),
                str(self.index),
                str(self.count),
                base45.encode(self.data),
            ]
        )
        return f"{head}{_SEPARATOR}{_crc(head)}"


def _crc(text: str) -> str:
    return f"{zlib.crc32(text.encode('ascii')):08X}"


def _header_chars(set_id: str, payload: int, count: int) -> int:
    """Characters a frame spends on everything but its data (worst case for `count`)."""
    fields = [f"{MAGIC}{VERSION}", set_id, str(payload), str(count), str(count), ""]
    return len(_SEPARATOR.join(fields)) + 1 + _CRC_CHARS


def bytes_per_frame(capacity_chars: int, set_id: str, payload: int, count: int) -> int:
    free = capacity_chars - _header_chars(set_id, payload, count)
    # Whole 3-character groups only: every frame but the last carries an even byte count.
    return max(0, free // 3 * 2)


def split(data: bytes, set_id: str, payload: int, capacity_chars: int) -> list[Frame]:
    """Cut `data` into as few frames as fit `capacity_chars` each (the QR's alphanumeric
    capacity at the chosen version and error-correction level)."""
    if len(set_id) != SET_ID_CHARS or any(c not in _SET_ALPHABET for c in set_id):
        raise FrameError(f"set id {set_id!r} is not {SET_ID_CHARS} base32 characters")
    count = 1
    while True:
        per = bytes_per_frame(capacity_chars, set_id, payload, count)
        if per <= 0:
            raise FrameError(f"a QR with {capacity_chars} characters cannot hold a frame")
        needed = max(1, -(-len(data) // per))
        if needed <= count:
            break
        count = needed
    per = bytes_per_frame(capacity_chars, set_id, payload, count)
    chunks = [data[i : i + per] for i in range(0, len(data), per)] or [b""]
    return [Frame(set_id, payload, i + 1, len(chunks), c) for i, c in enumerate(chunks)]


def parse(text: str) -> Frame:
    """Strictly parse one scanned text; FrameError says what is wrong with it."""
    if not text.startswith(MAGIC):
        raise FrameError("not a ceremony frame (no CB header)")
    if not text.isascii():
        raise FrameError("frame holds characters outside the QR alphanumeric set")
    if len(text) < _CRC_CHARS + 1 or text[-_CRC_CHARS - 1] != _SEPARATOR:
        raise FrameError("frame is truncated (no checksum)")
    head, crc = text[: -_CRC_CHARS - 1], text[-_CRC_CHARS:]
    if _crc(head) != crc:
        raise FrameError("frame checksum does not match: the code was misread or damaged")
    parts = head.split(_SEPARATOR, 5)
    if len(parts) != 6:
        raise FrameError("frame header has too few fields")
    magic, set_id, payload, index, count, data = parts
    if magic != f"{MAGIC}{VERSION}":
        raise FrameError(
            f"frame format {magic!r} is not supported (this verifier reads {MAGIC}{VERSION})",
            hint="Use a verifier of the appliance release that printed the sheet.",
        )
    try:
        numbers = [int(x) for x in (payload, index, count)]
        body = base45.decode(data)
    except ValueError as exc:
        raise FrameError(f"frame fields are malformed: {exc}") from None
    if any(str(n) != s for n, s in zip(numbers, (payload, index, count), strict=True)):
        raise FrameError("frame numbers are not in canonical form")
    p, i, n = numbers
    if n > MAX_FRAMES or p > MAX_FRAMES:
        # a hostile code must not make reassembly list a billion missing frames
        raise FrameError(f"frame claims {n} frames of payload {p}: more than {MAX_FRAMES}")
    if not 1 <= i <= n:
        raise FrameError(f"frame index {i} is outside 1..{n}")
    return Frame(set_id, p, i, n, body)


@dataclass
class Collected:
    """The frames of one payload of one set gathered so far."""

    count: int
    frames: dict[int, bytes] = field(default_factory=dict)

    def missing(self) -> list[int]:
        return [i for i in range(1, self.count + 1) if i not in self.frames]

    def data(self) -> bytes | None:
        if self.missing():
            return None
        return b"".join(self.frames[i] for i in range(1, self.count + 1))


@dataclass
class Collector:
    """Frames from any number of scans, in any order, grouped by set and payload."""

    sets: dict[str, dict[int, Collected]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    duplicates: int = 0

    def add(self, frame: Frame, source: str = "") -> None:
        payloads = self.sets.setdefault(frame.set_id, {})
        got = payloads.get(frame.payload)
        if got is None:
            got = payloads[frame.payload] = Collected(frame.count)
        if got.count != frame.count:
            self.notes.append(
                f"{source}: frame {frame.index} of set {frame.set_id} payload {frame.payload} "
                f"says {frame.count} frames, earlier frames said {got.count}: set aside"
            )
            return
        previous = got.frames.get(frame.index)
        if previous is not None:
            if previous != frame.data:
                self.notes.append(
                    f"{source}: two different frames {frame.index} of set {frame.set_id} "
                    f"payload {frame.payload}: the later one is set aside"
                )
            else:
                self.duplicates += 1
            return
        got.frames[frame.index] = frame.data

    def add_texts(self, texts: Iterable[str], source: str = "") -> None:
        for text in texts:
            try:
                frame = parse(text)
            except FrameError as exc:
                self.notes.append(f"{source}: a code was set aside: {exc.message}")
                continue
            self.add(frame, source)

    def frame_count(self, set_id: str) -> int:
        return sum(len(c.frames) for c in self.sets.get(set_id, {}).values())
