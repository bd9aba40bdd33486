"""A ceremony's workspace folder: journal, copied inputs, outputs, all written atomically.

WORKSPACE/journal.jsonl     the journal (append-only)
WORKSPACE/inputs/NAME       inputs copied from the media when loaded (hashed)
WORKSPACE/outputs/...       what the ceremony produces (SKRs, DS, bundles, PDFs)
WORKSPACE/state/...         layer state that must survive a power cut (never secrets)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from appliance import atomic, media
from appliance.errors import CeremonyError

JOURNAL = "journal.jsonl"
#: Largest input copied from the media (a year of hourly Knot KSR slots is ~4 MB).
MAX_INPUT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class LoadedInput:
    name: str
    path: Path
    sha256: str
    size: int
    source: str


class Workspace:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @property
    def journal(self) -> Path:
        return self.root / JOURNAL

    def ensure(self) -> None:
        for sub in ("", "inputs", "outputs", "state"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    def input_path(self, name: str) -> Path:
        return self.root / "inputs" / name

    def output_path(self, relative: str) -> Path:
        path = (self.root / "outputs" / relative).resolve()
        if not path.is_relative_to((self.root / "outputs").resolve()):
            raise CeremonyError(f"output path {relative!r} leaves the workspace")
        return path

    def write_output(self, relative: str, data: bytes) -> tuple[Path, str]:
        """Atomically write an output; return its path and SHA-256."""
        path = self.output_path(relative)
        atomic.write_bytes(path, data)
        return path, hashlib.sha256(data).hexdigest()

    def copy_input(self, name: str, source: Path) -> LoadedInput:
        """Copy `source` into inputs/NAME (atomic) and hash the copy's bytes.

        Media are untrusted: a symbolic link (it could point at a file of the appliance),
        anything but a regular file (a FIFO or a device never ends) and a file over
        MAX_INPUT_BYTES are refused before a byte is used."""
        data = _read_input(name, Path(source))
        target = self.input_path(name)
        atomic.write_bytes(target, data)
        return LoadedInput(name, target, hashlib.sha256(data).hexdigest(), len(data), str(source))

    def loaded_input(self, name: str) -> LoadedInput | None:
        """The copy already in the workspace (after a resume), or None."""
        path = self.input_path(name)
        if not path.is_file():
            return None
        data = path.read_bytes()
        return LoadedInput(name, path, hashlib.sha256(data).hexdigest(), len(data), "")


def _read_input(name: str, source: Path) -> bytes:
    try:
        return media.read_file(source, MAX_INPUT_BYTES)
    except media.Refused as exc:
        if exc.kind in ("missing", "unreadable"):
            raise CeremonyError(
                f"Cannot read input {name}: {exc}",
                hint="Check the media and the file name, then retry the step.",
            ) from None
        hint = {
            "link": "Copy the file itself onto the media (no links), then retry the step.",
            "not-regular": "Name the file itself on the media.",
            "too-large": "Check that this is the right file; inputs of a ceremony are far smaller.",
        }.get(exc.kind, exc.hint)
        raise CeremonyError(f"Input {name} ({source}) {exc.reason}: refused.", hint=hint) from None
