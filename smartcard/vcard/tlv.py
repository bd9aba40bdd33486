"""The card's own small BER-TLV codec (the card does not depend on the host's)."""

from __future__ import annotations


def length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82]) + n.to_bytes(2, "big")


def tlv(tag: int, value: bytes) -> bytes:
    return tag.to_bytes(2 if tag > 0xFF else 1, "big") + length(len(value)) + value


def parse(buf: bytes) -> dict[int, bytes]:
    """Top-level objects; raises ValueError on anything malformed."""
    out: dict[int, bytes] = {}
    i = 0
    while i < len(buf):
        tag = buf[i]
        i += 1
        if tag & 0x1F == 0x1F:
            if i >= len(buf):
                raise ValueError("truncated tag")
            tag = (tag << 8) | buf[i]
            i += 1
        if i >= len(buf):
            raise ValueError("truncated length")
        n = buf[i]
        i += 1
        if n & 0x80:
            k = n & 0x7F
            if k not in (1, 2) or i + k > len(buf):
                raise ValueError("bad length")
            n = int.from_bytes(buf[i : i + k], "big")
            i += k
        if i + n > len(buf):
            raise ValueError("truncated value")
        out[tag] = bytes(buf[i : i + n])
        i += n
    return out
