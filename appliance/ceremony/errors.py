"""Errors of the ceremony layer: scripts, journal, engine, operator answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from appliance.errors import CeremonyError


@dataclass(frozen=True)
class ScriptProblem:
    """One problem in a ceremony script, with its place."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}, line {self.line}" if self.line else self.path
        return f"{where}: {self.message}"


class ScriptInvalid(CeremonyError):
    """A ceremony script has one or more problems; each names file and line."""

    title = "Ceremony script"

    def __init__(self, problems: Sequence[ScriptProblem], **fields: Any) -> None:
        text = "\n".join(str(p) for p in problems)
        count = len(problems)
        super().__init__(
            text,
            hint=f"{count} problem{'s' if count != 1 else ''}: fix the script, then run "
            "`appliance script check` again. No ceremony starts from an invalid script.",
            **fields,
        )
        self.problems = tuple(problems)


class JournalError(CeremonyError):
    title = "Journal"


class JournalTampered(JournalError):
    """The chain or a signature does not hold: the journal was altered."""

    def __init__(self, message: str, *, seq: int, hint: str = "", **fields: Any) -> None:
        super().__init__(
            message,
            hint=hint
            or "Do not use this journal as a record: compare it with the printed, signed "
            "head and report the discrepancy to the security controllers.",
            seq=seq,
            **fields,
        )
        self.seq = seq


class RefusedToStart(CeremonyError):
    """The engine will not start (or resume) this ceremony; nothing was done."""


class StepRefused(CeremonyError):
    """A step's preconditions do not hold."""


class ActionFailed(CeremonyError):
    """An action raised an expected error; the journal records it."""


class CeremonyAborted(CeremonyError):
    """The ceremony was aborted with a reason (recorded in the journal)."""

    title = "Ceremony aborted"


class OperatorCancelled(CeremonyError):
    """A person declined or cancelled a request (no card, no PIN)."""


class AnswersInvalid(CeremonyError):
    """The headless answers file is malformed or lacks an answer the ceremony needs."""

    exit_code = 2
