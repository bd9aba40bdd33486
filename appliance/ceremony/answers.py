"""The headless operator: answers from a file, so a whole ceremony runs in CI and the demo.

Answers file (TOML; every key optional except the attendance a script needs):

    [attendance]              # seat = "person's name"
    CA = "Alice Admin"
    IW = "Ian Witness"
    CO1 = "Carol Officer"

    [defaults]
    confirm = true            # answer confirmations (step, witness, action) with yes
    typed = true              # type the exact phrase of destructive steps
    action_failed = "abort"   # when an action fails: "retry" or "abort"
    exception = "continue"    # after a recorded exception: "continue" or "abort"
    max_retries = 2           # retries per step before aborting anyway

    [inputs]                  # input name = path (relative to this file)
    ksr = "ksr.txt"

    [cards.CO1]               # the card of a seat
    card = "co1"              # virtual card name (inserted through the demo's card slots)
    pin = "123456"            # or pins = ["000000", "123456"]: tried in order
    admin_pin = "12345678"
    new_pin = "654321"        # chosen when a new card is enrolled

    [quorum]
    order = ["CO2", "CO1", "CO3"]   # who steps up when any card of a set is asked

    [steps.STEP-ID]           # per-step overrides
    confirm = false           # refuse this step's confirmations (records exceptions)
    exception = "text"        # the witness's words for an exception in this step
    choose = "continue"       # answer to any choice in this step
    abort = "reason"          # the CA aborts when this step begins
    text = "..."              # a text typed in this step (a sealed location hint)
    overrides = { "KSR-POLICY-BUNDLE-INTERVALS" = "reason" }
                              # the CA overrides these KSR requirements with these reasons
                              # (ksr.check); the IW confirms with the step's `confirm`

Every answer given is appended to `transcript` (PINs as "****").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance import tomlfile
from appliance.ceremony.context import CardSlots
from appliance.ceremony.errors import AnswersInvalid, CeremonyAborted, OperatorCancelled
from appliance.ceremony.operator import (
    CardRequest,
    Choice,
    Confirmation,
    Level,
    Operator,
    PinRequest,
    StepView,
    TypedConfirmation,
)

_TOP = ("attendance", "defaults", "inputs", "cards", "quorum", "steps")
_DEFAULTS = ("confirm", "typed", "action_failed", "exception", "max_retries")
_CARD = ("card", "pin", "pins", "admin_pin", "new_pin")
_STEP = ("confirm", "exception", "choose", "abort", "text", "overrides")
#: The topic of ksr.check's override request (actions/dnssec.py OVERRIDE_TOPIC).
OVERRIDE_TOPIC = "ksr-override"


@dataclass(frozen=True)
class CardAnswer:
    card: str
    pins: tuple[str, ...] = ()
    admin_pin: str = ""
    new_pin: str = ""


@dataclass(frozen=True)
class Answers:
    attendance: Mapping[str, str] = field(default_factory=dict)
    confirm: bool = True
    typed: bool = True
    action_failed: str = "abort"
    exception: str = "continue"
    max_retries: int = 2
    inputs: Mapping[str, str] = field(default_factory=dict)
    cards: Mapping[str, CardAnswer] = field(default_factory=dict)
    order: tuple[str, ...] = ()
    steps: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


def load_answers(path: Path) -> Answers:
    try:
        doc = tomlfile.load(Path(path))
    except tomlfile.TomlSyntaxError as exc:
        raise AnswersInvalid(str(exc), hint="Fix the answers file.") from None
    except OSError as exc:
        raise AnswersInvalid(f"Cannot read answers file {path}: {exc.strerror}") from None
    return parse_answers(doc)


def parse_answers(doc: tomlfile.TomlDocument) -> Answers:
    base = Path(doc.path).resolve().parent
    data = doc.data

    def bad(key: tuple[str | int, ...], message: str) -> AnswersInvalid:
        return AnswersInvalid(f"{doc.where(key)}: {message}", hint="Fix the answers file.")

    def closed(table: Any, key: tuple[str | int, ...], valid: Sequence[str]) -> dict[str, Any]:
        if not isinstance(table, dict):
            raise bad(key, f"[{'.'.join(map(str, key))}] must be a table")
        for name in table:
            if name not in valid:
                guess = tomlfile.nearest(name, valid)
                raise bad(
                    key + (name,),
                    f"unknown key '{name}'" + (f"; did you mean '{guess}'?" if guess else ""),
                )
        return table

    closed(data, (), _TOP)
    attendance = data.get("attendance", {})
    if not isinstance(attendance, dict) or not all(isinstance(v, str) for v in attendance.values()):
        raise bad(("attendance",), '[attendance] maps seats to names: CA = "Alice"')
    defaults = closed(data.get("defaults", {}), ("defaults",), _DEFAULTS)
    for key, kind in (("confirm", bool), ("typed", bool), ("max_retries", int)):
        if key in defaults and not isinstance(defaults[key], kind):
            raise bad(("defaults", key), f"'{key}' must be {kind.__name__}")
    for key, options in (
        ("action_failed", ("retry", "abort")),
        ("exception", ("continue", "abort")),
    ):
        if key in defaults and defaults[key] not in options:
            raise bad(("defaults", key), f"'{key}' must be one of {', '.join(options)}")
    inputs_raw = data.get("inputs", {})
    if not isinstance(inputs_raw, dict) or not all(isinstance(v, str) for v in inputs_raw.values()):
        raise bad(("inputs",), "[inputs] maps input names to file paths")
    inputs = {k: str(base / v) for k, v in inputs_raw.items()}
    cards: dict[str, CardAnswer] = {}
    for seat, raw in closed(data.get("cards", {}), ("cards",), list(data.get("cards", {}))).items():
        table = closed(raw, ("cards", seat), _CARD)
        if not isinstance(table.get("card"), str):
            raise bad(("cards", seat), f'[cards.{seat}] needs card = "virtual card name"')
        pins = table.get("pins", [table["pin"]] if "pin" in table else [])
        if not isinstance(pins, list) or not all(isinstance(p, str) for p in pins):
            raise bad(("cards", seat, "pins"), "pins must be a list of strings")
        cards[seat] = CardAnswer(
            table["card"],
            tuple(pins),
            str(table.get("admin_pin", "")),
            str(table.get("new_pin", "")),
        )
    quorum = closed(data.get("quorum", {}), ("quorum",), ("order",))
    order = quorum.get("order", [])
    if not isinstance(order, list) or not all(isinstance(s, str) for s in order):
        raise bad(("quorum", "order"), "order must be a list of seats")
    steps: dict[str, Mapping[str, Any]] = {}
    raw_steps = data.get("steps", {})
    if not isinstance(raw_steps, dict):
        raise bad(("steps",), "[steps.ID] tables hold per-step answers")
    for step_id, raw in raw_steps.items():
        steps[step_id] = closed(raw, ("steps", step_id), _STEP)
        wanted = steps[step_id].get("overrides", {})
        if not isinstance(wanted, dict) or not all(
            isinstance(v, str) and v.strip() for v in wanted.values()
        ):
            raise bad(
                ("steps", step_id, "overrides"),
                'overrides maps requirement ids to reasons: { "KSR-..." = "why" }',
            )
    return Answers(
        attendance=dict(attendance),
        confirm=bool(defaults.get("confirm", True)),
        typed=bool(defaults.get("typed", True)),
        action_failed=str(defaults.get("action_failed", "abort")),
        exception=str(defaults.get("exception", "continue")),
        max_retries=int(defaults.get("max_retries", 2)),
        inputs=inputs,
        cards=cards,
        order=tuple(order),
        steps=steps,
    )


class AnswersOperator:
    """Implements `operator.Operator` from an `Answers`; keeps a transcript for the log."""

    def __init__(
        self,
        answers: Answers,
        *,
        card_slots: CardSlots | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.answers = answers
        self.card_slots = card_slots
        self.transcript: list[str] = []
        self._echo = echo
        self._pin_uses: dict[tuple[str, str], int] = {}
        self._retries: dict[str, int] = {}
        self._override_reason: dict[str, str] = {}  # step -> reason of the pending override

    def _say(self, line: str) -> None:
        self.transcript.append(line)
        if self._echo is not None:
            self._echo(line)

    def _step(self, step_id: str | None) -> Mapping[str, Any]:
        return self.answers.steps.get(step_id or "", {})

    def attendance(self, seats: Sequence[str], optional: Sequence[str]) -> Mapping[str, str]:
        present = dict(self.answers.attendance)
        self._say("attendance: " + ", ".join(f"{k}={v}" for k, v in present.items()))
        return present

    def begin_step(self, view: StepView) -> None:
        reason = self._step(view.step_id).get("abort")
        again = " (resumed)" if view.resumed else ""
        self._say(f"[{view.position}/{view.total}] {view.step_id}: {view.title}{again}")
        if reason:
            raise CeremonyAborted(str(reason))

    def confirm(self, request: Confirmation) -> bool:
        answer = bool(self._step(request.step_id).get("confirm", self.answers.confirm))
        self._say(f"  {request.role} {'confirms' if answer else 'REFUSES'}: {request.prompt}")
        return answer

    def confirm_typed(self, request: TypedConfirmation) -> bool:
        typed = request.phrase if self.answers.typed else ""
        self._say(f"  {request.role} types {typed!r} ({request.consequence})")
        return typed == request.phrase

    def present_card(self, request: CardRequest) -> str:
        order = list(self.answers.order) + [
            s for s in self.answers.cards if s not in self.answers.order
        ]
        for seat in order:
            if (
                seat in request.candidates
                and seat not in request.exclude
                and (seat in self.answers.cards)
            ):
                if self.card_slots is None:
                    raise OperatorCancelled(
                        "Headless run without virtual card slots: no card can be presented.",
                        hint="Run with the demo world (virtual cards) or use the TUI with "
                        "real readers.",
                    )
                self.card_slots.insert(self.answers.cards[seat].card)
                self._say(f"  {seat} inserts card {self.answers.cards[seat].card}")
                return seat
        raise OperatorCancelled(
            f"No card answer for any of {', '.join(request.candidates)} "
            f"(already presented: {', '.join(request.exclude) or 'none'}).",
            hint="Add [cards.SEAT] entries to the answers file.",
        )

    def remove_card(self, step_id: str, seat: str) -> None:
        if self.card_slots is not None:
            self.card_slots.remove()
        self._say(f"  {seat} removes the card")

    def enter_pin(self, request: PinRequest) -> bytearray:
        card = self.answers.cards.get(request.seat)
        if card is None:
            raise OperatorCancelled(f"No PIN answer for {request.seat}.")
        if request.kind == "admin":
            pins: tuple[str, ...] = (card.admin_pin,)
        elif request.new:
            pins = (card.new_pin,) if card.new_pin else card.pins
        else:
            pins = card.pins
        if not pins or not pins[0]:
            raise OperatorCancelled(f"No {request.kind} PIN answer for {request.seat}.")
        key = (request.seat, request.kind)
        used = self._pin_uses.get(key, 0)
        self._pin_uses[key] = used + 1
        pin = pins[min(used, len(pins) - 1)]
        tries = "" if request.tries_left is None else f", {request.tries_left} tries left"
        self._say(
            f"  {request.seat} types the {request.kind} PIN **** (card {request.serial}{tries})"
        )
        return bytearray(pin.encode("utf-8"))

    def exception_text(self, step_id: str, role: str, about: str) -> str:
        reason = self._override_reason.pop(step_id, None)
        if reason is not None:  # the reason asked right after an override request
            self._say(f"  {role} gives the reason: {reason}")
            return reason
        text = str(self._step(step_id).get("exception") or f"Exception: {about}")
        self._say(f"  {role} records exception: {text}")
        return text

    def choose(self, request: Choice) -> str:
        if request.topic == OVERRIDE_TOPIC:
            return self._override(request)
        chosen = self._step(request.step_id).get("choose")
        if chosen is None:
            chosen = {
                "action-failed": self.answers.action_failed,
                "exception": self.answers.exception,
            }.get(request.topic, request.options[0])
        if chosen == "retry":
            count = self._retries.get(request.step_id, 0) + 1
            self._retries[request.step_id] = count
            if count > self.answers.max_retries:
                chosen = "abort"
        if chosen not in request.options:
            raise AnswersInvalid(
                f"Answer {chosen!r} for step {request.step_id} is not one of "
                f"{', '.join(request.options)}."
            )
        self._say(f"  {request.role} chooses {chosen}: {request.prompt}")
        return str(chosen)

    def _override(self, request: Choice) -> str:
        """Options are "refuse" and "override <ID>": override only the ids listed in the
        step's `overrides`; never by default."""
        wanted = self._step(request.step_id).get("overrides", {})
        for option in request.options:
            requirement = option.removeprefix("override ")
            if option != requirement and requirement in wanted:
                self._override_reason[request.step_id] = str(wanted[requirement])
                self._say(f"  {request.role} requests: {option}")
                return option
        self._say(f"  {request.role} chooses refuse: {request.prompt}")
        return "refuse"

    def enter_text(self, step_id: str, seat: str, prompt: str, *, secret: bool) -> str:
        text = self._step(step_id).get("text")
        if not isinstance(text, str) or not text:
            raise OperatorCancelled(
                f"No text answer for step {step_id} ({prompt}).",
                hint=f'Add text = "..." to [steps.{step_id}] in the answers file.',
            )
        self._say(f"  {seat} types the text ({'hidden' if secret else text})")
        return text

    def locate_input(self, step_id: str, name: str, description: str) -> str:
        path = self.answers.inputs.get(name)
        if path is None:
            raise OperatorCancelled(
                f"No path for input '{name}' ({description}).",
                hint=f"Add it to [inputs] in the answers file or pass --input {name}=PATH.",
            )
        self._say(f"  input {name}: {path}")
        return path

    def notify(self, step_id: str | None, text: str, level: Level = "info") -> None:
        prefix = {"info": "  ", "warning": "  WARNING: ", "error": "  ERROR: "}[level]
        self._say(prefix + text.replace("\n", "\n" + " " * len(prefix)))


def _conforms(op: AnswersOperator) -> Operator:
    """mypy proves here that AnswersOperator implements the Operator Protocol."""
    return op
