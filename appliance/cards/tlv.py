"""BER-TLV as OpenPGP cards use it: 1-2 byte tags, definite lengths up to 65535."""

from __future__ import annotations

from appliance.errors import CardsError


class TlvError(CardsError):
    title = "Card data"


def _read_tag(buf: bytes, i: int) -> tuple[int, int]:
    tag = buf[i]
    i += 1
    if tag & 0x1F == 0x1F:
        if i >= len(buf):
            raise TlvError("The card returned a truncated tag")
        tag = (tag << 8) | buf[i]
        i += 1
        while buf[i - 1] & 0x80:
            if i >= len(buf):
                raise TlvError("The card returned a truncated tag")
            tag = (tag << 8) | buf[i]
            i += 1
    return tag, i


def _read_len(buf: bytes, i: int) -> tuple[int, int]:
    if i >= len(buf):
        raise TlvError("The card returned a truncated length")
    first = buf[i]
    i += 1
    if first < 0x80:
        return first, i
    n = first & 0x7F
    if n == 0 or n > 3 or i + n > len(buf):
        raise TlvError("The card returned a malformed length")
    return int.from_bytes(buf[i : i + n], "big"), i + n


def parse(buf: bytes) -> list[tuple[int, bytes]]:
    """Top-level (tag, value) pairs in order; strict about lengths."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(buf):
        if buf[i] in (0x00, 0xFF):  # padding between objects (ISO 7816-4)
            i += 1
            continue
        tag, i = _read_tag(buf, i)
        length, i = _read_len(buf, i)
        if i + length > len(buf):
            raise TlvError(f"The card returned a truncated object {tag:X}")
        out.append((tag, bytes(buf[i : i + length])))
        i += length
    return out


def as_dict(buf: bytes) -> dict[int, bytes]:
    return dict(parse(buf))


def find(buf: bytes, tag: int) -> bytes | None:
    """First object with `tag` at this level."""
    for t, v in parse(buf):
        if t == tag:
            return v
    return None


def encode_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82]) + n.to_bytes(2, "big")


def encode(tag: int, value: bytes) -> bytes:
    tag_bytes = tag.to_bytes((tag.bit_length() + 7) // 8 or 1, "big")
    return tag_bytes + encode_len(len(value)) + value
