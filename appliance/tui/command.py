"""`appliance tui`: start the operator's console. Textual is imported only when it runs."""

from __future__ import annotations

import argparse
import os

from appliance.config import load_config


def command(args: argparse.Namespace) -> int:
    from appliance import demo
    from appliance.tui.app import create_app

    config = load_config(args.config)
    if config.demo.enabled:
        demo.prepare(config)
    console = args.console or os.environ.get("TERM") == "linux"
    create_app(config, console=console).run()
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tui", help="the operator's console (Textual)")
    p.add_argument(
        "--console",
        action="store_true",
        help="16-colour Linux console palette (auto on TERM=linux)",
    )
    p.set_defaults(handler=command)
