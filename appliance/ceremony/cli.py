"""`appliance script check|print|actions`, `appliance run`, `appliance verify journal`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from appliance.errors import InternalError, UsageError


def _subgroup(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """Nested subcommands of `name` (e.g. `verify`), shared by the layers that add to it."""
    parser = sub.choices.get(name)
    if parser is None:
        parser = sub.add_parser(name, help=help_text)
        group = parser.add_subparsers(dest=f"{name}_what", metavar="WHAT")
        group.required = True
        return group
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    raise InternalError(f"command {name} exists without subcommands")  # pragma: no cover


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    script = sub.add_parser("script", help="check, print or list ceremony scripts")
    ss = script.add_subparsers(dest="script_what", metavar="WHAT")
    ss.required = True
    check = ss.add_parser("check", help="validate scripts (every problem with file and line)")
    check.add_argument("files", nargs="+", metavar="FILE")
    check.set_defaults(handler=cmd_check)
    pr = ss.add_parser("print", help="paper copy of a script with signature lines")
    pr.add_argument("file", metavar="FILE")
    fmt = pr.add_mutually_exclusive_group()
    fmt.add_argument("--pdf", metavar="OUT", help="write a PDF to OUT")
    fmt.add_argument("--markdown", action="store_true", help="Markdown on stdout (default)")
    pr.set_defaults(handler=cmd_print)
    acts = ss.add_parser("actions", help="the actions a script may use, and which run here")
    acts.set_defaults(handler=cmd_actions)

    run = sub.add_parser("run", help="run a ceremony script headless from an answers file")
    run.add_argument("script", metavar="SCRIPT")
    run.add_argument(
        "--workspace",
        required=True,
        metavar="DIR",
        help="ceremony workspace (an unfinished journal there is resumed)",
    )
    run.add_argument("--answers", metavar="FILE", help="answers file (see scripts/README.md)")
    run.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="an input file (overrides [inputs] in the answers)",
    )
    run.add_argument(
        "--signing-key",
        metavar="PEM",
        help="DEVELOPMENT ONLY: software P-256 key that signs the journal head",
    )
    run.add_argument(
        "--virtual-cards",
        metavar="DIR",
        help="demo/CI: virtual cards (vcard state files) the answers insert",
    )
    run.add_argument(
        "--ceremony-key",
        metavar="FINGERPRINT",
        help="SHA-256 fingerprint of the trusted ceremony key (else the IW "
        "confirms the one the roster names against the printed sheet)",
    )
    run.add_argument("--airgap-root", help=argparse.SUPPRESS)
    run.add_argument("--quiet", action="store_true", help="print only the outcome")
    run.set_defaults(handler=cmd_run)

    verify = _subgroup(sub, "verify", "verify records offline (journal, bundle)")
    vj = verify.add_parser("journal", help="check a journal's chain and signatures, summarise")
    vj.add_argument("file", metavar="FILE")
    vj.add_argument("--pubkey", metavar="FILE", help="the ceremony public key (PEM or DER)")
    vj.set_defaults(handler=cmd_verify_journal)


def cmd_check(args: argparse.Namespace) -> int:
    from appliance.ceremony.engine import unimplemented
    from appliance.ceremony.errors import ScriptInvalid
    from appliance.ceremony.loader import load_script
    from appliance.ceremony.registry import default_registry

    registry = default_registry()
    failed = 0
    for name in args.files:
        try:
            script = load_script(Path(name), registry)
        except ScriptInvalid as exc:
            failed += 1
            print(exc.message, file=sys.stderr)
            continue
        steps = sum(1 for _ in script.steps())
        missing = unimplemented(script, registry)
        line = f"{name}: ok ({script.id} {script.version}: {len(script.acts)} acts, {steps} steps)"
        if missing:
            names = sorted({m.action for m in missing})
            line += "; not runnable on this appliance yet: " + ", ".join(names)
        print(line)
    if failed:
        print(f"{failed} of {len(args.files)} script(s) have problems.", file=sys.stderr)
        return 1
    return 0


def cmd_print(args: argparse.Namespace) -> int:
    from appliance.ceremony import render
    from appliance.ceremony.loader import load_script
    from appliance.ceremony.registry import default_registry

    script = load_script(Path(args.file), default_registry())
    if args.pdf:
        render.pdf(script, Path(args.pdf))
        print(f"{args.pdf}: {script.title}, PDF written")
    else:
        sys.stdout.write(render.markdown(script))
    return 0


def cmd_actions(args: argparse.Namespace) -> int:
    from appliance.ceremony.params import schema_lines
    from appliance.ceremony.registry import default_registry

    registry = default_registry()
    for name, status in registry.status().items():
        spec = registry.spec(name)
        if spec is None:  # pragma: no cover
            continue
        print(f"{name} [{status}]: {spec.summary}")
        for line in schema_lines(spec.params):
            print(f"    {line}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from appliance.ceremony.answers import load_answers
    from appliance.ceremony.engine import Engine
    from appliance.ceremony.loader import load_script
    from appliance.ceremony.registry import default_registry
    from appliance.ceremony.services import build_services, headless_operator
    from appliance.config import load_config

    if not args.answers:
        raise UsageError(
            "`appliance run` is headless and needs --answers FILE.",
            hint="For a ceremony with people at the laptop, use the console UI: appliance tui",
        )
    inputs: dict[str, str] = {}
    for item in args.input:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--input {item!r}: write NAME=PATH, e.g. --input ksr=/media/ksr")
        inputs[name] = str(Path(path).resolve())
    config = load_config(args.config)
    registry = default_registry()
    script = load_script(Path(args.script), registry)
    answers = load_answers(Path(args.answers))
    services = build_services(
        config,
        signing_key=Path(args.signing_key) if args.signing_key else None,
        airgap_root=Path(args.airgap_root) if args.airgap_root else None,
        virtual_cards=Path(args.virtual_cards) if args.virtual_cards else None,
        ceremony_fingerprint=args.ceremony_key,
    )
    operator = headless_operator(answers, services, echo=None if args.quiet else print)
    engine = Engine(
        script,
        registry,
        operator,
        Path(args.workspace),
        config=config,
        services=services,
        inputs={**answers.inputs, **inputs},
    )
    outcome = engine.run()
    print(
        f"Ceremony {script.id} {outcome.status.upper()}"
        + (" (resumed)" if outcome.resumed else "")
        + f": journal {outcome.journal}, head {outcome.head}, "
        f"{outcome.exceptions} exception(s)."
    )
    return 0 if outcome.status == "ended" else 1


def cmd_verify_journal(args: argparse.Namespace) -> int:
    from appliance.ceremony import journal
    from appliance.ceremony.summary import summarize

    public = _load_public_key(Path(args.pubkey)) if args.pubkey else None
    verification = journal.verify(Path(args.file), public)
    for line in summarize(verification):
        print(line)
    if public is not None and verification.state.finished and verification.unsigned_tail:
        print("FAIL: the end of the ceremony is not signed by the ceremony key.", file=sys.stderr)
        return 1
    return 0


def _load_public_key(path: Path) -> bytes:
    from cryptography.hazmat.primitives import serialization

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"Cannot read public key {path}: {exc.strerror}") from None
    if raw.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(raw)
        except ValueError:
            raise UsageError(f"{path} is not a PEM public key.") from None
        return key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return raw
