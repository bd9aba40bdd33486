"""Drive a ceremony through the console as the room would: keys only, cards from the tray.

Shared by the pilot tests. `drive` answers whatever the screen asks (attendance, words read,
confirmations, inputs, cards, PINs) until the ceremony ends, and records what it saw.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from textual.pilot import Pilot
from textual.widgets import OptionList

from appliance import demo
from appliance.config import Config, load_config
from appliance.tui.app import CeremonyApp, create_app
from appliance.tui.cardroom import DirectTray, TrayCard
from appliance.tui.dialogs.ask import AttendanceDialog, ChoiceDialog, ConfirmDialog, InputChooser
from appliance.tui.dialogs.confirm import ConfirmDestructive
from appliance.tui.dialogs.pin import PinDialog
from appliance.tui.dialogs.tray import CardTrayDialog
from appliance.tui.screens.ceremony import CeremonyScreen

REPO = Path(__file__).resolve().parents[2]
START = datetime(2026, 12, 4, 9, 30, 0, tzinfo=UTC)


class FrozenClock:
    """Moves one second per call: journal times are distinct but the same on every machine."""

    def __init__(self, start: datetime = START, step: float = 0.0) -> None:
        self.now = start
        self.step = timedelta(seconds=step)

    def __call__(self) -> datetime:
        self.now += self.step
        return self.now


def demo_config(root: Path, scripts: Path = REPO / "scripts") -> Config:
    cfg = root / "appliance.toml"
    cfg.write_text(
        f'[paths]\nmedia = "{root}/media"\nscripts = "{scripts}"\n'
        f'workspace = "{root}/workspace"\n'
        '[hsm]\nmodule = "/usr/lib/softhsm/libsofthsm2.so"\ntoken = "ceremony"\n'
        'activation = "pin-quorum"\n[airgap]\nrequired = false\n'
        f'[demo]\nenabled = true\nstate = "{root}/state"\n'
    )
    return load_config(cfg)


def tray_cards() -> tuple[TrayCard, ...]:
    return tuple(TrayCard(c.name, c.serial, c.seat, c.holder, c.pin) for c in demo.CARDS)


def airgap_tree(root: Path) -> Path:
    (root / "airgap" / "sys/class/net/lo").mkdir(parents=True, exist_ok=True)
    return root / "airgap"


def make_app(
    config: Config,
    root: Path,
    *,
    console: bool = False,
    clock: Callable[[], datetime] | None = None,
    **extra: object,
) -> CeremonyApp:
    world = demo.DemoWorld(config)
    parts: dict[str, object] = {
        "tray": DirectTray(world.cards_dir, tray_cards()),
        "demo": True,
        "people": dict(demo.PEOPLE),
        "inputs": world.inputs(),
        "airgap_root": airgap_tree(root),
        "clock": clock or FrozenClock(),
        "checks": lambda: [],
    }
    parts.update(extra)
    return create_app(config, console=console, **parts)


@dataclass
class Seen:
    screens: set[str] = field(default_factory=set)
    pins_typed: list[str] = field(default_factory=list)
    tray_inserts: list[str] = field(default_factory=list)
    readouts: int = 0


def _card_for(screen: CeremonyScreen) -> str | None:
    request = screen.waiting_card
    if request is None:
        return None
    for card in demo.CARDS:
        if card.seat in request.candidates and card.seat not in request.exclude:
            return card.name
    return None


async def _choose_card(pilot: Pilot[None], name: str) -> None:
    options = pilot.app.screen.query_one(OptionList)
    index = next(i for i, o in enumerate(options.options) if o.id == name)
    options.highlighted = index
    await pilot.pause()


async def drive(
    pilot: Pilot[None],
    *,
    pins: dict[str, list[str]] | None = None,
    until: Callable[[CeremonyScreen], bool] | None = None,
    limit: int = 600,
    hands: Hands | None = None,
) -> Seen:
    """Answer the console until the ceremony ends (or `until` holds). `pins`: seat -> PINs
    to type in order (default: the demo PIN). `hands`: real readers, whose cards a person
    inserts and takes out (else the demo's card tray is used)."""
    app = pilot.app
    seen = Seen()
    queue = {seat: list(p) for seat, p in (pins or {}).items()}
    ceremony: CeremonyScreen | None = None
    for _ in range(limit):
        await pilot.pause(0.02)
        screen = app.screen
        seen.screens.add(type(screen).__name__)
        below = [s for s in app.screen_stack if isinstance(s, CeremonyScreen)]
        ceremony = below[-1] if below else ceremony
        if until is not None and ceremony is not None and until(ceremony):
            return seen
        if isinstance(screen, CeremonyScreen):
            if screen.outcome is not None or screen.failure is not None:
                return seen
            if screen.awaiting_proceed:
                await pilot.press("enter")
            elif screen.waiting_card is not None and _card_for(screen) and hands is not None:
                name = _card_for(screen)
                assert name is not None
                if hands.insert(name):
                    seen.tray_inserts.append(name)
            elif screen.removing is not None and hands is not None:
                hands.remove()
            elif screen.waiting_card is not None and _card_for(screen):
                await pilot.press("c")
                await pilot.pause()
                name = _card_for(screen)
                assert name is not None
                await _choose_card(pilot, name)
                await pilot.press("enter")
                seen.tray_inserts.append(name)
                await _tray_closed(pilot)
            elif screen.removing is not None:
                held = [h for h in screen.world.tray.held() if h] if screen.world.tray else []
                if held:
                    await pilot.press("c")
                    await pilot.pause()
                    await _choose_card(pilot, held[0])
                    await pilot.press("r")
                    await _tray_closed(pilot)
        elif isinstance(screen, AttendanceDialog):
            await pilot.press("ctrl+s")
        elif isinstance(screen, ConfirmDialog):
            if ceremony is not None and "Read aloud" in str(
                ceremony.query_one("#panel").border_title or ""
            ):
                seen.readouts += 1
            await pilot.press("y")
        elif isinstance(screen, InputChooser):
            await pilot.press("enter")
        elif isinstance(screen, ConfirmDestructive):
            await pilot.press(*screen.word, "enter")
        elif isinstance(screen, PinDialog):
            seat = screen.holder.split()[0]
            default = next(c.pin for c in demo.CARDS if c.seat == seat)
            pin = queue[seat].pop(0) if queue.get(seat) else default
            seen.pins_typed.append(seat)
            await pilot.press(*pin, "enter")
        elif isinstance(screen, ChoiceDialog):
            raise AssertionError(f"unexpected choice: {screen.prompt}")
        elif isinstance(screen, CardTrayDialog):
            await _tray_closed(pilot)
    screen = app.screen
    notes = ceremony.notes[-5:] if ceremony else []
    raise AssertionError(f"the ceremony did not finish: on {type(screen).__name__}, {notes}")


class Hands(Protocol):
    """A person at real readers: puts a card in (True if it was not in already), takes it out."""

    def insert(self, name: str) -> bool: ...

    def remove(self) -> None: ...


async def _tray_closed(pilot: Pilot[None]) -> None:
    """The tray closes itself once the card is in (or out); never wait on all workers: the
    engine's worker runs for the whole ceremony."""
    for _ in range(200):
        if not isinstance(pilot.app.screen, CardTrayDialog):
            return
        await pilot.pause(0.02)
    raise AssertionError("the card tray did not finish")


async def choose_script(pilot: Pilot[None], script: Path) -> None:
    """On the start screen: move to `script` with the arrows and press Enter."""
    options = pilot.app.screen.query_one(OptionList)
    index = next(i for i, o in enumerate(options.options) if o.id == str(script))
    options.focus()
    options.highlighted = 0
    await pilot.press(*(["down"] * index), "enter")
    await pilot.pause()


def softhsm_env(config: Config) -> Callable[[], None]:
    """Point at the demo SoftHSM; returns a function restoring the environment."""
    before = os.environ.get("SOFTHSM2_CONF")

    def restore() -> None:
        if before is None:
            os.environ.pop("SOFTHSM2_CONF", None)
        else:
            os.environ["SOFTHSM2_CONF"] = before

    return restore
