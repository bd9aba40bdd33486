"""Every crash the fuzzers found, replayed: the reader now answers with an ApplianceError.

Files live in tests/data/regressions/ (README there lists what each one broke and where it
was fixed). A new reproducer is a new file; its prefix picks the reader below.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.errors import ApplianceError

FOLDER = Path(__file__).resolve().parents[1] / "data" / "regressions"


def _frames(blob: bytes) -> None:
    from appliance.outputs import frames

    frames.parse(blob.decode("latin-1"))


def _ksr(blob: bytes) -> None:
    from appliance.dnssec import formats

    formats.parse_bytes(blob, "regression")


def _script(blob: bytes) -> None:
    from appliance.ceremony.loader import loads_script
    from appliance.ceremony.registry import default_registry

    loads_script(blob, "regression.toml", default_registry())


def _journal(blob: bytes) -> None:
    from appliance.ceremony import journal

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.jsonl"
        path.write_bytes(blob)
        journal.verify(path)


def _attestation(blob: bytes) -> None:
    from appliance.sharing import attest

    attest.parse(blob)


def _card(blob: bytes) -> None:
    from appliance.cards.openpgp import OpenPgpSession

    script = [(bytes.fromhex(d), int(sw)) for d, sw in json.loads(blob)]

    class Scripted:
        calls = 0

        def transmit(self, apdu: bytes) -> tuple[bytes, int]:
            self.calls += 1
            assert self.calls < 5000, "the host loops on this card's answers"
            return script[min(self.calls, len(script)) - 1]

    OpenPgpSession(Scripted())


READERS: dict[str, Callable[[bytes], None]] = {
    "frames": _frames,
    "ksr": _ksr,
    "skr": _ksr,
    "script": _script,
    "journal": _journal,
    "attestation": _attestation,
    "card": _card,
}


def _cases() -> list[Path]:
    return sorted(p for p in FOLDER.iterdir() if p.suffix in (".bin", ".json"))


def test_every_reproducer_has_a_reader() -> None:
    assert _cases(), "the regression folder is empty"
    for path in _cases():
        assert path.name.split("-", 1)[0] in READERS, path.name


@pytest.mark.parametrize("path", _cases(), ids=lambda p: p.name)
def test_reproducer_gets_a_clean_error(path: Path) -> None:
    """Every reproducer is a bad input: the reader must refuse it with its own error
    (neither crash, nor hang, nor accept it)."""
    reader = READERS[path.name.split("-", 1)[0]]
    with pytest.raises(ApplianceError) as refused:
        reader(path.read_bytes())
    assert refused.value.message
