"""Command APDU encoding (ISO 7816-4 short and extended forms) and status words."""

from __future__ import annotations

SW_OK = 0x9000

#: Instructions whose command data is a PIN (redacted in traces; so is PUT DATA D3, the
#: reset code).
PIN_INS = frozenset({0x20, 0x24, 0x2C})


def encode(
    cla: int,
    ins: int,
    p1: int,
    p2: int,
    data: bytes = b"",
    ne: int = 0,
    *,
    extended: bool = False,
) -> bytes:
    """One command APDU. `ne` is the expected response length (0: none; 256/65536: max)."""
    header = bytes([cla, ins, p1, p2])
    if not extended:
        if len(data) > 255 or ne > 256:
            raise ValueError("short APDU cannot carry more than 255 bytes or expect > 256")
        body = (bytes([len(data)]) + data) if data else b""
        le = bytes([ne & 0xFF]) if ne else b""
        return header + body + le
    if len(data) > 65535 or ne > 65536:
        raise ValueError("extended APDU limits exceeded")
    body = (b"\x00" + len(data).to_bytes(2, "big") + data) if data else b""
    if ne:
        le = (ne & 0xFFFF).to_bytes(2, "big")
        le = le if data else b"\x00" + le
    else:
        le = b""
    return header + body + le


def describe(apdu: bytes) -> str:
    """Hex of the APDU for a trace, with any PIN bytes replaced by their count."""
    secret = apdu[1] in PIN_INS or (apdu[1] == 0xDA and apdu[2:4] == b"\x00\xd3")
    if len(apdu) >= 5 and secret:
        return f"{apdu[:4].hex()} <{max(0, len(apdu) - 4)} bytes redacted>"
    return apdu.hex()
