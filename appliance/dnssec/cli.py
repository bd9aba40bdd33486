"""`appliance ksr inspect|check|sign`: KSRs of many zones in one run.

`check` and `sign` read the zones file (`--zones`), check every KSR first and sign nothing
unless all pass (or each violated requirement has a recorded `--override ID=reason`). SKRs
are written atomically beside each other in `--out`, named after their KSR.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appliance.errors import UsageError


def register(sub: Any) -> None:
    ksr = sub.add_parser("ksr", help="inspect, check and sign Key Signing Requests")
    cmds = ksr.add_subparsers(dest="ksr_command", metavar="ACTION")
    cmds.required = True

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("files", nargs="+", type=Path, metavar="KSR")
    common.add_argument(
        "--max-bytes", type=int, default=None, help="largest input accepted (default 32 MiB)"
    )
    common.add_argument(
        "--max-depth", type=int, default=None, help="deepest XML nesting accepted (default 12)"
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")

    p = cmds.add_parser("inspect", parents=[common], help="show what a KSR/SKR holds")
    p.set_defaults(handler=_inspect)

    checking = argparse.ArgumentParser(add_help=False)
    checking.add_argument("--zones", type=Path, required=True, help="the zones policy file")
    checking.add_argument(
        "--previous",
        type=Path,
        action="append",
        default=[],
        help="the zone's previous SKR (repeat for several zones)",
    )
    checking.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="ID=REASON",
        help="sign despite violations of requirement ID (recorded)",
    )
    checking.add_argument("--witness", default="", help="who witnessed the overrides")
    checking.add_argument("--now", default=None, help="check as of this ISO time (tests)")

    p = cmds.add_parser("check", parents=[common, checking], help="check KSRs against policy")
    p.set_defaults(handler=_check)

    p = cmds.add_parser("sign", parents=[common, checking], help="check, then sign KSRs")
    p.add_argument("--out", type=Path, required=True, help="folder for the SKRs")
    p.add_argument(
        "--software-ksk",
        type=Path,
        action="append",
        default=[],
        metavar="LABEL=PEM",
        help="labs and tests only: a KSK as a PKCS#8 PEM file instead of the HSM",
    )
    p.add_argument(
        "--pin-fd",
        type=int,
        default=None,
        help="read the HSM user PIN from this file descriptor (else "
        "$APPLIANCE_HSM_PIN, else a prompt without echo)",
    )
    p.set_defaults(handler=_sign)

    p = cmds.add_parser("publish", help="DNSKEY, key tag, DS and RFC 7958 trust anchor of a KSK")
    p.add_argument("--zone", required=True)
    p.add_argument("--label", required=True, help="the KSK's HSM label")
    p.add_argument("--ttl", type=int, default=172800, help="DNSKEY TTL (default 172800)")
    p.add_argument(
        "--trust-anchor",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the RFC 7958 trust anchor XML here",
    )
    p.add_argument("--valid-from", default=None, help="trust anchor validFrom (ISO time)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--software-ksk",
        type=Path,
        action="append",
        default=[],
        metavar="LABEL=PEM",
        help="labs and tests only: a PEM key instead",
    )
    p.add_argument("--pin-fd", type=int, default=None, help="HSM user PIN from this fd")
    p.set_defaults(handler=_publish)


def _limits(args: argparse.Namespace) -> Any:
    from appliance.dnssec.limits import InputLimits

    defaults = InputLimits()
    return InputLimits(
        max_bytes=args.max_bytes or defaults.max_bytes,
        max_depth=args.max_depth or defaults.max_depth,
    )


def _inspect(args: argparse.Namespace) -> int:
    from appliance.dnssec.formats import load_document
    from appliance.dnssec.identity import identify

    limits = _limits(args)
    out: list[dict[str, Any]] = []
    for path in args.files:
        doc, data = load_document(path, limits)
        ident = identify(path.name, data)
        keys = sorted({(k.key_tag, k.flags, k.algorithm) for b in doc.bundles for k in b.keys})
        out.append(
            {
                "file": str(path),
                "format": doc.format,
                "kind": doc.kind,
                "zone": doc.domain,
                "id": doc.id,
                "bundles": len(doc.bundles),
                "first": doc.bundles[0].inception.isoformat(),
                "last": doc.bundles[-1].inception.isoformat(),
                "keys": [{"tag": t, "flags": f, "algorithm": a} for t, f, a in keys],
                "identity": ident.as_dict(),
            }
        )
    _emit(args, out, _inspect_text)
    return 0


def _inspect_text(item: dict[str, Any]) -> str:
    keys = ", ".join(f"{k['tag']}/{k['flags']}/alg{k['algorithm']}" for k in item["keys"])
    ident = item["identity"]
    return (
        f"{item['file']}: {item['format']} {item['kind']} for {item['zone']}"
        f"{' id ' + item['id'] if item['id'] else ''}\n"
        f"  {item['bundles']} bundles, {item['first']} .. {item['last']}\n"
        f"  keys (tag/flags/alg): {keys}\n"
        f"  SHA-256 {ident['sha256']}\n  {ident['words']}"
    )


def _emit(args: argparse.Namespace, items: list[dict[str, Any]], text: Any) -> None:
    if args.json:
        print(json.dumps(items, indent=2, default=str))
    else:
        for item in items:
            print(text(item))


def _overrides(args: argparse.Namespace) -> list[Any]:
    from appliance.dnssec.policy import Override

    out = []
    for raw in args.override:
        ident, sep, reason = raw.partition("=")
        if not sep:
            raise UsageError(
                f"--override {raw!r} needs the form ID=reason.",
                hint="For example --override KSR-POLICY-SIG-HORIZON='late KSR'.",
            )
        out.append(Override(ident.strip(), reason.strip(), args.witness))
    return out


def _now(args: argparse.Namespace) -> datetime:
    if not args.now:
        return datetime.now(UTC)
    from appliance.dnssec.times import parse_datetime

    try:
        return parse_datetime(args.now)
    except ValueError:
        raise UsageError(f"--now {args.now!r} is not an ISO time.") from None


def _prepare(args: argparse.Namespace, ksk_infos: Any) -> list[tuple[Any, ...]]:
    """Load and check every KSR; returns (doc, data, entry, report) per file."""
    from appliance.dnssec.formats import load_document
    from appliance.dnssec.identity import identify
    from appliance.dnssec.policy import check_request
    from appliance.dnssec.zones import load_zones

    limits = _limits(args)
    zones = load_zones(args.zones)
    previous: dict[str, Any] = {}
    for path in args.previous:
        prev, _ = load_document(path, limits)
        if prev.domain in previous:
            raise UsageError(
                f"Two previous SKRs for {prev.domain}: {previous[prev.domain].source} and {path}.",
                hint="Give the one SKR that immediately precedes the KSR.",
            )
        previous[prev.domain] = prev
    overrides = _overrides(args)
    now = _now(args)
    out = []
    for path in args.files:
        doc, data = load_document(path, limits)
        entry = zones.get(doc.domain)
        if entry is None:
            from appliance.dnssec.errors import KSR_DOMAIN
            from appliance.dnssec.policy import CheckReport

            report = CheckReport(
                str(path), (KSR_DOMAIN(f"no policy for zone {doc.domain} in {args.zones}"),)
            )
        else:
            report = check_request(
                doc,
                entry.policy,
                ksks=ksk_infos(doc.domain, entry),
                now=now,
                previous=previous.get(doc.domain),
                overrides=overrides,
            )
        out.append((doc, data, entry, report, identify(path.name, data)))
    return out


def _report_item(doc: Any, report: Any, ident: Any) -> dict[str, Any]:
    item: dict[str, Any] = dict(report.as_dict())
    item.update({"zone": doc.domain, "format": doc.format, "identity": ident.as_dict()})
    return item


def _report_text(item: dict[str, Any]) -> str:
    lines = [
        f"{item['source']}: {item['zone']} ({item['format']}) {'OK' if item['ok'] else 'REFUSED'}",
        f"  SHA-256 {item['identity']['sha256']}",
        f"  {item['identity']['words']}",
    ]
    lines += [f"  - {v['requirement']}: {v['message']}" for v in item["violations"]]
    lines += [
        f"  override {o['requirement']}: {o['reason']} (witness {o['witness'] or '-'})"
        for o in item["overrides_used"]
    ]
    return "\n".join(lines)


def _check(args: argparse.Namespace) -> int:
    from appliance.dnssec.policy import KskInfo

    def infos(zone: str, entry: Any) -> list[KskInfo]:
        # Without the HSM, `check` takes the KSK's algorithm from the zones file
        # (ksk_algorithm, else the first allowed algorithm); `sign` checks the real key.
        alg = entry.policy.ksk_algorithm or entry.policy.algorithms[0]
        return [KskInfo(alg, 0, label) for label in entry.ksk_labels]

    results = _prepare(args, infos)
    items = [_report_item(d, r, i) for d, _, _, r, i in results]
    _emit(args, items, _report_text)
    return 0 if all(r.ok for _, _, _, r, _ in results) else 1


def _sign(args: argparse.Namespace) -> int:
    from appliance import atomic
    from appliance.dnssec.errors import PolicyViolations
    from appliance.dnssec.sign import Ksk, sign_request
    from appliance.dnssec.writer import render

    ksks = _load_ksks(args)
    _require_labels(args, ksks)

    def infos(zone: str, entry: Any) -> list[Any]:
        return [k.info() for k in _zone_ksks(entry, ksks)]

    results = _prepare(args, infos)
    blocking = [r for _, _, _, r, _ in results if not r.ok]
    items = [_report_item(d, r, i) for d, _, _, r, i in results]
    if blocking:
        _emit(args, items, _report_text)
        raise PolicyViolations(
            ", ".join(r.source for r in blocking),
            [v for r in blocking for v in r.blocking],
        )
    targets = [_target(args.out, d) for d, _, _, _, _ in results]
    clash = sorted({str(t) for t in targets if targets.count(t) > 1 or t.exists()})
    if clash:
        raise UsageError(
            f"SKR file(s) {', '.join(clash)} already exist or would be written twice.",
            hint="Nothing was signed. Choose an empty --out folder and distinct KSR names.",
        )
    now = datetime.now(UTC)
    outputs: list[tuple[Path, bytes]] = []
    for (doc, _, entry, _, _), item in zip(results, items, strict=True):
        signers: Sequence[Ksk] = _zone_ksks(entry, ksks)
        skr = sign_request(doc, entry.policy, signers, now=now)
        data = render(skr)
        target = _target(args.out, doc)
        outputs.append((target, data))
        item["skr"] = str(target)
    for target, data in outputs:  # every SKR made and verified before the first is written
        atomic.write_bytes(target, data)
    _emit(args, items, lambda i: _report_text(i) + f"\n  SKR written: {i['skr']}")
    return 0


def _publish(args: argparse.Namespace) -> int:
    from appliance import atomic, pgpwords
    from appliance.dnssec.errors import SigningError
    from appliance.dnssec.publish import publish, trust_anchor_xml
    from appliance.dnssec.times import parse_datetime

    ksks = _load_ksks(args, {args.label})
    if args.label not in ksks:
        raise SigningError(
            f"No KSK labelled {args.label!r}.",
            hint="List the token's keys with: appliance hsm inventory",
        )
    pub = publish(args.zone, ksks[args.label].signer)
    item: dict[str, Any] = {
        "zone": pub.zone,
        "label": args.label,
        "key_tag": pub.key_tag,
        "dnskey": pub.dnskey_text(args.ttl),
        "ds": pub.ds_text(),
        "ds_sha256_words": pgpwords.phrase(bytes.fromhex(pub.ds[0].split(" ", 3)[3])),
    }
    if args.trust_anchor:
        try:
            since = parse_datetime(args.valid_from) if args.valid_from else datetime.now(UTC)
        except ValueError:
            raise UsageError(f"--valid-from {args.valid_from!r} is not an ISO time.") from None
        xml = trust_anchor_xml(pub, anchor_id=f"{args.label}", valid_from=since)
        atomic.write_text(args.trust_anchor, xml)
        item["trust_anchor"] = str(args.trust_anchor)
    if args.json:
        print(json.dumps(item, indent=2))
    else:
        print(
            "\n".join(
                [
                    f"{pub.zone} KSK {args.label}, key tag {pub.key_tag}",
                    item["dnskey"],
                    *item["ds"],
                    f"DS SHA-256 words: {item['ds_sha256_words']}",
                ]
            )
        )
    return 0


def _zone_ksks(entry: Any, ksks: dict[str, Any]) -> list[Any]:
    """The zone's KSKs with their rollover roles, for the labels the token holds."""
    return list(entry.bind(lambda label: ksks[label].signer if label in ksks else None))


def _target(out: Path, doc: Any) -> Path:
    """The SKR's file name: the KSR's, with 'ksr' turned into 'skr' (else '.skr' added)."""
    name = Path(doc.source).name
    return out / (name.replace("ksr", "skr") if "ksr" in name else name + ".skr")


def _require_labels(args: argparse.Namespace, ksks: dict[str, Any]) -> None:
    """Every KSK label the zones file names must be available before anything is checked."""
    from appliance.dnssec.errors import SigningError
    from appliance.dnssec.zones import load_zones

    for zone, entry in load_zones(args.zones).items():
        if not entry.ksk_labels:
            continue
        missing = [label for label in entry.ksk_labels if label not in ksks]
        if missing:
            raise SigningError(
                f"KSK {', '.join(missing)} of zone {zone} is not available.",
                hint="Check the label in the zones file against the token's keys "
                "(appliance hsm inventory).",
                zone=zone,
            )


def _load_ksks(args: argparse.Namespace, wanted: set[str] | None = None) -> dict[str, Any]:
    from appliance.dnssec.sign import Ksk

    ksks: dict[str, Any] = {}
    for raw in args.software_ksk:
        label, sep, pem = str(raw).partition("=")
        if not sep:
            raise UsageError(f"--software-ksk {raw} needs the form LABEL=PEM-FILE.")
        pem_bytes = Path(pem).read_bytes()
        ksks[label] = Ksk(_software(pem_bytes), label)
    if not ksks:
        if wanted is None:
            from appliance.dnssec.zones import load_zones

            zones = load_zones(args.zones).values()
            wanted = {label for entry in zones for label in entry.ksk_labels}
        ksks.update(_hsm_ksks(args, wanted))
    return dict(ksks)


def _software(pem: bytes) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from appliance.dnssec.signer import SoftwareKeySigner

    key: Any = load_pem_private_key(pem, password=None)
    if isinstance(key, rsa.RSAPrivateKey):
        return SoftwareKeySigner(key, 8)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return SoftwareKeySigner(key, 13 if key.curve.key_size == 256 else 14)
    return SoftwareKeySigner(key, 15)


def read_pin(fd: int | None) -> bytearray:
    """The HSM user PIN: from a file descriptor, $APPLIANCE_HSM_PIN, or a no-echo prompt."""
    from appliance import secret_input

    if fd is not None:
        return secret_input.read_fd(fd, "the HSM PIN")
    env = os.environ.pop("APPLIANCE_HSM_PIN", None)  # read once, not left for children
    if env:
        return bytearray(env.encode())
    return secret_input.prompt(
        "HSM user PIN",
        no_terminal="No HSM PIN: no terminal to ask on.",
        hint="Pass --pin-fd N or set APPLIANCE_HSM_PIN.",
    )


def _hsm_ksks(args: argparse.Namespace, wanted: set[str]) -> dict[str, Any]:
    """The `wanted` keys the configured token holds, as signers (the port).

    The CLI is an edge: it opens the HSM session (module and token from the configuration,
    PIN from --pin-fd, $APPLIANCE_HSM_PIN or a prompt, never argv); the signing code only
    sees `DnssecKeySigner` objects.
    """
    from appliance.config import load_config
    from appliance.dnssec.sign import Ksk

    config = load_config(args.config)
    from appliance.hsm import keys as hsm_keys
    from appliance.hsm.pkcs11_adapter import Token

    pin = read_pin(args.pin_fd)
    try:
        session = Token(config.hsm.module, label=config.hsm.token).open(pin)
    finally:
        pin[:] = bytes(len(pin))
    _SESSIONS.append(session)  # kept open until the process ends: the keys are bound to it
    available = session.labels()
    return {
        label: Ksk(hsm_keys.dnssec_key(session, label), label)
        for label in sorted(wanted & available)
    }


_SESSIONS: list[Any] = []
