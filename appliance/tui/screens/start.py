"""Start screen: is the laptop fit for a ceremony, and which ceremony to run."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from appliance.config import Config
from appliance.doctor import CheckResult
from appliance.tui.widgets.clock_bar import ClockBar
from appliance.tui.widgets.status_table import StatusTable


@dataclass(frozen=True)
class ScriptEntry:
    path: Path
    title: str


def list_scripts(folder: Path) -> list[ScriptEntry]:
    """Scripts in the library with their titles; unreadable ones are listed as such."""
    entries: list[ScriptEntry] = []
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
            meta = doc.get("ceremony") or doc.get("meta") or {}
            title = str(meta.get("title", path.stem))
        except (OSError, tomllib.TOMLDecodeError):
            title = f"{path.stem} (cannot be read: run `appliance script check`)"
        entries.append(ScriptEntry(path, title))
    return entries


@dataclass(frozen=True)
class Unfinished:
    script: Path
    workspace: Path


def unfinished_ceremonies(workspaces: Path, scripts: Path) -> list[Unfinished]:
    """Workspaces whose journal started and has no end: resumable from the start screen."""
    import json

    found: list[Unfinished] = []
    for journal in sorted(workspaces.glob("*/journal.jsonl")) if workspaces.is_dir() else []:
        try:
            lines = journal.read_bytes().splitlines()
            first = json.loads(lines[0]) if lines else None
            kinds = {json.loads(line).get("kind") for line in lines[-3:] if line.strip()}
        except (OSError, ValueError):
            continue
        if not isinstance(first, dict) or kinds & {"end", "abort"}:
            continue
        name = str(first.get("data", {}).get("script", {}).get("file", ""))
        if name and (scripts / name).is_file():
            found.append(Unfinished(scripts / name, journal.parent))
    return found


class StartScreen(Screen[None]):
    BINDINGS = [
        Binding("r", "refresh", "Re-check"),
        Binding("q", "app.quit", "Quit"),
    ]
    DEFAULT_CSS = """
    StartScreen #status { height: auto; max-height: 12; }
    StartScreen .section { text-style: bold; margin: 1 0 0 1; }
    StartScreen #scripts { height: 1fr; min-height: 4; }
    """

    class ScriptChosen(Message):
        """Start `path` in a new workspace, or resume the ceremony in `workspace`."""

        def __init__(self, path: Path, workspace: Path | None = None) -> None:
            super().__init__()
            self.path = path
            self.workspace = workspace

    def __init__(
        self,
        config: Config,
        checks: Callable[[], list[CheckResult]],
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__()
        self.clock = clock
        self.config = config
        self.scripts_folder = config.paths.scripts
        self.checks = checks
        self.scripts = list_scripts(self.scripts_folder)
        self.unfinished = unfinished_ceremonies(config.paths.workspace, self.scripts_folder)

    def compose(self) -> ComposeResult:
        yield ClockBar("Ceremony appliance: start", self.clock)
        with Vertical():
            yield Static("Appliance status", classes="section")
            yield StatusTable(id="status")
            yield Static(
                f"Ceremony scripts ({len(self.scripts)} in the library): "
                "choose with the arrows, Enter to start",
                classes="section",
            )
            options = [
                Option(
                    Text(
                        f"RESUME {u.script.name}: unfinished, at {u.workspace.name}", style="bold"
                    ),
                    id=f"resume:{u.workspace}",
                )
                for u in self.unfinished
            ]
            options += [
                Option(Text(f"{s.title}  [{s.path.name}]"), id=str(s.path)) for s in self.scripts
            ]
            if not options:
                options = [Option(Text("no scripts found: check [paths] scripts"), disabled=True)]
            yield OptionList(*options, id="scripts")
        yield Footer()

    def on_mount(self) -> None:
        self.action_refresh()
        self.query_one("#scripts", OptionList).focus()

    def action_refresh(self) -> None:
        self.run_checks()

    @work(thread=True, exclusive=True, exit_on_error=False)
    def run_checks(self) -> None:
        """The checks talk to pcscd and the HSM: never on the event loop."""
        results = self.checks()
        self.app.call_from_thread(self.show_results, results)

    def show_results(self, results: list[CheckResult]) -> None:
        self.query_one(StatusTable).show(results)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        chosen = event.option.id
        if not chosen:
            return
        if chosen.startswith("resume:"):
            found = next(u for u in self.unfinished if str(u.workspace) == chosen[7:])
            self.post_message(self.ScriptChosen(found.script, found.workspace))
        else:
            self.post_message(self.ScriptChosen(Path(chosen)))
