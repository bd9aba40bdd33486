"""`appliance`: the command line. Thin: parse, call the domain, map errors to exit codes.

Exit codes: 0 ok, 1 operator-fixable, 2 usage or configuration, 3 internal.
Each area registers its subcommands from its own module; handlers import heavy libraries
lazily so that start-up stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import resource
import sys
from collections.abc import Sequence

from appliance import __version__
from appliance.errors import ApplianceError

#: Modules with `register(subparsers)`, in the order their commands appear in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "appliance.doctor",
    "appliance.demo",
    "appliance.tui.command",
    "appliance.outputs.cli",
    "appliance.analysis.cli",
    "appliance.dnssec.cli",
    "appliance.ceremony.cli",
    "appliance.hsm.cli",
    "appliance.sharing.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="appliance", description="Offline DNSSEC key ceremony appliance."
    )
    parser.add_argument("--version", action="version", version=f"appliance {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="configuration file (default: $APPLIANCE_CONFIG, ./appliance.toml, "
        "/etc/appliance/appliance.toml)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def _no_core_dumps() -> None:
    """Secrets live in this process's memory: never let a crash write them to disk."""
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: Sequence[str] | None = None) -> int:
    _no_core_dumps()
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
        sys.stdout.flush()  # surface a closed pipe here, not at interpreter exit
    except ApplianceError as exc:
        print(f"{exc.title}: {exc.operator_text()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`appliance ... | head`): not an error of ours, say nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except Exception as exc:  # an unexpected error is a bug: say so plainly, exit 3
        print(
            f"Internal error: {type(exc).__name__}. This is a bug in the appliance; the "
            "journal is intact. Report it with the journal head.",
            file=sys.stderr,
        )
        return 3
    return code


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
