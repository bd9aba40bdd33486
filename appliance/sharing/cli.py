"""`appliance attest` and `appliance attest verify`: a holder's yearly attestation.

`appliance attest` runs on any machine with a card reader (a holder at home): it finds the
holder's card (by --card-serial, or the only card inserted), asks for the PIN (no echo; or
`--pin-fd N` for scripts), checks the card's sealed share against the roster's commitment,
has the card sign the statement, and writes a JSON file and a QR image.

`appliance attest verify FILE` checks an attestation (.json, the QR text, or the .png)
against the roster. Both commands need the roster file and the ceremony key's fingerprint
from the printed ceremony sheet: a roster is trusted only through that key.
Exit codes: 0 verified/written; 1 refused (with the reason); 2 usage.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from appliance import secret_input
from appliance.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "attest",
        help="holder attestation: card signs 'in my custody and intact' (verify: check one)",
        allow_abbrev=False,
    )
    _roster_args(p, required=False)  # checked in the handler: `verify` brings its own
    p.add_argument("--set", dest="set_id", help="credential set id, when the card holds several")
    p.add_argument("--card-serial", help="the card to use (default: the only card inserted)")
    p.add_argument("--out", type=Path, default=Path("."), help="folder for the .json and .png")
    p.add_argument("--pin-fd", type=int, metavar="FD", help="read the PIN from this descriptor")
    p.set_defaults(handler=cmd_attest)
    cmds = p.add_subparsers(dest="attest_command", metavar="ACTION")
    v = cmds.add_parser("verify", help="check an attestation against the roster")
    v.add_argument("file", type=Path, help="attestation .json, .png (QR) or QR text file")
    _roster_args(v)
    v.set_defaults(handler=cmd_verify)


def _roster_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("--roster", type=Path, required=required, help="the roster file (roster.json)")
    p.add_argument(
        "--ceremony-fingerprint",
        required=required,
        metavar="HEX",
        help="SHA-256 fingerprint of the ceremony key (printed on the ceremony sheet)",
    )


def _read_fd(fd: int) -> bytearray:
    return secret_input.read_fd(fd, "the PIN")


def _ask_pin(serial: str) -> bytearray:
    return secret_input.prompt(
        f"PIN of card {serial}",
        no_terminal="No terminal to ask for the card's PIN.",
        hint="Run it on a terminal, or pass the PIN through a descriptor (--pin-fd N).",
    )


def _load_roster(args: argparse.Namespace) -> Any:
    from appliance.sharing import roster

    if args.roster is None or args.ceremony_fingerprint is None:
        raise UsageError(
            "appliance attest needs --roster and --ceremony-fingerprint.",
            hint="Use the roster the registry gave you and the fingerprint printed on the "
            "ceremony sheet.",
        )
    return roster.load(args.roster, trusted_fingerprint=args.ceremony_fingerprint)


def cmd_attest(args: argparse.Namespace) -> int:
    from appliance.cards import pcsc
    from appliance.cards.errors import NoReader
    from appliance.sharing import attest
    from appliance.sharing.openpgp_card import OpenPgpHolderCard

    loaded = _load_roster(args)
    with contextlib.ExitStack() as stack:
        if args.card_serial:
            _, transport = stack.enter_context(pcsc.find_card(args.card_serial))
        else:
            present = [s for s in pcsc.slot_states() if s.present]
            if not present:
                raise NoReader("no card is inserted")
            if len(present) > 1:
                raise UsageError(
                    f"{len(present)} cards are inserted.",
                    hint="Leave only your card in the reader, or name it with --card-serial.",
                )
            transport = stack.enter_context(pcsc.connect(present[0].reader))
        card = OpenPgpHolderCard.open(transport)
        pin = _read_fd(args.pin_fd) if args.pin_fd is not None else _ask_pin(card.serial)
        result = attest.make_attestation(loaded, card, pin, set_id=args.set_id)
    json_path, png_path = result.write(args.out)
    st = result.statement
    print(f"Attested: {st['holder']}, share {st['index']} of set {st['set_id']} ({st['subject']})")
    print(f"  {json_path}\n  {png_path}")
    print("Send either file to the registry; it checks it with `appliance attest verify`.")
    return 0


def _read_attestation(path: Path) -> bytes | str:
    if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
        import zxingcpp
        from PIL import Image

        found = zxingcpp.read_barcodes(Image.open(path))
        if not found:
            from appliance.sharing.errors import AttestationError

            raise AttestationError(f"no QR code found in {path}", hint="Scan it again.")
        return str(found[0].text)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"Cannot read {path}: {exc.strerror}.") from None


def cmd_verify(args: argparse.Namespace) -> int:
    from appliance.sharing import attest

    loaded = _load_roster(args)
    checked = attest.verify(loaded, attest.parse(_read_attestation(args.file)))
    print(
        f"Verified: {checked.holder} (card {checked.card_serial}) attests share "
        f"{checked.index} of set {checked.set_id} on {checked.date}."
    )
    return 0
