"""Destructive steps ask first: the dialog names the consequence and wants a typed word.

A keypress is too easy to give by accident at 3 a.m.; typing the word is a decision.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static


class ConfirmDestructive(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    ConfirmDestructive { align: center middle; }
    ConfirmDestructive > Vertical { width: 72; height: auto; border: thick $error;
                                    padding: 1 2; background: $surface; }
    ConfirmDestructive .title { text-style: bold reverse; }
    ConfirmDestructive #problem { text-style: bold; }
    """

    def __init__(self, title: str, consequence: str, word: str) -> None:
        super().__init__()
        self.title_text = title
        self.consequence = consequence
        self.word = word

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"DESTRUCTIVE: {self.title_text}", classes="title")
            yield Static(self.consequence)
            yield Static(f"To go ahead, type {self.word} and press Enter. Esc cancels.")
            yield Input(placeholder=self.word, id="word")
            yield Static("", id="problem")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.value.strip() == self.word:
            self.dismiss(True)
        else:
            self.query_one("#problem", Static).update(f"Not confirmed: the word is {self.word}.")

    def action_cancel(self) -> None:
        self.dismiss(False)
