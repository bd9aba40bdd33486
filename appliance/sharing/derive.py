"""Derivations from a reconstructed secret, kept in bytearrays.

The shared secret itself is never used as a PIN or key directly: each use gets its own
HKDF-SHA256 derivation (domain separation), so a set can serve one purpose only.
"""

from __future__ import annotations

import os

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from appliance.sharing.wipe import wipe

SECRET_BYTES = 32
_HEX = b"0123456789abcdef"


def random_secret() -> bytearray:
    """32 fresh random bytes (os.urandom) in a bytearray the caller wipes."""
    return bytearray(os.urandom(SECRET_BYTES))


def _derive(secret: bytearray, info: bytes, length: int) -> bytearray:
    return bytearray(
        HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(bytes(secret))
    )


def hsm_user_pin(secret: bytearray, token_label: str) -> bytearray:
    """The token's user PIN: 48 lowercase hex characters (24 random bytes) in a bytearray.

    Every PKCS#11 token accepts it (printable ASCII); nobody ever types or sees it."""
    raw = _derive(secret, b"appliance hsm user pin v1\x00" + token_label.encode("utf-8"), 24)
    pin = bytearray(len(raw) * 2)
    try:
        for i, b in enumerate(raw):
            pin[2 * i] = _HEX[b >> 4]
            pin[2 * i + 1] = _HEX[b & 15]
    finally:
        wipe(raw)
    return pin


def backup_wrapping_key(secret: bytearray, backup_name: str) -> bytearray:
    """The 32-byte AES key that wraps the HSM backup named `backup_name`."""
    return _derive(
        secret, b"appliance backup wrapping key v1\x00" + backup_name.encode("utf-8"), 32
    )


def note_key(secret: bytearray) -> bytearray:
    """The AES-256-GCM key of a sealed note (location hint, emergency contact)."""
    return _derive(secret, b"appliance sealed note key v1\x00", 32)
