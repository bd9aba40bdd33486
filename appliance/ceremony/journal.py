"""The ceremony journal: append-only JSON Lines, hash-chained, fsync'd, signed at checkpoints.

Each line is the canonical JSON (appliance.canonical) of one entry:

    {"seq": 0, "time": "2026-12-04T16:30:00.123Z", "kind": "start", "step": null,
     "actor": "CA", "data": {...}, "prev": "<sha256 hex of the previous line's entry>"}

`prev` of seq 0 is 64 zeros. `data` holds digests and identifiers, never secrets. A
`signature` entry signs the hash of the entry before it with the ceremony key. A line is
written with one write() followed by fsync(): a power cut leaves at most one torn final line
without its newline, which the reader reports as such (resumable), unlike a line that was
altered, deleted, reordered or cut short with its newline (tampering, named by seq).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appliance import canonical, signing
from appliance.ceremony import killpoints
from appliance.ceremony.errors import JournalError, JournalTampered

GENESIS = "0" * 64
KINDS = frozenset(
    {
        "start",
        "resume",
        "step_start",
        "action",
        "exception",
        "step_done",
        "signature",
        "abort",
        "end",
    }
)
FIELDS = ("seq", "time", "kind", "step", "actor", "data", "prev")
SIGNED_CONTEXT = "appliance-journal-head-v1"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Entry:
    seq: int
    time: str
    kind: str
    step: str | None
    actor: str | None
    data: Mapping[str, Any]
    prev: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "kind": self.kind,
            "step": self.step,
            "actor": self.actor,
            "data": dict(self.data),
            "prev": self.prev,
        }

    def line(self) -> bytes:
        return canonical.dumps(self.as_dict()) + b"\n"

    @property
    def digest(self) -> str:
        return hashlib.sha256(canonical.dumps(self.as_dict())).hexdigest()


def head_message(seq: int, digest: str, time: str) -> bytes:
    """The bytes the ceremony key signs for a journal head (`time`: the signature entry's)."""
    return canonical.dumps({"context": SIGNED_CONTEXT, "head": digest, "seq": seq, "time": time})


@dataclass(frozen=True)
class JournalState:
    """A journal read and chain-checked: its entries, and a torn tail if a write was cut."""

    path: Path
    entries: tuple[Entry, ...]
    #: Bytes of a final line cut by a power cut (no newline), else b"".
    torn: bytes = b""
    #: Byte length of the intact part (where a resumed journal continues).
    intact_size: int = 0

    @property
    def head(self) -> str:
        return self.entries[-1].digest if self.entries else GENESIS

    @property
    def next_seq(self) -> int:
        return len(self.entries)

    @property
    def finished(self) -> bool:
        return any(e.kind in ("end", "abort") for e in self.entries)

    @property
    def outcome(self) -> str:
        if not self.entries:
            return "empty"
        for e in self.entries:
            if e.kind == "end":
                return "ended"
            if e.kind == "abort":
                return "aborted"
        return "unfinished"


def allowed_after_end(entry: Entry) -> bool:
    """After the end only its signature may follow, plus (when a power cut came before the
    signature) the resume entry and the HSM session re-established to make it."""
    return (
        entry.kind in ("signature", "resume")
        or entry.kind == "action"
        and bool(entry.data.get("reestablished"))
    )


def _entry_from(obj: Any) -> Entry | None:
    if not isinstance(obj, dict) or set(obj) != set(FIELDS):
        return None
    seq, time, kind, step, actor, data, prev = (obj[f] for f in FIELDS)
    ok = (
        isinstance(seq, int)
        and not isinstance(seq, bool)
        and isinstance(time, str)
        and kind in KINDS
        and (step is None or isinstance(step, str))
        and (actor is None or isinstance(actor, str))
        and isinstance(data, dict)
        and isinstance(prev, str)
        and len(prev) == 64
    )
    if not ok:
        return None
    return Entry(seq, time, kind, step, actor, data, prev)


def _parse_line(raw: bytes) -> Entry | None:
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    entry = _entry_from(obj)
    if entry is None:
        return None
    try:
        if canonical.dumps(entry.as_dict()) != raw:
            return None  # re-serialised or padded: not what the appliance wrote
    except TypeError:
        return None
    return entry


def read(path: Path) -> JournalState:
    """Read and chain-check `path`; raise JournalTampered naming the first bad seq."""
    try:
        blob = Path(path).read_bytes()
    except OSError as exc:
        raise JournalError(
            f"Cannot read journal {path}: {exc.strerror}", hint="Check the path."
        ) from None
    lines = blob.split(b"\n")
    tail = lines.pop()  # after the last newline: b"" unless the last write was cut
    parsed: list[Entry | None] = [_parse_line(raw) for raw in lines]
    entries: list[Entry] = []
    for index, entry in enumerate(parsed):
        seq = index
        if entry is None:
            raise JournalTampered(
                f"{path}: line {index + 1} (seq {seq}) is not a journal entry as the "
                "appliance writes them: it was altered or cut short.",
                seq=seq,
                line=index + 1,
            )
        if entry.seq != seq:
            what = "is missing (a line was deleted)" if entry.seq > seq else "is out of place"
            raise JournalTampered(
                f"{path}: seq {seq} {what}: line {index + 1} holds seq {entry.seq}; lines "
                "were deleted, duplicated or reordered.",
                seq=seq,
                line=index + 1,
            )
        expected_prev = entries[-1].digest if entries else GENESIS
        if entry.prev != expected_prev:
            # One altered entry breaks one link: if the next entry still chains to this one,
            # the previous entry is the altered one; otherwise this one is.
            nxt = parsed[index + 1] if index + 1 < len(parsed) else None
            bad = seq - 1 if seq > 0 and nxt is not None and nxt.prev == entry.digest else seq
            raise JournalTampered(
                f"{path}: the hash chain breaks between seq {seq - 1} and seq {seq}: "
                f"seq {bad} was altered.",
                seq=bad,
                line=bad + 1,
            )
        if seq == 0 and entry.kind != "start":
            raise JournalTampered(f"{path}: seq 0 is not a ceremony start.", seq=0, line=1)
        if entries and JournalState(path, tuple(entries)).finished and not allowed_after_end(entry):
            raise JournalTampered(
                f"{path}: seq {seq} follows the end of the ceremony.", seq=seq, line=index + 1
            )
        entries.append(entry)
    size = len(blob) - len(tail)
    return JournalState(Path(path), tuple(entries), torn=tail, intact_size=size)


@dataclass(frozen=True)
class SignatureCheck:
    seq: int
    head_seq: int
    key_fingerprint: str


@dataclass(frozen=True)
class Verification:
    state: JournalState
    signatures: tuple[SignatureCheck, ...]
    #: Entries after the last valid signature (not covered by any signature).
    unsigned_tail: int
    problems: tuple[str, ...] = field(default=())


def verify(path: Path, public_key_der: bytes | None = None) -> Verification:
    """Chain, then every signature entry; with `public_key_der`, each must be by that key."""
    state = read(path)
    checks: list[SignatureCheck] = []
    for entry in state.entries:
        if entry.kind != "signature":
            continue
        checks.append(_check_signature(state, entry, public_key_der))
    last_signed = checks[-1].head_seq if checks else -1
    tail = sum(1 for e in state.entries if e.seq > last_signed and e.kind != "signature")
    return Verification(state, tuple(checks), tail)


def _check_signature(state: JournalState, entry: Entry, expect: bytes | None) -> SignatureCheck:
    data = entry.data
    where = f"{state.path}: seq {entry.seq} (signature)"
    try:
        head_seq = int(data["head_seq"])
        head = str(data["head"])
        key = str(data["key"])
        public = base64.b64decode(str(data["public_key"]), validate=True)
        sig = base64.b64decode(str(data["signature"]), validate=True)
    except (KeyError, ValueError, TypeError):
        raise JournalTampered(f"{where} is malformed.", seq=entry.seq) from None
    if not 0 <= head_seq < entry.seq or state.entries[head_seq].digest != head:
        raise JournalTampered(f"{where} signs a head that is not in this journal.", seq=entry.seq)
    if key != signing.fingerprint(public):
        raise JournalTampered(f"{where} names a key that is not its public key.", seq=entry.seq)
    if expect is not None and public != expect:
        raise JournalTampered(
            f"{where} is by key {signing.fingerprint(public)[:16]}, not by the ceremony key "
            f"{signing.fingerprint(expect)[:16]} you named.",
            seq=entry.seq,
        )
    try:
        signing.verify(public, head_message(head_seq, head, entry.time), sig)
    except signing.SignatureInvalid:
        raise JournalTampered(f"{where} does not verify.", seq=entry.seq) from None
    return SignatureCheck(entry.seq, head_seq, signing.fingerprint(public))


class JournalWriter:
    """Appends entries to a journal file, one fsync'd write per entry."""

    def __init__(
        self, state: JournalState, clock: Callable[[], str] = utc_now, create: bool = False
    ) -> None:
        self.path = state.path
        self._entries = list(state.entries)
        self._clock = clock
        self._writes = 0
        flags = os.O_WRONLY | os.O_APPEND | (os.O_CREAT | os.O_EXCL if create else 0)
        self._fd = os.open(self.path, flags, 0o644)
        if state.torn:
            # Drop the torn tail of the previous run before appending: the entry it held
            # never became durable, so its effect is re-detected by the engine.
            os.ftruncate(self._fd, state.intact_size)
            os.fsync(self._fd)

    @classmethod
    def create(cls, path: Path, clock: Callable[[], str] = utc_now) -> JournalWriter:
        writer = cls(JournalState(Path(path), ()), clock, create=True)
        _fsync_dir(Path(path).parent)
        return writer

    @property
    def entries(self) -> Sequence[Entry]:
        return tuple(self._entries)

    @property
    def head(self) -> str:
        return self._entries[-1].digest if self._entries else GENESIS

    def append(
        self,
        kind: str,
        data: Mapping[str, Any] | None = None,
        *,
        step: str | None = None,
        actor: str | None = None,
        time: str | None = None,
    ) -> Entry:
        if kind not in KINDS:
            raise ValueError(f"unknown journal kind {kind!r}")
        entry = Entry(
            seq=len(self._entries),
            time=time or self._clock(),
            kind=kind,
            step=step,
            actor=actor,
            data=dict(data or {}),
            prev=self.head,
        )
        line = entry.line()
        # The power-cut hook counts writes that make progress: not the resume entry nor the
        # re-established session actions that every resumed process writes first.
        phase = None
        if kind != "resume" and not entry.data.get("reestablished"):
            self._writes += 1
            phase = killpoints.journal_phase(self._writes)
        if phase == "before":
            killpoints.die()
        if phase == "torn":
            os.write(self._fd, line[: len(line) // 2])
            os.fsync(self._fd)
            killpoints.die()
        written = os.write(self._fd, line)
        if written != len(line):  # pragma: no cover - a full disk
            raise JournalError(
                f"Journal {self.path}: short write ({written} of {len(line)} bytes).",
                hint="The media is full: stop and free space; the ceremony resumes.",
            )
        os.fsync(self._fd)
        self._entries.append(entry)
        if phase == "after":
            killpoints.die()
        return entry

    def sign_head(self, signer: signing.CeremonySigner) -> Entry:
        head = self._entries[-1]
        public = signer.public_key_der()
        time = self._clock()
        signature = signer.sign(head_message(head.seq, head.digest, time))
        return self.append(
            "signature",
            {
                "head_seq": head.seq,
                "head": head.digest,
                "key": signing.fingerprint(public),
                "public_key": base64.b64encode(public).decode("ascii"),
                "signature": base64.b64encode(signature).decode("ascii"),
            },
            time=time,
        )

    def close(self) -> None:
        os.close(self._fd)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
