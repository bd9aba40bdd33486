"""The engine's `Operator` port, implemented by the console.

The engine runs in a thread worker; every question is marshalled to the event loop with
`App.call_from_thread`, where the ceremony screen shows a panel or a dialog and the answer
comes back when a person gives it. Waiting for a card polls the tray from the worker thread,
so the screen keeps ticking. PINs cross from the dialog to the engine as bytearrays only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from appliance.cards.errors import CardRemoved as CardGone
from appliance.ceremony.errors import OperatorCancelled
from appliance.ceremony.operator import (
    CardRequest,
    Choice,
    Confirmation,
    Level,
    Operator,
    PinRequest,
    StepView,
    TypedConfirmation,
    completed_reset_text,
)
from appliance.errors import ApplianceError
from appliance.sharing.errors import CardRemoved

if TYPE_CHECKING:
    from appliance.tui.screens.ceremony import CeremonyScreen

T = TypeVar("T")
POLL_SECONDS = 0.1


class ConsoleClosed(Exception):  # noqa: N818 - not an error of the ceremony
    """The console closed while the engine waited: the journal stays unfinished (resumable).

    Deliberately not an ApplianceError, so the engine does not record it as a failure or an
    abort: closing the console is like a power cut, and the ceremony resumes from the journal.
    """


class TuiOperator:
    def __init__(self, screen: CeremonyScreen) -> None:
        self.screen = screen
        self.closed = threading.Event()

    # ---- plumbing ----------------------------------------------------------------------
    def _on_loop(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.closed.is_set():
            raise ConsoleClosed()
        try:
            return self.screen.app.call_from_thread(fn, *args)
        except RuntimeError:  # the app is no longer running
            raise ConsoleClosed() from None

    def _wait(self, ready: Callable[[], T | None]) -> T:
        """Poll `ready` from this worker thread until it gives a value; the CA may cancel."""
        while True:
            if self.closed.is_set():
                raise ConsoleClosed()
            if self.screen.cancel_requested.is_set():
                self.screen.cancel_requested.clear()
                raise OperatorCancelled(
                    "The Ceremony Administrator cancelled the wait for a card.",
                    hint="Retry when the holder is ready, or abort.",
                )
            try:
                value = ready()
            except ApplianceError:
                value = None
            if value is not None:
                return value
            time.sleep(POLL_SECONDS)

    # ---- the Operator port ----------------------------------------------------------------
    def attendance(self, seats: Sequence[str], optional: Sequence[str]) -> Mapping[str, str]:
        names: dict[str, str] = self._on_loop(
            self.screen.ask_attendance, list(seats), list(optional)
        )
        self.screen.attendance = dict(names)
        return names

    def begin_step(self, view: StepView) -> None:
        self._on_loop(self.screen.begin_step, view)

    def confirm(self, request: Confirmation) -> bool:
        return bool(self._on_loop(self.screen.ask_confirm, request))

    def confirm_typed(self, request: TypedConfirmation) -> bool:
        return bool(self._on_loop(self.screen.ask_typed, request))

    def present_card(self, request: CardRequest) -> str:
        tray = self.screen.world.tray
        if tray is None:
            raise OperatorCancelled("No card reader is available.", hint="Connect a reader.")
        self._on_loop(self.screen.show_card_prompt, request)

        completed: list[bool] = []
        said: set[str] = set()

        def inserted() -> str | None:
            try:
                if not any(tray.held()):
                    return None
                card = tray.holder_card(finish_reset=request.finish_reset)
            except (CardRemoved, CardGone):
                return None  # pulled while it was being read: wait for it again
            except ApplianceError as exc:
                # a card (or reader) that cannot be read is said once, not waited on in silence
                text = exc.operator_text()
                if text not in said:
                    said.add(text)
                    self.notify(request.step_id, text, "error")
                return None
            completed.append(card.completed_reset)
            return card.serial

        serial = self._wait(inserted)
        seat = self.screen.seat_for_serial(serial, request)
        self._on_loop(self.screen.show_card_recognised, request, serial, seat)
        if any(completed):
            self.notify(request.step_id, completed_reset_text(seat, serial), "warning")
        return seat

    def remove_card(self, step_id: str, seat: str) -> None:
        tray = self.screen.world.tray
        if tray is None:
            return
        self._on_loop(self.screen.show_remove_prompt, seat)
        self._wait(lambda: True if not any(tray.held()) else None)
        self._on_loop(self.screen.show_card_removed, seat)

    def enter_pin(self, request: PinRequest) -> bytearray:
        pin: bytearray | None = self._on_loop(self.screen.ask_pin, request)
        if pin is None:
            raise OperatorCancelled(
                f"{request.seat} cancelled the PIN entry (no try was spent).",
                hint="Retry when the holder is ready.",
            )
        return pin

    def exception_text(self, step_id: str, role: str, about: str) -> str:
        text: str | None = self._on_loop(self.screen.ask_exception, step_id, about)
        return text or ""

    def choose(self, request: Choice) -> str:
        return str(self._on_loop(self.screen.ask_choice, request))

    def locate_input(self, step_id: str, name: str, description: str) -> str:
        path: str | None = self._on_loop(self.screen.ask_input, name, description)
        if path is None:
            raise OperatorCancelled(
                f"No file was chosen for input '{name}'.",
                hint="Insert the media holding it, then retry.",
            )
        return path

    def notify(self, step_id: str | None, text: str, level: Level = "info") -> None:
        self._on_loop(self.screen.add_note, step_id, text, level)


def _conforms(op: TuiOperator) -> Operator:
    return op
