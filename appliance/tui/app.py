"""The Textual app, built through a factory so tests and the demo inject their world."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from textual.app import App

from appliance.config import Config
from appliance.doctor import CheckResult, run_checks
from appliance.tui.screens.start import StartScreen
from appliance.tui.widgets.clock_bar import utc_now


@dataclass
class World:
    """What the app talks to. Tests replace pieces; the demo adds virtual cards."""

    config: Config
    checks: Callable[[], list[CheckResult]] | None = None
    clock: Callable[[], datetime] = field(default=utc_now)


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
        checks = self.world.checks or (lambda: run_checks(self.world.config))
        self.push_screen(StartScreen(self.world.config.paths.scripts, checks, self.world.clock))


def create_app(config: Config, *, console: bool = False, **overrides: object) -> CeremonyApp:
    world = World(config=config)
    for name, value in overrides.items():
        if not hasattr(world, name):
            raise TypeError(f"unknown world part {name!r}")
        setattr(world, name, value)
    return CeremonyApp(world, console=console)
