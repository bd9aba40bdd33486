"""`python -m vcard`: bring the demo world's card readers up and script the room.

python -m vcard up --state DIR        pcscd + vpcd readers + card server (idempotent)
python -m vcard down                  stop what `up` started
python -m vcard create NAME [--serial XXXXXXXX]
python -m vcard insert NAME [--reader 0|1]
python -m vcard remove (--reader 0|1 | --card NAME)
python -m vcard list
python -m vcard serve --state DIR --control SOCK   (the server itself; `up` runs it)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from appliance.errors import ApplianceError
from vcard import harness
from vcard.server import CardServerClient, ServerError, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vcard", description=__doc__.split("\n")[0])
    parser.add_argument("--run-dir", type=Path, default=None, help="run files (pid, socket)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("up", help="start pcscd (if needed) and the card server")
    p.add_argument("--state", type=Path, required=True, help="folder of card state files")
    sub.add_parser("down", help="stop the card server and the pcscd that `up` started")
    p = sub.add_parser("create", help="make a factory-fresh card")
    p.add_argument("card")
    p.add_argument("--serial", default=None, help="8 hex digits (random if omitted)")
    p = sub.add_parser("insert", help="insert a card into a reader")
    p.add_argument("card")
    p.add_argument("--reader", type=int, default=0, choices=(0, 1))
    p = sub.add_parser("remove", help="remove the card from a reader")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--reader", type=int, choices=(0, 1))
    group.add_argument("--card")
    sub.add_parser("list", help="cards and readers as JSON")
    p = sub.add_parser("serve", help="run the card server in the foreground")
    p.add_argument("--state", type=Path, required=True)
    p.add_argument("--control", type=Path, required=True)
    p.add_argument("--no-pcscd-sync", action="store_true", help="do not wait for pcscd")
    args = parser.parse_args(argv)
    directory = args.run_dir or harness.run_dir()
    client = CardServerClient(harness.control_socket(directory))
    try:
        if args.cmd == "up":
            world = harness.up(args.state, directory)
            print(f"card readers up: {', '.join(world.readers)}; cards in {world.state_dir}")
        elif args.cmd == "down":
            harness.down(directory)
            print("card readers down")
        elif args.cmd == "create":
            print(client.create(args.card, args.serial))
        elif args.cmd == "insert":
            print(client.insert(args.card, args.reader))
        elif args.cmd == "remove":
            client.remove(args.reader, args.card)
        elif args.cmd == "list":
            print(json.dumps(client.listing(), indent=1))
        elif args.cmd == "serve":
            serve(args.state, args.control, sync_pcscd=not args.no_pcscd_sync)
    except ServerError as exc:
        print(f"vcard: {exc}", file=sys.stderr)
        return 1
    except ApplianceError as exc:
        print(f"vcard: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
