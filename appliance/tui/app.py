"""The Textual app, built through a factory so tests and the demo inject their world."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import App

from appliance.config import Config
from appliance.doctor import CheckResult, run_checks
from appliance.tui.cardroom import CardTray
from appliance.tui.screens.start import StartScreen
from appliance.tui.widgets.clock_bar import utc_now

if TYPE_CHECKING:
    from appliance.ceremony.engine import Engine
    from appliance.ceremony.operator import Operator


@dataclass
class World:
    """What the app talks to. Tests replace pieces; the demo adds virtual cards."""

    config: Config
    checks: Callable[[], list[CheckResult]] | None = None
    clock: Callable[[], datetime] = field(default=utc_now)
    #: The card readers (the demo's tray of virtual cards, or None: no cards).
    tray: CardTray | None = None
    #: Demo mode: the card tray is offered.
    demo: bool = False
    #: Names proposed in the attendance dialog (seat -> name); the CA corrects them.
    people: Mapping[str, str] = field(default_factory=dict)
    #: Input files proposed in the file chooser (name -> path on the media).
    inputs: Mapping[str, str] = field(default_factory=dict)
    #: Root of the air-gap check (tests pass a fake tree).
    airgap_root: Path = Path("/")

    def make_engine(self, script: Path, workspace: Path, operator: Operator) -> Engine:
        """The engine for `script` in `workspace`, bound to this world's cards and HSM."""
        from appliance.ceremony.engine import Engine
        from appliance.ceremony.loader import load_script
        from appliance.ceremony.registry import default_registry
        from appliance.ceremony.services import build_services

        registry = default_registry()
        # The engine's own builder (layer services as they appear), with this console's readers.
        services = build_services(self.config, airgap_root=self.airgap_root)
        services.cards = self.tray
        services.card_slots = None
        clock = self.clock

        def stamp() -> str:
            return clock().isoformat(timespec="milliseconds").replace("+00:00", "Z")

        return Engine(
            load_script(script, registry),
            registry,
            operator,
            workspace,
            config=self.config,
            services=services,
            clock=stamp,
        )

    def new_workspace(self, script_id: str) -> Path:
        """A fresh folder per ceremony (a finished one is its record, never reused)."""
        base = self.config.paths.workspace / f"{script_id}-{self.clock():%Y%m%dT%H%M%S}"
        path, n = base, 1
        while path.exists():
            n += 1
            path = base.with_name(f"{base.name}-{n}")
        return path


class CeremonyApp(App[None]):
    TITLE = "Ceremony appliance"
    CSS_PATH = "app.tcss"

    def __init__(self, world: World, *, console: bool = False) -> None:
        # On the Linux console (16 colours) use the terminal's own ANSI palette.
        super().__init__(ansi_color=console)
        self.world = world
        if console:
            self.theme = "ansi-dark"

    def on_mount(self) -> None:
        base = self.world.checks or (lambda: run_checks(self.world.config))

        def checks() -> list[CheckResult]:
            from appliance.tui.views import roster_checks

            return [*base(), *roster_checks(self.world)]

        self.push_screen(StartScreen(self.world.config, checks, self.world.clock))

    def on_start_screen_script_chosen(self, message: StartScreen.ScriptChosen) -> None:
        from appliance.tui.screens.ceremony import CeremonyScreen

        workspace = message.workspace or self.world.new_workspace(message.path.stem)
        self.push_screen(CeremonyScreen(self.world, message.path, workspace))


def create_app(config: Config, *, console: bool = False, **overrides: object) -> CeremonyApp:
    world = World(config=config)
    for name, value in overrides.items():
        if not hasattr(world, name):
            raise TypeError(f"unknown world part {name!r}")
        setattr(world, name, value)
    return CeremonyApp(world, console=console)
