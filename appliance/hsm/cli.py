"""`appliance hsm init|inventory|keygen|coverage|backup|restore`: the HSM outside ceremonies.

Secrets never come from argv. The user PIN is read from a file descriptor (`--pin-fd N`,
for scripts and tests) or else asked for on the terminal without echo. The backup wrapping
key (64 hex digits) comes the same way (`--wrapping-key-fd N`, else a no-echo prompt); in a
ceremony the credentials layer rebuilds it from the shareholders' cards instead.

Exit codes: 0 ok; 1 an operator-fixable error, or `coverage` found uncovered keys, or a
backup left keys uncovered; 2 usage or configuration.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from appliance import secret_input
from appliance.errors import UsageError

_HEX = b"0123456789abcdefABCDEF"


def register(sub: Any) -> None:
    # allow_abbrev=False: "--pin 1234" must fail, not be taken for "--pin-fd 1234".
    hsm = sub.add_parser("hsm", help="HSM keys, backups and coverage (PKCS#11)", allow_abbrev=False)
    cmds = hsm.add_subparsers(dest="hsm_command", metavar="ACTION")
    cmds.required = True

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--token", help="token label (default: [hsm] token)")
        p.add_argument("--serial", help="token serial, when labels are not unique")
        p.add_argument(
            "--pin-fd",
            type=int,
            metavar="FD",
            help="read the user PIN from this file descriptor (else: prompt without echo)",
        )
        p.add_argument(
            "--backups",
            type=Path,
            metavar="DIR",
            help="backup folder (default: <workspace>/hsm-backups)",
        )

    p = cmds.add_parser(
        "init",
        help="initialise a SoftHSM token (vendor HSMs: use the vendor's tools)",
        allow_abbrev=False,
    )
    p.add_argument("--label", help="token label (default: [hsm] token)")
    p.add_argument("--so-pin-fd", type=int, metavar="FD", help="read the SO PIN from this FD")
    p.add_argument("--pin-fd", type=int, metavar="FD", help="read the user PIN from this FD")
    p.set_defaults(handler=cmd_init)

    p = cmds.add_parser(
        "inventory", help="list the token's keys, key tags and coverage", allow_abbrev=False
    )
    common(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=cmd_inventory)

    p = cmds.add_parser(
        "keygen", help="generate a DNSSEC key or the ceremony key", allow_abbrev=False
    )
    common(p)
    p.add_argument("--algorithm", type=int, choices=(8, 13, 14, 15))
    p.add_argument("--bits", type=int, choices=(2048, 3072, 4096), help="RSA size")
    p.add_argument("--role", choices=("ksk", "zsk"))
    p.add_argument("--zone", default="", help="zone name (used in the label)")
    p.add_argument("--label", help="explicit label (default: <zone>-<role>-a<alg>-<date>)")
    p.add_argument(
        "--allow-uncoverable",
        action="store_true",
        help="generate a KSK even though no backup can cover it (recorded)",
    )
    p.add_argument("--ceremony-key", action="store_true", help="generate the ceremony key")
    p.set_defaults(handler=cmd_keygen)

    p = cmds.add_parser(
        "coverage", help="exit 1 if any key is not in the latest backup", allow_abbrev=False
    )
    common(p)
    p.add_argument("--backup", type=Path, metavar="PATH", help="check against this backup")
    p.set_defaults(handler=cmd_coverage)

    p = cmds.add_parser(
        "backup", help="wrap every key under the wrapping key, signed manifest", allow_abbrev=False
    )
    common(p)
    p.add_argument(
        "--wrapping-key-fd",
        type=int,
        metavar="FD",
        help="read the wrapping key (64 hex digits) from this descriptor (else: no-echo prompt)",
    )
    p.add_argument(
        "--no-lock", action="store_true", help="leave the keys extractable after the backup"
    )
    p.set_defaults(handler=cmd_backup)

    p = cmds.add_parser("restore", help="restore a backup into an empty token", allow_abbrev=False)
    common(p)
    p.add_argument("path", type=Path, help="the backup directory")
    p.add_argument(
        "--wrapping-key-fd",
        type=int,
        metavar="FD",
        help="read the wrapping key (64 hex digits) from this descriptor (else: no-echo prompt)",
    )
    p.add_argument(
        "--expect-fingerprint",
        metavar="HEX",
        help="ceremony key fingerprint from the printed backup record (>= 16 hex digits)",
    )
    p.set_defaults(handler=cmd_restore)


# -- secrets -------------------------------------------------------------------------------


def _read_fd(fd: int) -> bytearray:
    return secret_input.read_fd(fd)


def _prompt(what: str) -> bytearray:
    return secret_input.prompt(
        what,
        no_terminal=f"No terminal to ask for the {what}.",
        hint="Run it on a terminal, or pass the secret through a descriptor (--pin-fd / "
        "--wrapping-key-fd).",
    )


def _pin(args: argparse.Namespace, token: str) -> bytearray:
    if args.pin_fd is not None:
        return _read_fd(args.pin_fd)
    return _prompt(f"User PIN of token '{token}'")


def _wrapping_key(args: argparse.Namespace) -> bytearray:
    raw = (
        _read_fd(args.wrapping_key_fd)
        if args.wrapping_key_fd is not None
        else _prompt("Backup wrapping key (64 hex digits)")
    )
    try:
        if len(raw) != 64 or any(c not in _HEX for c in raw):
            raise UsageError(
                "The wrapping key must be 64 hex digits (32 bytes).",
                hint="Check the source of the wrapping key.",
            )
        key = bytearray(32)
        for i in range(32):
            key[i] = int(raw[2 * i : 2 * i + 2], 16)
        return key
    finally:
        _wipe(raw)


def _wipe(buf: bytearray) -> None:
    for i in range(len(buf)):
        buf[i] = 0


# -- plumbing ------------------------------------------------------------------------------


@contextmanager
def _session(args: argparse.Namespace) -> Iterator[Any]:
    from appliance import demo
    from appliance.config import load_config
    from appliance.hsm.pkcs11_adapter import Token

    config = load_config(args.config)
    demo.activate(config)
    label = args.token or (None if args.serial else config.hsm.token)
    token = Token(config.hsm.module, label=label, serial=args.serial)
    args.backups = args.backups or (config.paths.workspace / "hsm-backups")
    pin = _pin(args, token.info.label)
    try:
        session = token.open(pin)
    finally:
        _wipe(pin)
    with session:
        yield session


def _new_pin(fd: int | None, what: str) -> bytearray:
    if fd is not None:
        return _read_fd(fd)
    first = _prompt(what)
    again = _prompt(f"{what} again")
    try:
        if first != again:
            _wipe(first)
            raise UsageError(f"The two {what}s differ.", hint="Start again.")
        return first
    finally:
        _wipe(again)


def cmd_init(args: argparse.Namespace) -> int:
    from appliance import demo
    from appliance.config import load_config
    from appliance.hsm import token_init

    config = load_config(args.config)
    demo.activate(config)
    if "softhsm" not in config.hsm.module.name.lower():
        raise UsageError(
            f"{config.hsm.module.name} is not SoftHSM: the appliance initialises only SoftHSM "
            "tokens.",
            hint="Initialise a vendor HSM with the vendor's tools, then set [hsm] token.",
        )
    label = args.label or config.hsm.token
    so_pin = _new_pin(args.so_pin_fd, "SO PIN")
    try:
        user_pin = _new_pin(args.pin_fd, "user PIN")
        try:
            serial = token_init.init_softhsm_token(
                config.hsm.module, label, so_pin=so_pin, user_pin=user_pin
            )
        finally:
            _wipe(user_pin)
    finally:
        _wipe(so_pin)
    print(f"Token '{label}' initialised, serial {serial}.")
    print("Next: appliance hsm keygen --ceremony-key")
    return 0


def cmd_inventory(args: argparse.Namespace) -> int:
    from appliance.hsm import inventory as inv

    today = dt.datetime.now(dt.UTC).date()
    with _session(args) as session:
        result = inv.inventory(session, args.backups)
    if args.json:
        print(
            json.dumps(
                {
                    "token": result.token,
                    "latest_backup": result.latest.path.name if result.latest else None,
                    "keys": [e.to_json(today) for e in result.entries],
                },
                indent=2,
            )
        )
        return 0
    latest = result.latest.path.name if result.latest else "none"
    print(f"Token '{result.token}'; latest backup: {latest}")
    for e in result.entries:
        k = e.key
        tags = f"tags {k.key_tag(257)}/{k.key_tag(256)}" if k.algorithm else "ceremony key"
        print(
            f"  {k.label:40} {k.spec.type_name:9} alg {k.algorithm or '-':>2} {tags:22} "
            f"id {k.id.hex()[:16]} {'covered' if e.covered else 'NOT COVERED'}"
        )
    return 0


def cmd_keygen(args: argparse.Namespace) -> int:
    from appliance.hsm import keygen

    with _session(args) as session:
        if args.ceremony_key:
            key = keygen.generate_ceremony_key(session)
            print(f"Ceremony key generated; fingerprint {key.fingerprint()}")
            return 0
        if args.algorithm is None or args.role is None:
            raise UsageError(
                "keygen needs --algorithm and --role (or --ceremony-key).",
                hint="Example: appliance hsm keygen --algorithm 13 --role ksk --zone example.",
            )
        made = keygen.generate_key(
            session,
            args.algorithm,
            role=args.role,
            zone=args.zone,
            label=args.label,
            bits=args.bits,
            allow_uncoverable=args.allow_uncoverable,
        )
    k = made.key
    print(
        f"Generated {k.label} ({k.spec.type_name}, algorithm {k.algorithm}), id {k.id.hex()}, "
        f"key tags {k.key_tag(257)} (257) / {k.key_tag(256)} (256)"
    )
    if made.override:
        print(f"OVERRIDE RECORDED: {made.override}")
    if not made.coverable:
        print("WARNING: no backup of this token can cover this key.")
    print("Back it up now: appliance hsm backup")
    return 0


def cmd_coverage(args: argparse.Namespace) -> int:
    from appliance.hsm import coverage

    with _session(args) as session:
        report = coverage.check(session, args.backups, backup_path=args.backup)
    for line in report.lines():
        print(line)
    print("OK: every key is covered." if report.ok else "FAIL: keys are not covered.")
    return 0 if report.ok else 1


def cmd_backup(args: argparse.Namespace) -> int:
    from appliance.hsm import backup

    key = _wrapping_key(args)
    try:
        with _session(args) as session:
            result = backup.create_backup(session, key, args.backups, lock=not args.no_lock)
    finally:
        _wipe(key)
    print(f"Backup written: {result.backup.path}")
    print(f"  covered: {len(result.covered_ids)} key(s); locked now: {len(result.locked)}")
    for n in result.not_covered:
        print(f"  NOT COVERED {n.label} ({n.type}): {n.reason}")
    return 0 if result.complete else 1


def cmd_restore(args: argparse.Namespace) -> int:
    from appliance.hsm import restore

    key = _wrapping_key(args)
    try:
        with _session(args) as session:
            result = restore.restore_backup(
                session, args.path, key, expected_fingerprint=args.expect_fingerprint
            )
    finally:
        _wipe(key)
    print(f"Restored {len(result.keys)} key(s) from {result.backup.path.name}")
    print(f"  ceremony key fingerprint: {result.ceremony_key_fingerprint}")
    for k in result.keys:
        print(f"  {k.label} ({k.type}) signs verifiably")
    return 0
