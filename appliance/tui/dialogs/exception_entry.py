"""The Internal Witness records an exception: free text, saved into the journal as written."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, Static, TextArea


class ExceptionEntry(ModalScreen[str | None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save to journal"),
        Binding("escape", "cancel", "Cancel"),
    ]
    DEFAULT_CSS = """
    ExceptionEntry { align: center middle; }
    ExceptionEntry > Vertical { width: 76; height: 18; border: thick $warning; padding: 1 2;
                                background: $surface; }
    ExceptionEntry TextArea { height: 1fr; }
    """

    def __init__(self, step: str) -> None:
        super().__init__()
        self.step = step

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Exception at step {self.step} (Internal Witness)")
            yield TextArea(id="text")
            yield Static("Ctrl+S: save to the journal    Esc: cancel")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        text = self.query_one(TextArea).text.strip()
        if text:
            self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)
