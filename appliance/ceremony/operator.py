"""The operator port: everything the engine asks of the people in the room.

The engine (and the actions it runs) never prompts directly; they call an `Operator`.
Two implementations exist: `answers.AnswersOperator` (headless, driven by an answers file, for
CI and the demo) and the Textual UI (appliance/tui), which implements this Protocol with
dialogs. Every method blocks until the person has answered; a UI implementation runs the
engine in a worker thread and marshals each call to its event loop.

Rules for implementers:
- A refusal is an answer (`False`, or `OperatorCancelled` from requests that cannot be
  refused with a value); never invent a "yes".
- `enter_pin` returns a fresh `bytearray`; the caller owns it and wipes it with `wipe()` as
  soon as it is used. Implementations must not keep a copy, log it or show it.
- Texts passed in are already in the words the room should hear; show them verbatim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

Level = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class StepView:
    """A step as the room sees it when the CA begins it."""

    step_id: str
    act_title: str
    title: str
    roles: tuple[str, ...]
    say: str
    witness: tuple[str, ...]
    action: str | None
    #: 1-based position and total, for "step 4 of 17".
    position: int
    total: int
    #: True when this step is being re-done after a resume.
    resumed: bool = False


@dataclass(frozen=True)
class Confirmation:
    """`role` (a seat such as IW or CO2, or a family) confirms `prompt` aloud."""

    step_id: str
    role: str
    prompt: str
    #: "step": the performer confirms the step is done; "witness": a witness check;
    #: "action": an action asks before acting (e.g. "Do the words match?").
    purpose: Literal["step", "witness", "action"] = "step"


@dataclass(frozen=True)
class TypedConfirmation:
    """A destructive step: `role` must type `phrase` exactly after hearing `consequence`."""

    step_id: str
    role: str
    consequence: str
    phrase: str


@dataclass(frozen=True)
class CardRequest:
    """Ask a holder to present a card and wait until it is in the reader.

    `candidates` are the seats who may answer (one seat: "the card of CO2"; several: "any
    card of the set"); `exclude` are seats whose card was already presented in this round.
    """

    step_id: str
    purpose: str
    candidates: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    #: Card serial expected, when known (from the roster).
    serials: Mapping[str, str] = field(default_factory=dict)
    #: The flow will reset the card (enrolment, issuing): a card left half reset may be
    #: completed to read it (CardRoom.holder_card's `finish_reset`).
    finish_reset: bool = False


def completed_reset_text(seat: str, serial: str) -> str:
    """What the room hears when a card left half reset was finished (CardRequest.finish_reset)."""
    return (
        f"{seat}: card {serial} had been pulled during a factory reset and was left "
        "terminated; the reset is now completed (the card held nothing usable)."
    )


@dataclass(frozen=True)
class PinRequest:
    step_id: str
    seat: str
    serial: str
    tries_left: int | None
    #: "user" (PW1) or "admin" (PW3).
    kind: Literal["user", "admin"] = "user"
    #: True when the card is new and the holder chooses a PIN (type it twice).
    new: bool = False


@dataclass(frozen=True)
class Choice:
    step_id: str
    role: str
    prompt: str
    options: tuple[str, ...]
    #: Why the engine asks: "action-failed" (retry/abort), "exception" (continue/abort),
    #: or "action" (an action's own question).
    topic: str = "action"


class Operator(Protocol):
    """How the engine asks the room. See the module docstring for the rules."""

    def attendance(self, seats: Sequence[str], optional: Sequence[str]) -> Mapping[str, str]:
        """Who fills each seat: seat -> person's name. `seats` must all be filled."""
        ...

    def begin_step(self, view: StepView) -> None:
        """Show the step and its words; returns when the CA has read them aloud."""
        ...

    def confirm(self, request: Confirmation) -> bool:
        """True when `request.role` confirms; False records a refusal (an exception)."""
        ...

    def confirm_typed(self, request: TypedConfirmation) -> bool:
        """True only when the person typed `request.phrase` exactly."""
        ...

    def present_card(self, request: CardRequest) -> str:
        """Wait until a candidate's card is inserted; return that seat (e.g. "CO3").

        Raises OperatorCancelled when nobody can present a card.
        """
        ...

    def remove_card(self, step_id: str, seat: str) -> None:
        """Ask `seat` to take the card out; return when the reader is empty."""
        ...

    def enter_pin(self, request: PinRequest) -> bytearray:
        """The PIN typed by `request.seat` for card `request.serial` (caller wipes it)."""
        ...

    def exception_text(self, step_id: str, role: str, about: str) -> str:
        """The witness's words for an exception on `step_id` (never empty)."""
        ...

    def choose(self, request: Choice) -> str:
        """One of `request.options`."""
        ...

    def locate_input(self, step_id: str, name: str, description: str) -> str:
        """Path of the input file `name` (a KSR, a backup) on the media, chosen by the CA."""
        ...

    def notify(self, step_id: str | None, text: str, level: Level = "info") -> None:
        """Show something the room should see or hear (a hash in PGP words, a result)."""
        ...


@runtime_checkable
class TextEntry(Protocol):
    """Optional capability: a person types a text (a sealed location hint). Operators that
    lack it make the actions that need it fail with a clear message."""

    def enter_text(self, step_id: str, seat: str, prompt: str, *, secret: bool) -> str:
        """The text typed by `seat`; with `secret`, never echoed to the room or kept."""
        ...


def wipe(secret: bytearray) -> None:
    """Overwrite a secret in place (PINs, shares); call as soon as it has been used."""
    for i in range(len(secret)):
        secret[i] = 0
    del secret[:]
