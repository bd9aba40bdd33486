"""What an action sees: config, workspace, journal history, the operator, and services.

Layers bind their actions against this context. Services that exist only while a ceremony
runs (an HSM session after activation, a card reader) live in `Services.layers` under the
layer's name, and `ActionContext.session` holds in-memory state built by `session` actions
(rebuilt after a resume, never persisted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from appliance.ceremony import killpoints
from appliance.ceremony.journal import Entry
from appliance.ceremony.model import Script, Step
from appliance.ceremony.operator import Operator
from appliance.ceremony.workspace import LoadedInput, Workspace
from appliance.config import Config
from appliance.signing import CeremonySigner

if TYPE_CHECKING:
    from appliance.sharing.ports import ProvisionableCard


class CardSlots(Protocol):
    """Virtual card insertion for headless runs and the demo (provided by the cards layer)."""

    def insert(self, card: str) -> None:
        """Put the virtual card named `card` into the reader."""
        ...

    def remove(self) -> None: ...


class CardRoom(Protocol):
    """The card in the reader, as the credentials layer's port (provided by the cards layer:
    pcsc readers in a ceremony, virtual cards headless)."""

    def holder_card(self, *, finish_reset: bool = False) -> ProvisionableCard:
        """The card now in the reader; raises OperatorCancelled when there is none.

        `finish_reset`: the flow is about to reset the card (enrolment, issuing), so a card
        left half reset (pulled between TERMINATE DF and ACTIVATE FILE) is completed rather
        than refused. Other flows leave it refused: the room must see such a card."""
        ...


@dataclass
class Services:
    """What the engine was given to reach the world. Mutable: actions may install services
    (hsm.activate installs the HSM session and the ceremony signer)."""

    #: Signs journal heads at checkpoints; None until the ceremony key is reachable.
    signer: CeremonySigner | None = None
    #: Virtual card slots (headless/demo); None with real readers.
    card_slots: CardSlots | None = None
    #: Reads the card in the reader (cards.enroll, hsm.activate, shares.*).
    cards: CardRoom | None = None
    #: Fingerprint of the ceremony key trusted before the HSM is active (pinned by the
    #: caller, or confirmed by the IW against the printed sheet); the HSM proves it later.
    ceremony_fingerprint: str | None = None
    #: Root for the air-gap check (tests pass a fake tree).
    airgap_root: Path = Path("/")
    #: Layer services by layer name ("hsm", "cards", ...), installed by the caller or actions.
    layers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class History:
    """The journal so far, as actions need it: results of earlier actions by step."""

    entries: Sequence[Entry]

    def result(self, step_id: str) -> Mapping[str, Any] | None:
        """The latest successful action result data of `step_id`, or None."""
        found: Mapping[str, Any] | None = None
        for e in self.entries:
            if e.kind == "action" and e.step == step_id and e.data.get("ok"):
                result = e.data.get("result")
                found = result if isinstance(result, dict) else {}
        return found

    def interrupted(self, step_id: str) -> bool:
        """Was `step_id` cut by a power cut and resumed in this ceremony? Then what the world
        holds may be that attempt's work. (A retry after a failed action does not count: it
        would let an action's own refusal be retried into acceptance.)"""
        seen_start = False
        for e in self.entries:
            if e.kind == "step_start" and e.step == step_id:
                seen_start = True
            elif seen_start and e.kind == "resume":
                return True
        return False

    def input_hash(self, name: str) -> str | None:
        """SHA-256 recorded when input `name` was loaded (result data "inputs"), or None."""
        for e in reversed(self.entries):
            if e.kind != "action" or not e.data.get("ok"):
                continue
            result = e.data.get("result")
            inputs = result.get("inputs") if isinstance(result, dict) else None
            if isinstance(inputs, dict) and isinstance(inputs.get(name), str):
                return str(inputs[name])
        return None

    def results_of(self, action: str) -> list[tuple[str, Mapping[str, Any]]]:
        """(step, result) of every successful run of `action`, oldest first."""
        out: list[tuple[str, Mapping[str, Any]]] = []
        for e in self.entries:
            if e.kind == "action" and e.data.get("action") == action and e.data.get("ok"):
                result = e.data.get("result")
                out.append((e.step or "", result if isinstance(result, dict) else {}))
        return out


@dataclass
class ActionContext:
    script: Script
    step: Step
    workspace: Workspace
    operator: Operator
    services: Services
    history: History
    #: Seat -> person's name, recorded at the start.
    attendance: Mapping[str, str]
    config: Config | None = None
    #: In-memory state shared by actions in this process (HSM session...); lost on power cut.
    session: dict[str, Any] = field(default_factory=dict)
    #: Input paths given on the command line (name -> path), before asking the operator.
    inputs: Mapping[str, str] = field(default_factory=dict)

    def kill_point(self) -> None:
        """Call right after a side effect and before returning: the power-cut test dies here."""
        killpoints.in_action(self.step.id)

    def load_input(self, name: str, description: str) -> LoadedInput:
        """Copy input `name` into the workspace and hash it, once (idempotent on resume).

        A copy recorded earlier in this ceremony is reused after verifying its hash still
        matches the journal; a copy whose hash differs is an error, never silently replaced.
        """
        recorded = self.history.input_hash(name)
        existing = self.workspace.loaded_input(name)
        if existing is not None and recorded is not None:
            if existing.sha256 != recorded:
                raise_changed(name, existing.sha256, recorded)
            return existing
        source = self.inputs.get(name) or self.operator.locate_input(
            self.step.id, name, description
        )
        return self.workspace.copy_input(name, Path(source))

    def seats_for(self, role: str) -> list[str]:
        """Seats present that fill `role` (a seat like CO2 or a family like CO)."""
        from appliance.ceremony.model import seat_matches

        return [seat for seat in self.attendance if seat_matches(seat, role)]


def raise_changed(name: str, found: str, recorded: str) -> None:
    from appliance.errors import CeremonyError

    raise CeremonyError(
        f"The workspace copy of input {name} has SHA-256 {found[:16]}..., but the journal "
        f"recorded {recorded[:16]}...: it changed after it was loaded.",
        hint="Stop: the workspace was altered. Report it to the security controllers.",
    )
