"""A virtual card's persistent memory: one JSON file per card.

This is a test and demo card: its PINs and private keys live in the file, in the clear,
exactly as they would in a real card's EEPROM. Never use a virtual card for real secrets.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_PW1 = "123456"
DEFAULT_PW3 = "12345678"
RSA2048 = "010800002000"
#: FF00-FFFE is the OpenPGP card "unmanaged" (test) manufacturer range.
TEST_MANUFACTURER = 0xFF00


def _slots(value: str) -> dict[str, str]:
    return {"1": value, "2": value, "3": value}


@dataclass
class CardState:
    serial: str
    manufacturer: int = TEST_MANUFACTURER
    extended_length: bool = True
    chaining: bool = True
    pw1: str = DEFAULT_PW1.encode().hex()
    pw3: str = DEFAULT_PW3.encode().hex()
    rc: str = ""
    tries_pw1: int = 3
    tries_rc: int = 0
    tries_pw3: int = 3
    pw1_several: bool = False
    name: str = ""
    lang: str = "656e"
    sex: str = "39"
    login: str = ""
    url: str = ""
    cert: str = ""
    private: dict[str, str] = field(default_factory=lambda: {str(i): "" for i in range(1, 5)})
    attributes: dict[str, str] = field(default_factory=lambda: _slots(RSA2048))
    keys: dict[str, str] = field(default_factory=lambda: _slots(""))
    key_status: dict[str, int] = field(default_factory=lambda: {"1": 0, "2": 0, "3": 0})
    fingerprints: dict[str, str] = field(default_factory=lambda: _slots("00" * 20))
    ca_fingerprints: dict[str, str] = field(default_factory=lambda: _slots("00" * 20))
    timestamps: dict[str, str] = field(default_factory=lambda: _slots("00" * 4))
    sig_counter: int = 0
    terminated: bool = False

    @classmethod
    def factory(cls, serial: str | None = None, **options: Any) -> CardState:
        serial = (serial or secrets.token_hex(4)).upper()
        if len(serial) != 8 or any(c not in "0123456789ABCDEF" for c in serial):
            raise ValueError(f"serial must be 8 hex digits, got {serial!r}")
        return cls(serial=serial, **options)

    def reset_to_factory(self) -> None:
        """What ACTIVATE FILE after TERMINATE DF does: keep identity, drop everything else."""
        fresh = CardState(
            serial=self.serial,
            manufacturer=self.manufacturer,
            extended_length=self.extended_length,
            chaining=self.chaining,
        )
        for f in fields(self):
            setattr(self, f.name, getattr(fresh, f.name))

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CardState:
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"unknown keys in card state: {sorted(unknown)}")
        return cls(**raw)

    def save(self, path: Path) -> None:
        """Atomic: a crash leaves the old or the new state, never half of one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(self.to_json())
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load(cls, path: Path) -> CardState:
        return cls.from_json(path.read_text(encoding="utf-8"))
