"""PIN entry for one card: whose card, which serial, how many tries are left.

A PIN try is never spent without the operator's intent: with one try left the dialog will
not submit until the words LAST TRY are typed, because a wrong PIN then locks the card.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from appliance.tui.widgets.pin_field import PinField

LAST_TRY_WORDS = "LAST TRY"


class PinDialog(ModalScreen[bytearray | None]):
    """Returns the PIN as a bytearray the caller wipes, or None if cancelled."""

    BINDINGS = [Binding("escape", "cancel", "Cancel (no try spent)")]
    DEFAULT_CSS = """
    PinDialog { align: center middle; }
    PinDialog > Vertical { width: 72; height: auto; border: thick $primary; padding: 1 2;
                           background: $surface; }
    PinDialog .title { text-style: bold; }
    PinDialog .warning { text-style: bold reverse; margin: 1 0 0 0; }
    PinDialog #problem { text-style: bold; margin: 1 0 0 0; }
    """

    def __init__(self, holder: str, serial: str, tries_left: int) -> None:
        super().__init__()
        self.holder = holder
        self.serial = serial
        self.tries_left = tries_left

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"PIN for the card of {self.holder}", classes="title")
            yield Static(f"Card serial {self.serial}    PIN tries left: {self.tries_left}")
            yield PinField(id="pin")
            if self.tries_left == 1:
                yield Static(
                    "ONE TRY LEFT: a wrong PIN now LOCKS this card. "
                    f"Type {LAST_TRY_WORDS} below to allow this try.",
                    classes="warning",
                )
                yield Input(placeholder=LAST_TRY_WORDS, id="last-try")
            yield Static("", id="problem")
            yield Static("Enter: submit    Esc: cancel (no try spent)", classes="hint")

    def on_mount(self) -> None:
        self.query_one(PinField).focus()

    def _last_try_confirmed(self) -> bool:
        if self.tries_left != 1:
            return True
        return self.query_one("#last-try", Input).value.strip().upper() == LAST_TRY_WORDS

    def on_pin_field_submitted(self, message: PinField.Submitted) -> None:
        problem = self.query_one("#problem", Static)
        if self.tries_left <= 0:
            problem.update("This PIN is blocked: unblock the card before trying again.")
            return
        if message.field.length == 0:
            problem.update("Type the PIN first.")
            return
        if not self._last_try_confirmed():
            problem.update(f"Not submitted: type {LAST_TRY_WORDS} first (the last try).")
            self.query_one("#last-try", Input).focus()
            return
        self.dismiss(message.field.take())

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.query_one(PinField).focus()

    def action_cancel(self) -> None:
        self.query_one(PinField).clear()
        self.dismiss(None)
