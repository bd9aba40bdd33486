"""The ceremony screen: checklist, the current step in large type, one action panel, notes.

The engine runs in a thread worker (`run_engine`) and asks its questions through
`appliance.tui.operator.TuiOperator`, which calls the `ask_*`/`show_*` methods below on the
event loop. Attributes go down (the step shown, the panel), answers go back up through
futures resolved by key presses and dialogs.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Group
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Static

from appliance.ceremony.operator import (
    CardRequest,
    Choice,
    Confirmation,
    Level,
    PinRequest,
    StepView,
    TypedConfirmation,
)
from appliance.tui.dialogs.ask import (
    AttendanceDialog,
    ChoiceDialog,
    ConfirmDialog,
    InputChooser,
    TextView,
)
from appliance.tui.dialogs.confirm import ConfirmDestructive
from appliance.tui.dialogs.exception_entry import ExceptionEntry
from appliance.tui.dialogs.pin import PinDialog
from appliance.tui.operator import ConsoleClosed, TuiOperator
from appliance.tui.widgets.hash_readout import readout_table
from appliance.tui.widgets.qr_preview import qr_text

if TYPE_CHECKING:
    from appliance.ceremony.engine import Engine, Outcome
    from appliance.tui.app import World

HEX64 = re.compile(r"\b[0-9a-f]{64}\b")
QUORUM = re.compile(r"\((\d+) of (\d+)\)")
MARK = {"done": "[x]", "current": "[>]", "todo": "[ ]", "exception": "[!]"}


class CeremonyScreen(Screen[None]):
    BINDINGS = [
        Binding("enter", "proceed", "Words read: go on", key_display="Enter"),
        Binding("c", "tray", "Card tray"),
        Binding("x", "cancel_wait", "Stop waiting"),
        Binding("s", "view_script", "Script"),
        Binding("j", "view_journal", "Journal"),
        Binding("a", "view_analysis", "Quorum"),
        Binding("p", "view_reports", "Reports"),
        Binding("question_mark,f1", "view_help", "Help", key_display="?"),
        Binding("q", "leave", "Back"),
    ]
    DEFAULT_CSS = """
    CeremonyScreen #header { dock: top; height: 1; background: $primary; color: $text;
                             text-style: bold; padding: 0 1; }
    CeremonyScreen #checklist { width: 30; border-right: solid $primary; padding: 0 1; }
    CeremonyScreen #main { width: 1fr; padding: 0 1; }
    CeremonyScreen #step-title { text-style: bold; border: heavy $accent; padding: 0 1;
                                 height: auto; }
    CeremonyScreen #step-meta { text-style: bold; height: auto; }
    CeremonyScreen #say { height: auto; max-height: 8; margin: 0 0 1 0; }
    CeremonyScreen #panel { height: auto; border: round $secondary; padding: 0 1; }
    CeremonyScreen #panel.alert { border: heavy $error; }
    CeremonyScreen #notes { height: 1fr; min-height: 3; color: $text-muted; }
    """

    def __init__(self, world: World, script_path: Path, workspace: Path) -> None:
        super().__init__()
        self.world = world
        self.script_path = script_path
        self.workspace = workspace
        self.operator = TuiOperator(self)
        self.engine: Engine | None = None
        self.outcome: Outcome | None = None
        self.failure: str | None = None
        self.attendance: dict[str, str] = {}
        self.view: StepView | None = None
        self.notes: list[tuple[str, str]] = []
        self.cancel_requested = threading.Event()
        self._proceed: asyncio.Future[None] | None = None
        self._pending: set[asyncio.Future[Any]] = set()
        self._started_at: datetime | None = None
        self._presented: list[str] = []
        self.print_status: str | None = None
        self._readout: tuple[Any, str] | None = None
        #: What the room is waiting for (tests and the tray read these).
        self.waiting_card: CardRequest | None = None
        self.removing: str | None = None

    # ---- layout ----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static("", id="header")
        with Horizontal():
            with VerticalScroll(id="checklist"):
                yield Static("", id="steps")
            with Vertical(id="main"):
                yield Static("Preparing the ceremony...", id="step-title")
                yield Static("", id="step-meta")
                with VerticalScroll(id="say"):
                    yield Static("", id="say-text")
                yield Static("", id="panel")
                yield Static("", id="notes")
        yield Footer()

    def on_mount(self) -> None:
        self._started_at = self.world.clock()
        self.tick()
        self.set_interval(1.0, self.tick)
        self.run_engine()

    def on_unmount(self) -> None:
        self.operator.closed.set()
        for future in [self._proceed, *self._pending]:
            if future is not None and not future.done():
                future.set_exception(ConsoleClosed())

    # ---- the engine ------------------------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="engine")
    def run_engine(self) -> None:
        from appliance.errors import ApplianceError

        try:
            self.engine = self.world.make_engine(self.script_path, self.workspace, self.operator)
            outcome = self.engine.run()
        except ConsoleClosed:
            return
        except ApplianceError as exc:
            self.failure = exc.operator_text()
            self.app.call_from_thread(self.show_failure, self.failure)
            return
        self.outcome = outcome
        self.app.call_from_thread(self.show_outcome, outcome)

    def show_outcome(self, outcome: Outcome) -> None:
        self.view = None
        self.tick()
        self.query_one("#step-title", Static).update(
            f"CEREMONY {outcome.status.upper()}" + (" (resumed)" if outcome.resumed else "")
        )
        self.query_one("#step-meta", Static).update(
            f"{outcome.exceptions} exception(s). Journal head {outcome.head[:16]}"
        )
        lines = [f"Journal: {outcome.journal}"]
        lines += [f"Output: {name}  {sha[:16]}" for name, sha in outcome.outputs.items()]
        if self.print_status:
            lines.append(f"Print: {self.print_status}")
        lines.append("Press q to return to the start screen.")
        self.query_one("#say-text", Static).update("\n".join(lines))
        if self.print_status:
            self._show_outputs(self.print_status)
        else:
            self._panel(Text("Done."), title="Outputs")

    def show_failure(self, text: str) -> None:
        self.query_one("#step-title", Static).update("THE CEREMONY DID NOT START OR STOPPED")
        self._panel(Text(text), alert=True)

    # ---- header and checklist --------------------------------------------------------------
    def tick(self) -> None:
        now = self.world.clock()
        elapsed = now - (self._started_at or now)
        minutes, seconds = divmod(int(elapsed.total_seconds()), 60)
        hours, minutes = divmod(minutes, 60)
        writer = self.engine._writer if self.engine is not None else None
        head = writer.head[:12] if writer is not None and writer.entries else "-"
        script_id = self.engine.script.id if self.engine is not None else self.script_path.stem
        where = f" {self.workspace.name}" if self.size.width > 100 else ""
        self.query_one("#header", Static).update(
            f"{script_id}{where}  {now:%Y-%m-%d %H:%M:%S} UTC  "
            f"elapsed {hours:d}:{minutes:02d}:{seconds:02d}  journal {head}"
        )
        self._checklist()

    def _checklist(self) -> None:
        engine = self.engine
        if engine is None:
            return
        writer = engine._writer
        entries = list(writer.entries) if writer is not None else []
        done = {e.step: e for e in entries if e.kind == "step_done"}
        exceptions = {e.step for e in entries if e.kind == "exception"}
        current = self.view.step_id if self.view else None
        out = Text()
        for act in engine.script.acts:
            out.append(f"{act.title}\n", style="bold")
            for step in act.steps:
                if step.id in done:
                    state = "exception" if step.id in exceptions else "done"
                elif step.id == current:
                    state = "current"
                else:
                    state = "todo"
                style = {"current": "bold reverse", "todo": "", "exception": "bold"}.get(state, "")
                out.append(f"{MARK[state]} {step.title}\n", style=style)
                if step.id in done:
                    entry = done[step.id]
                    who = ",".join(entry.data.get("confirmed_by", [])) or "-"
                    out.append(f"    {entry.time[11:16]} {who}\n", style="dim")
        self.query_one("#steps", Static).update(out)

    # ---- what the operator shows -----------------------------------------------------------
    def _panel(self, content: Any, *, alert: bool = False, title: str = "") -> None:
        panel = self.query_one("#panel", Static)
        panel.update(content)
        panel.border_title = title
        panel.set_class(alert, "alert")

    async def begin_step(self, view: StepView) -> None:
        self.view = view
        self._presented = []
        self._readout = None
        roles = ", ".join(view.roles) or "CA"
        self.query_one("#step-title", Static).update(Text(view.title.upper(), style="bold"))
        self.query_one("#step-meta", Static).update(
            f"Step {view.position} of {view.total} - {view.act_title} - performed by {roles}"
            + ("  (RESUMED)" if view.resumed else "")
        )
        self.query_one("#say-text", Static).update(
            Text("CA reads aloud:\n", style="bold") + Text(view.say.strip())
        )
        self._panel(Text("Press Enter when the words have been read aloud."), title="Next")
        self.tick()  # header (journal head) and checklist as of this step
        loop = asyncio.get_running_loop()
        self._proceed = loop.create_future()
        await self._proceed
        self._proceed = None
        self.waiting_card = None
        self._panel(Text(f"Working: {view.action or 'confirmations'}..."), title="Action")

    @property
    def awaiting_proceed(self) -> bool:
        return self._proceed is not None and not self._proceed.done()

    def action_proceed(self) -> None:
        if self._proceed is not None and not self._proceed.done():
            self._proceed.set_result(None)

    async def _dialog(self, screen: ModalScreen[Any]) -> Any:
        from appliance.tui.dialogs.tray import CardTrayDialog

        # The tray closes itself once its card moved: never stack a question above it.
        while isinstance(self.app.screen, CardTrayDialog):
            await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def done(result: Any) -> None:
            if not future.done():
                future.set_result(result)

        self._pending.add(future)
        try:
            await self.app.push_screen(screen, callback=done)
            return await future
        finally:
            self._pending.discard(future)

    async def ask_attendance(self, seats: list[str], optional: list[str]) -> dict[str, str]:
        names: dict[str, str] = await self._dialog(
            AttendanceDialog(seats, optional, self.world.people)
        )
        self.attendance = dict(names)
        return names

    async def ask_confirm(self, request: Confirmation) -> bool:
        name = self.attendance.get(request.role, "")
        who = f"{request.role} ({name})" if name else request.role
        shown, title = self._readout if self._readout else (None, "")
        return bool(
            await self._dialog(ConfirmDialog(who, request.prompt, request.purpose, shown, title))
        )

    async def ask_typed(self, request: TypedConfirmation) -> bool:
        title = f"{request.step_id}: {request.role} types the word"
        return bool(
            await self._dialog(ConfirmDestructive(title, request.consequence, request.phrase))
        )

    async def ask_pin(self, request: PinRequest) -> bytearray | None:
        holder = f"{request.seat} {self.attendance.get(request.seat, '')}".strip()
        tries = request.tries_left if request.tries_left is not None else 3
        pin: bytearray | None = await self._dialog(PinDialog(holder, request.serial, tries))
        return pin

    async def ask_exception(self, step_id: str, about: str) -> str | None:
        self.add_note(step_id, f"Exception: {about}", "warning")
        text: str | None = await self._dialog(ExceptionEntry(step_id))
        return text

    async def ask_choice(self, request: Choice) -> str:
        return str(await self._dialog(ChoiceDialog(request.role, request.prompt, request.options)))

    async def ask_input(self, name: str, description: str) -> str | None:
        media = self.world.config.paths.media
        files = sorted(p for p in media.glob("*") if p.is_file()) if media.is_dir() else []
        proposed = self.world.inputs.get(name) or next(
            (str(p) for p in files if p.stem == name or p.name.startswith(name)), None
        )
        path: str | None = await self._dialog(InputChooser(name, description, files, proposed))
        return path

    def show_card_prompt(self, request: CardRequest) -> None:
        self.waiting_card = request
        waiting = [s for s in request.candidates if s not in request.exclude]
        names = [f"{s} {self.attendance.get(s, '')}".strip() for s in waiting]
        out = Text()
        out.append(f"Card needed: {request.purpose}\n", style="bold")
        if len(waiting) == 1:
            out.append(f"Insert the card of {names[0]}.\n", style="bold")
        else:
            out.append("Any one of: " + "; ".join(names) + "\n")
        out.append(self._quorum_line(request))
        out.append(
            "\nWaiting for a card in the reader..."
            + ("  (C: demo card tray)" if self.world.demo else "")
            + "  X: stop waiting"
        )
        self._panel(out, title="Card")

    def _quorum_line(self, request: CardRequest) -> Text:
        have = len(request.exclude)
        need = self._quorum_need or len(request.candidates)
        names = [f"{s} {self.attendance.get(s, '')}".strip() for s in self._presented]
        return Text(
            f"Quorum: {have} of {need} presented"
            + (f" ({', '.join(names)})" if names else "")
            + "\n",
            style="bold",
        )

    _quorum_need: int | None = None

    def show_card_recognised(self, request: CardRequest, serial: str, seat: str) -> None:
        self.waiting_card = None
        name = self.attendance.get(seat, "")
        self._panel(
            Text(f"Card {serial} recognised: {seat} {name}.\nThe holder types the PIN.\n")
            + self._quorum_line(request),
            title="Card",
        )

    def show_remove_prompt(self, seat: str) -> None:
        self.waiting_card = None
        self.removing = seat
        name = self.attendance.get(seat, "")
        out = Text(f"{seat} {name}: take your card out of the reader now.\n", style="bold")
        if self.notes and self.notes[-1][0] == "error":
            out.append("PROBLEM: " + self.notes[-1][1] + "\n")
        if self._presented:
            out.append(
                f"Quorum: {len(self._presented)} of {self._quorum_need or '?'} "
                "presented ("
                + ", ".join(f"{s} {self.attendance.get(s, '')}".strip() for s in self._presented)
                + ")"
            )
        self._panel(out, title="Card", alert=bool(self.notes and self.notes[-1][0] == "error"))

    def show_card_removed(self, seat: str) -> None:
        self.removing = None
        self._panel(Text(f"{seat}'s card is out of the reader."), title="Card")

    def seat_for_serial(self, serial: str, request: CardRequest) -> str:
        """Whose card: the request's serials, the roster's holder names, the demo tray."""
        for seat, expected in request.serials.items():
            if expected == serial:
                return seat
        holder = self._roster_holders().get(serial)
        if holder:
            for seat, name in self.attendance.items():
                if name == holder and seat in request.candidates:
                    return seat
        tray = self.world.tray
        if tray is not None:
            for card in tray.cards:
                if card.serial == serial and card.seat in request.candidates:
                    return card.seat
        waiting = [s for s in request.candidates if s not in request.exclude]
        return (waiting or list(request.candidates))[0]

    def _roster_holders(self) -> dict[str, str]:
        import json

        path = self.workspace / "inputs" / "roster"
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        out: dict[str, str] = {}
        for cset in doc.get("body", {}).get("sets", []):
            for m in cset.get("members", []):
                if isinstance(m, dict) and "card_serial" in m:
                    out[str(m["card_serial"])] = str(m.get("holder", ""))
        return out

    def add_note(self, step_id: str | None, text: str, level: Level = "info") -> None:
        self.notes.append((level, text))
        mark = {"info": "", "warning": "WARNING: ", "error": "PROBLEM: "}[level]
        shown = self.notes[-4:]
        self.query_one("#notes", Static).update(
            Text(
                "\n".join(("" if lv == "info" else mark) + t.replace("\n", " ") for lv, t in shown)
            )
        )
        match = QUORUM.search(text)
        if match and "accepted" in text:
            seat = text.split(":", 1)[0].strip()
            self._presented.append(seat)
            self._quorum_need = int(match.group(2))
            self._panel(
                Text(text + "\n", style="bold")
                + Text(
                    f"Quorum: {match.group(1)} of {match.group(2)} presented ("
                    + ", ".join(
                        f"{s} {self.attendance.get(s, '')}".strip() for s in self._presented
                    )
                    + ")"
                ),
                title="Quorum",
            )
            return
        digest = HEX64.search(text)
        if level == "error":
            self._panel(Text(text), alert=True, title="Problem")
        elif digest and ("SHA-256" in text or "DS" in text):
            label = text.split("SHA-256")[0].strip() or "hash"
            table = readout_table(bytes.fromhex(digest.group(0)))
            self._readout = (table, f" Read aloud: {label[:40]} SHA-256 ")
            self._panel(table, title=f"Read aloud: {label[:40]}")
        elif "sheet" in text and ("printer" in text.lower() or "print" in text.lower()):
            self.print_status = text
            self._show_outputs(text)

    def _show_outputs(self, status: str) -> None:
        content: list[Any] = [Text("Print status: " + status + "\n", style="bold")]
        engine = self.engine
        skr = None
        if engine is not None and engine._writer is not None:
            for e in engine._writer.entries:
                if e.kind == "action" and e.data.get("ok"):
                    result = e.data.get("result") or {}
                    if isinstance(result, dict) and result.get("skr_sha256"):
                        skr = str(result["skr_sha256"])
        if skr is not None:
            content.append(Text(f"QR preview (SKR SHA-256 {skr[:16]}...):"))
            content.append(Text(qr_text(f"SKR:{skr}".upper())))
        self._panel(Group(*content), title="Outputs")

    # ---- actions of the room ---------------------------------------------------------------
    def action_tray(self) -> None:
        from appliance.tui.dialogs.tray import CardTrayDialog

        if self.world.tray is None or not self.world.demo:
            self.notify("No card tray: this is not the demo.", severity="warning")
            return

        def done(result: str | None) -> None:
            if result:
                self.add_note(None, f"Tray: {result}")

        self.app.push_screen(CardTrayDialog(self.world.tray), callback=done)

    def action_cancel_wait(self) -> None:
        self.cancel_requested.set()

    def _view(self, title: str, lines: Sequence[str]) -> None:
        self.app.push_screen(TextView(title, lines))

    def action_view_script(self) -> None:
        from appliance.tui.views import script_lines

        self._view(f"Script {self.script_path.name}", script_lines(self.world, self.script_path))

    def action_view_journal(self) -> None:
        from appliance.tui.views import journal_lines

        entries = list(self.engine._writer.entries) if self.engine and self.engine._writer else []
        self._view("Journal", journal_lines(entries))

    def action_view_analysis(self) -> None:
        from appliance.tui.views import analysis_lines

        self._view("Quorum analysis", analysis_lines(self.workspace, self.world))

    def action_view_reports(self) -> None:
        from appliance.tui.views import report_lines

        self._view("Credential reports", report_lines(self.workspace, self.world))

    def action_view_help(self) -> None:
        from appliance.tui.views import help_lines

        self._view("Keys", help_lines(self))

    def action_leave(self) -> None:
        if self.outcome is None and self.failure is None:
            self.notify(
                "The ceremony is running: finish or abort it first "
                "(closing the console keeps the journal for a resume).",
                severity="warning",
            )
            return
        self.app.pop_screen()
