"""The engine's questions as small modal dialogs: yes/no, a choice, attendance, an input file.

Each names who answers (a seat such as IW or CO2) so the room hears who is being asked; the
answer keys are letters as well as buttons, because the console is keyboard only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option


class ConfirmDialog(ModalScreen[bool]):
    """`role` answers Y (confirmed) or N (refused: the witness records an exception)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes, confirmed"),
        Binding("n", "answer(False)", "No (exception)"),
    ]
    DEFAULT_CSS = """
    ConfirmDialog { align: center bottom; background: $background 30%; }
    ConfirmDialog > Vertical { width: 100%; max-width: 100; height: auto; border: thick $accent;
                               padding: 0 1; background: $surface; }
    ConfirmDialog .who { text-style: bold reverse; }
    ConfirmDialog .keys { text-style: bold; }
    """

    def __init__(
        self, role: str, prompt: str, kind: str, shown: Any = None, shown_title: str = ""
    ) -> None:
        super().__init__()
        self.role = role
        self.prompt = prompt
        self.kind = kind
        #: What the room is comparing (a hash read-aloud), repeated above the question.
        self.shown = shown
        self.shown_title = shown_title

    def compose(self) -> ComposeResult:
        with Vertical():
            if self.shown is not None:
                yield Static(self.shown_title, classes="who")
                yield Static(self.shown, id="shown")
            label = {"witness": "WITNESS CHECK", "action": "QUESTION"}.get(self.kind, "CONFIRM")
            yield Label(f" {label}: {self.role} answers ", classes="who")
            yield Static(self.prompt, id="prompt")
            yield Static(
                "Y = yes, confirmed      N = no (an exception is recorded)", classes="keys"
            )

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class ChoiceDialog(ModalScreen[str]):
    """One of a few options (retry/abort, continue/abort), chosen by arrows and Enter."""

    DEFAULT_CSS = """
    ChoiceDialog { align: center middle; }
    ChoiceDialog > Vertical { width: 76; height: auto; max-height: 20; border: thick $warning;
                              padding: 0 1; background: $surface; }
    ChoiceDialog .who { text-style: bold reverse; }
    ChoiceDialog OptionList { height: auto; max-height: 6; }
    """

    def __init__(self, role: str, prompt: str, options: Sequence[str]) -> None:
        super().__init__()
        self.role = role
        self.prompt = prompt
        self.options = list(options)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f" {self.role} decides ", classes="who")
            yield Static(self.prompt, id="prompt")
            yield OptionList(*[Option(o.upper(), id=o) for o in self.options], id="choices")
            yield Static("Arrows to choose, Enter to answer", classes="hint")

    def on_mount(self) -> None:
        choices = self.query_one(OptionList)
        choices.highlighted = 0
        choices.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.dismiss(event.option.id)


class AttendanceDialog(ModalScreen[dict[str, str]]):
    """Who fills each seat. Every required seat needs a name; Ctrl+S records the list."""

    BINDINGS = [Binding("ctrl+s", "save", "Record attendance")]
    DEFAULT_CSS = """
    AttendanceDialog { align: center middle; }
    AttendanceDialog > Vertical { width: 70; height: auto; max-height: 100%;
                                  border: thick $primary; padding: 0 1; background: $surface; }
    AttendanceDialog Horizontal { height: 1; }
    AttendanceDialog .seat { width: 6; text-style: bold; }
    AttendanceDialog Input, AttendanceDialog Input:focus { height: 1; border: none;
                                                           padding: 0 1; width: 1fr; }
    AttendanceDialog Input:focus { text-style: reverse; }
    AttendanceDialog .title { text-style: bold; }
    AttendanceDialog #problem { text-style: bold; }
    """

    def __init__(
        self, seats: Sequence[str], optional: Sequence[str], proposed: Mapping[str, str]
    ) -> None:
        super().__init__()
        self.seats = list(seats)
        self.optional = list(optional)
        self.proposed = dict(proposed)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Attendance: the person in each seat", classes="title")
            for seat in self.seats:
                with Horizontal():
                    yield Label(seat, classes="seat")
                    yield Input(
                        self.proposed.get(seat, ""), placeholder="full name", id=f"seat-{seat}"
                    )
            yield Static("", id="problem")
            yield Static("Tab/Enter: next seat    Ctrl+S: record attendance", classes="hint")

    def on_mount(self) -> None:
        self.query(Input).first().focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        index = inputs.index(event.input)
        if index + 1 < len(inputs):
            inputs[index + 1].focus()
        else:
            self.action_save()

    def action_save(self) -> None:
        names = {seat: self.query_one(f"#seat-{seat}", Input).value.strip() for seat in self.seats}
        missing = [s for s, n in names.items() if not n]
        if missing:
            self.query_one("#problem", Static).update(
                "Every seat needs a name: " + ", ".join(missing)
            )
            return
        self.dismiss(names)


class InputChooser(ModalScreen[str | None]):
    """The CA picks an input file from the media folder (the KSR, the roster...)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    InputChooser { align: center middle; }
    InputChooser > Vertical { width: 76; height: auto; max-height: 20; border: thick $primary;
                              padding: 0 1; background: $surface; }
    InputChooser OptionList { height: auto; max-height: 10; }
    InputChooser .title { text-style: bold; }
    """

    def __init__(
        self, name: str, description: str, files: Sequence[Path], proposed: str | None
    ) -> None:
        super().__init__()
        self.input_name = name
        self.description = description
        self.files = list(files)
        self.proposed = proposed

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"Input '{self.input_name}': {self.description}", classes="title")
            options = [Option(Text(p.name), id=str(p)) for p in self.files]
            if not options:
                options = [Option("no files on the media", disabled=True)]
            yield OptionList(*options, id="files")
            if self.proposed:
                yield Static(f"Proposed: {Path(self.proposed).name} (highlighted)")
            yield Static("Arrows to choose, Enter to load, Esc: cannot be found", classes="hint")

    def on_mount(self) -> None:
        files = self.query_one(OptionList)
        files.highlighted = 0
        files.focus()
        for i, p in enumerate(self.files):
            if self.proposed and str(p) == self.proposed:
                files.highlighted = i

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


class TextView(ModalScreen[None]):
    """A read-only page: the whole script, the journal, help, analysis, reports."""

    BINDINGS = [Binding("escape,q", "close", "Close")]
    DEFAULT_CSS = """
    TextView { align: center middle; }
    TextView > Vertical { width: 100%; height: 100%; border: thick $primary; padding: 0 1;
                          background: $surface; }
    TextView .title { text-style: bold reverse; }
    TextView RichLog { height: 1fr; }
    """

    def __init__(self, title: str, lines: Sequence[str]) -> None:
        super().__init__()
        self.title_text = title
        self.lines = list(lines)

    def compose(self) -> ComposeResult:
        from textual.widgets import RichLog

        with Vertical():
            yield Label(f" {self.title_text} ", classes="title")
            yield RichLog(id="text", wrap=True, markup=False, highlight=False)
            yield Static("Arrows/PgUp/PgDn scroll    Esc: close", classes="hint")

    def on_mount(self) -> None:
        from textual.widgets import RichLog

        log = self.query_one(RichLog)
        for line in self.lines:
            log.write(Text(line))
        log.scroll_home(animate=False)
        log.focus()

    def action_close(self) -> None:
        self.dismiss(None)
