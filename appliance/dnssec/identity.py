"""Input identity: the SHA-256 of each input, as hex and as PGP words to read aloud."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from appliance import pgpwords


@dataclass(frozen=True)
class InputIdentity:
    name: str
    size: int
    sha256: str
    words: str

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256, "words": self.words}


def identify(name: str, data: bytes) -> InputIdentity:
    digest = hashlib.sha256(data).digest()
    return InputIdentity(name, len(data), digest.hex(), pgpwords.phrase(digest))
