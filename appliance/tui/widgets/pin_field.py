"""A PIN field that keeps the digits in a bytearray, never in a str the app holds on to.

Textual's Input stores its value as an immutable str that cannot be wiped; a PIN typed into
it would linger in memory. This field keeps only a bytearray (wiped on clear) and shows one
mask character per digit.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

MAX_PIN = 127  # OpenPGP card PIN length limit


class PinField(Widget, can_focus=True):
    DEFAULT_CSS = """
    PinField { height: 3; border: tall $accent; padding: 0 1; }
    PinField:focus { border: tall $primary; }
    """

    class Submitted(Message):
        """Enter was pressed. The receiver takes the PIN with take() and must wipe it."""

        def __init__(self, field: PinField) -> None:
            super().__init__()
            self.field = field

    length: reactive[int] = reactive(0)

    def __init__(self, *, id: str | None = None) -> None:  # noqa: A002 - Textual's name
        super().__init__(id=id)
        self._digits = bytearray()

    def render(self) -> Text:
        if not self._digits:
            return Text("type the PIN, then Enter", style="dim")
        return Text("*" * len(self._digits) + f"   ({len(self._digits)} digits)")

    def on_key(self, event: events.Key) -> None:
        if event.key == "backspace":
            if self._digits:
                self._digits[-1] = 0
                del self._digits[-1]
        elif event.key == "enter":
            self.post_message(self.Submitted(self))
        elif event.character and event.is_printable and len(event.character) == 1:
            if len(self._digits) < MAX_PIN:
                self._digits.extend(event.character.encode("utf-8"))
        else:
            return
        event.stop()
        event.prevent_default()
        self.length = len(self._digits)
        self.refresh()

    def take(self) -> bytearray:
        """Hand the PIN over (a fresh bytearray the caller wipes) and clear the field."""
        pin = bytearray(self._digits)
        self.clear()
        return pin

    def clear(self) -> None:
        for i in range(len(self._digits)):
            self._digits[i] = 0
        self._digits.clear()
        self.length = 0
        self.refresh()
