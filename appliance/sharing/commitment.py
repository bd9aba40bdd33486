"""Share commitments: a salted hash per share, kept in the roster.

With it, a holder's share can be checked on its own (retest, attestation) without
reconstructing the secret: SHA-256("appliance share commitment v1" 00 || salt || share).
A share has 256 bits of entropy, so the hash reveals nothing usable; the salt makes two
rosters' commitments unlinkable even for the same share.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from appliance.sharing.errors import CommitmentMismatch

_DOMAIN = b"appliance share commitment v1\x00"


@dataclass(frozen=True)
class Commitment:
    salt: str  # hex, 16 bytes
    digest: str  # hex, 32 bytes

    def as_text(self) -> str:
        return f"{self.salt}:{self.digest}"


def _digest(salt: bytes, share: bytes | bytearray) -> str:
    h = hashlib.sha256(_DOMAIN)
    h.update(salt)
    h.update(share)
    return h.hexdigest()


def commit(share: bytes | bytearray) -> Commitment:
    salt = secrets.token_bytes(16)
    return Commitment(salt.hex(), _digest(salt, share))


def matches(share: bytes | bytearray, commitment: Commitment) -> bool:
    return hmac.compare_digest(_digest(bytes.fromhex(commitment.salt), share), commitment.digest)


def check(share: bytes | bytearray, commitment: Commitment, *, where: str) -> None:
    if not matches(share, commitment):
        raise CommitmentMismatch(
            f"the share in {where} does not match its commitment in the roster",
            hint="The envelope was replaced or the card was tampered with: do not use this "
            "card; replace the holder's credential with a quorum and investigate.",
        )
