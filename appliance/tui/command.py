"""`appliance tui`: start the operator's console. Textual is imported only when it runs."""

from __future__ import annotations

import argparse
import os

from appliance.config import Config, load_config


def demo_world_parts(config: Config) -> dict[str, object]:
    """The demo's card tray (pcscd + vpcd when they come up, else in process) and proposals."""
    from appliance import demo
    from appliance.tui.cardroom import DirectTray, PcscTray, TrayCard

    world = demo.DemoWorld(config)
    cards = tuple(TrayCard(c.name, c.serial, c.seat, c.holder, c.pin) for c in demo.CARDS)
    tray: object
    # APPLIANCE_DEMO_READERS=direct: in-process readers (tests; a machine without pcscd).
    if os.environ.get("APPLIANCE_DEMO_READERS") == "direct":
        return {
            "tray": DirectTray(world.cards_dir, cards),
            "demo": True,
            "people": dict(demo.PEOPLE),
            "inputs": world.inputs(),
        }
    try:
        import vcard.harness as harness

        up = harness.up(world.cards_dir)
        if len(up.readers) < 2:
            raise RuntimeError("vpcd readers not visible")
        tray = PcscTray(up.client, tuple(up.readers), cards)
    except Exception:  # noqa: BLE001 - no pcscd here: the in-process readers still demo it all
        tray = DirectTray(world.cards_dir, cards)
    return {"tray": tray, "demo": True, "people": dict(demo.PEOPLE), "inputs": world.inputs()}


def ceremony_parts(config: Config) -> dict[str, object]:
    """A real ceremony: the readers pcscd shows ([cards] readers), filled by hand."""
    from appliance.tui.cardroom import PcscReaders

    return {"tray": PcscReaders(prefixes=tuple(config.cards.readers))}


def start_tui(config: Config, *, console: bool = False) -> int:
    from appliance.tui.app import create_app

    console = console or os.environ.get("TERM") == "linux"
    parts = demo_world_parts(config) if config.demo.enabled else ceremony_parts(config)
    try:
        create_app(config, console=console, **parts).run()
    finally:
        # a pyscard handle left open on an inserted card can hang the process at exit
        close = getattr(parts.get("tray"), "close", None)
        if close is not None:
            close()
    return 0


def render_check(config: Config) -> int:
    """Draw the start screen headless at 80x24 on the console palette, then exit: the live
    image's self-test boot proves with this that the console program starts and renders."""
    import asyncio

    from appliance.tui.app import create_app
    from appliance.tui.screens.start import StartScreen
    from appliance.tui.widgets.status_table import StatusTable

    app = create_app(config, console=True)

    async def draw() -> tuple[str, int]:
        async with app.run_test(headless=True, size=(80, 24)) as pilot:
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            screen = app.screen
            rows = screen.query_one(StatusTable).row_count if isinstance(screen, StartScreen) else 0
            return type(screen).__name__, rows

    name, rows = asyncio.run(draw())
    if name != "StartScreen" or rows == 0:
        print(f"TUI RENDER FAILED: screen {name}, {rows} status rows")
        return 1
    print(f"TUI RENDERED: {name} at 80x24 with {rows} status rows")
    return 0


def command(args: argparse.Namespace) -> int:
    from appliance import demo

    config = load_config(args.config)
    if args.check:
        return render_check(config)
    if config.demo.enabled:
        demo.build_world(config, say=print)
    return start_tui(config, console=args.console)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tui", help="the operator's console (Textual)")
    p.add_argument(
        "--console",
        action="store_true",
        help="16-colour Linux console palette (auto on TERM=linux)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="draw the start screen headless and exit (0 when it rendered): the image self-test",
    )
    p.set_defaults(handler=command)
