"""`appliance quorum`, `appliance reaction-window`, `appliance coverage`: the analysis CLI.

Thin: parse the arguments, call the model, print the tables of `render`. Exit codes: 0 ok;
1 when a checked figure misses its target (reaction window below target, uncovered keys, no
(n, k) meeting the search targets) or an input is wrong.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from appliance.errors import UsageError


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number or a comma-separated list of numbers"
        ) from None


def _duration(text: str) -> timedelta:
    from appliance.analysis import durations

    value = durations.parse_iso8601(text) or durations.parse_knot_time(text)
    if value is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (7d, 36h, P7D, PT36H)")
    return value


def _time(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time like 2027-01-01T00:00Z") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    q = sub.add_parser(
        "quorum",
        help="quorum model: P(denial of service) against P(compromise) for k-of-n sets",
        description="Exact k-of-n risk (Poisson-binomial), structures, search, ageing, and "
        "estimates from attendance history. See docs/quorum.md.",
    )
    q.add_argument("--n", type=int, help="number of holders")
    q.add_argument("--k", type=int, help="threshold: holders needed")
    q.add_argument(
        "--p-absent",
        type=_floats,
        metavar="P[,P...]",
        help="probability a holder cannot come (one value, or one per holder)",
    )
    q.add_argument(
        "--p-compromise",
        type=_floats,
        metavar="P[,P...]",
        help="probability a holder is compromised or colludes (one, or per holder)",
    )
    q.add_argument("--structure", type=Path, metavar="FILE", help="TOML structure file")
    q.add_argument("--search", action="store_true", help="search every (n, k) up to --max-n")
    q.add_argument("--max-n", type=int, default=12, help="largest n searched (default 12)")
    q.add_argument("--target-denial", type=float, default=1e-3, help="default 1e-3")
    q.add_argument("--target-compromise", type=float, default=1e-6, help="default 1e-6")
    q.add_argument(
        "--from-journals",
        type=Path,
        metavar="DIR",
        help="estimate p_absent per holder from attendance records in DIR",
    )
    q.add_argument("--set", dest="set_name", help="only the records of this set")
    q.add_argument("--prior", choices=("jeffreys", "uniform"), default="jeffreys")
    q.add_argument("--level", type=float, default=0.9, help="credible level (default 0.9)")
    q.add_argument(
        "--estimate",
        choices=("mean", "upper"),
        default="mean",
        help="run the model on the posterior mean or the upper credible bound",
    )
    q.add_argument("--holder-loss", type=float, help="holders lost per holder per year")
    q.add_argument("--card-failure", type=float, help="cards failing per card per year")
    q.add_argument("--retest", type=float, default=2.0, help="retest interval, years")
    q.add_argument("--horizon", type=float, default=10.0, help="horizon, years (default 10)")
    q.add_argument(
        "--target-loss",
        type=float,
        default=1e-4,
        help="target P(a set is lost within the horizon) (default 1e-4)",
    )
    q.add_argument("--plot", type=Path, metavar="PNG", help="draw the frontier to this PNG")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(handler=quorum_command)

    r = sub.add_parser(
        "reaction-window", help="time between losing the signing keys and the zone going bogus"
    )
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--kasp", type=Path, metavar="FILE", help="OpenDNSSEC kasp.xml")
    src.add_argument("--knot-conf", type=Path, metavar="FILE", help="Knot DNS knot.conf")
    src.add_argument("--zone", type=Path, metavar="FILE", help="a signed zone file")
    r.add_argument("--policy", help="policy name (kasp.xml or knot.conf)")
    r.add_argument(
        "--zone-max-ttl",
        type=_duration,
        help="Knot: the zone's maximal TTL when rrsig-refresh is left to its default",
    )
    r.add_argument("--origin", help="zone origin when the file has no $ORIGIN")
    r.add_argument("--now", type=_time, help="evaluate a zone at this time (default: now)")
    r.add_argument(
        "--target",
        type=_duration,
        default=timedelta(days=7),
        help="warn below this window (default 7d)",
    )
    r.add_argument("--json", action="store_true", help="machine-readable output")
    r.set_defaults(handler=reaction_command)

    c = sub.add_parser("coverage", help="which keys no backup holds; how far ahead keys exist")
    c.add_argument(
        "--inventory",
        type=Path,
        required=True,
        metavar="FILE",
        help="key inventory (JSON, docs/quorum.md)",
    )
    c.add_argument(
        "--manifest",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="backup manifest (repeatable)",
    )
    c.add_argument(
        "--period",
        type=_duration,
        default=timedelta(days=365),
        help="how far ahead keys should exist (default 365d)",
    )
    c.add_argument("--now", type=_time, help="evaluate at this time (default: now)")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.set_defaults(handler=coverage_command)


def _emit(args: argparse.Namespace, lines: list[str], payload: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(payload, indent=2, default=str, allow_nan=False))
    else:
        print("\n".join(lines))


def _per_holder(values: list[float] | None, n: int, what: str) -> list[float]:
    if values is None:
        raise UsageError(
            f"--{what} is missing",
            hint=f"Give --{what} 0.1 (or one value per holder, comma-separated).",
        )
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise UsageError(
            f"--{what} lists {len(values)} values for n={n} holders",
            hint="Give one value for everyone or exactly n values.",
        )
    return values


def quorum_command(args: argparse.Namespace) -> int:
    from appliance.analysis import (
        attendance,
        estimates,
        horizon,
        quorum,
        render,
        search,
        structure_file,
    )

    lines: list[str] = []
    payload: dict[str, Any] = {}
    code = 0
    rates_given = args.holder_loss is not None or args.card_failure is not None

    if args.structure is not None:
        if args.plot is not None or args.search:
            raise UsageError(
                "--plot and --search work on one k-of-n set, not on a structure",
                hint="Drop --structure, or drop --plot/--search.",
            )
        st = structure_file.load(args.structure)
        lines += render.structure(st.title, st.root)
        payload["structure"] = [
            {"node": r.name, "kind": r.kind, "made_of": r.detail, **asdict(r.risk)}
            for r in quorum.report(st.root)
        ]
        if st.ageing and st.horizon is not None:
            h = st.horizon
            pairs = [(st.sets[name], st.ageing[name]) for name in st.sets]
            lines += ["", *render.ageing(pairs, h.retest_years, h.years, h.target)]
            payload["ageing"] = _ageing_payload(pairs, h.retest_years, h.years, h.target)
        lines += ["", render.ASSUMPTIONS]
        _emit(args, lines, payload)
        return 0

    pooled_absent: float | None = None
    absent: list[float] | None = args.p_absent
    names: list[str] | None = None
    if args.from_journals is not None:
        records = attendance.read_dir(args.from_journals)
        if args.set_name:
            records = [r for r in records if r.set_name == args.set_name]
            if not records:
                raise UsageError(
                    f"no attendance records for set {args.set_name!r}",
                    hint="Check --set against the records' set names.",
                )
        sets = sorted({r.set_name for r in records})
        if len(sets) > 1 and (args.k is not None or args.search):
            raise UsageError(
                f"the records hold several sets ({', '.join(s or '(none)' for s in sets)}); "
                "the model runs on one",
                hint="Choose one with --set NAME.",
            )
        est = estimates.estimate(records, prior=args.prior, level=args.level)
        lines += [
            f"Attendance from {args.from_journals} (prior {args.prior}):",
            *render.estimates(est),
            "",
        ]
        payload["estimates"] = [asdict(e) for e in est]
        absent = [e.upper if args.estimate == "upper" else e.mean for e in est]
        names = [e.holder for e in est]
        total_absent = sum(e.absent for e in est)
        total = sum(e.summoned for e in est)
        pooled = estimates.posterior("all", total, total_absent, prior=args.prior, level=args.level)
        pooled_absent = pooled.upper if args.estimate == "upper" else pooled.mean
        lines.append(
            f"pooled over all holders: {total_absent} absences in {total} summons, "
            f"p_absent {args.estimate} = {pooled_absent:.4f}"
        )
        lines.append("")

    if args.search:
        if args.p_compromise is None or len(args.p_compromise) != 1:
            raise UsageError(
                "--search needs one --p-compromise value", hint="E.g. --p-compromise 0.01."
            )
        pa = pooled_absent
        if pa is None:
            if absent is None or len(absent) != 1:
                raise UsageError(
                    "--search needs one --p-absent value (or --from-journals)",
                    hint="E.g. --p-absent 0.1.",
                )
            pa = absent[0]
        cands = search.evaluate_all(
            args.max_n, pa, args.p_compromise[0], args.target_denial, args.target_compromise
        )
        ok = search.meeting(cands)
        lines += [
            f"p_absent {pa:.4g}, p_compromise {args.p_compromise[0]:.4g} for everyone",
            *render.search(cands, ok, args.target_denial, args.target_compromise),
        ]
        payload["search"] = [asdict(c) | {"meets": c.meets} for c in ok]
        if args.plot is not None:
            from appliance.analysis import plot

            plot.draw(
                cands,
                args.target_denial,
                args.target_compromise,
                args.plot,
                f"p_absent {pa:.3g}, p_compromise {args.p_compromise[0]:.3g}",
            )
            lines.append(f"frontier drawn to {args.plot}")
        _emit(args, lines, _finite(payload))
        return 0 if ok else 1

    if args.k is None:
        if args.from_journals is not None:
            _emit(args, lines, payload)
            return 0
        raise UsageError(
            "nothing to compute",
            hint="Give --n and --k, or --structure FILE, or --search, or --from-journals DIR.",
        )
    n = args.n if args.n is not None else (len(absent) if absent and len(absent) > 1 else None)
    if names is not None:
        n = len(names) if args.n is None else args.n
        if n != len(names):
            raise UsageError(
                f"--n {args.n} but the records name {len(names)} holders",
                hint="Drop --n, or select the set with --set.",
            )
    if n is None:
        raise UsageError("--n is missing", hint="Give --n (number of holders).")
    pa_list = _per_holder(absent, n, "p-absent")
    pc_list = _per_holder(args.p_compromise, n, "p-compromise")
    hs = [
        quorum.Holder(names[i] if names else f"H{i + 1}", pa_list[i], pc_list[i]) for i in range(n)
    ]
    qs = quorum.QuorumSet(args.set_name or "", args.k, tuple(hs))
    risk = quorum.set_risk(qs)
    if len(set(pa_list)) > 1 or len(set(pc_list)) > 1:
        lines += [*render.holders(qs), ""]
    lines += render.single(qs, risk)
    payload["set"] = {"n": n, "k": args.k, **asdict(risk)}
    if rates_given:
        rates = [horizon.Ageing(args.holder_loss or 0.0, args.card_failure or 0.0)] * n
        lines += ["", *render.ageing([(qs, rates)], args.retest, args.horizon, args.target_loss)]
        payload["ageing"] = _ageing_payload(
            [(qs, rates)], args.retest, args.horizon, args.target_loss
        )
    if args.plot is not None:
        from appliance.analysis import plot

        cands = search.evaluate_holders(hs, args.target_denial, args.target_compromise)
        plot.draw(cands, args.target_denial, args.target_compromise, args.plot, f"n = {n}")
        lines.append(f"frontier over k drawn to {args.plot}")
    lines += ["", render.ASSUMPTIONS]
    _emit(args, lines, _finite(payload))
    return code


def _ageing_payload(pairs: Any, retest: float, years: float, target: float) -> list[Any]:
    from appliance.analysis import horizon

    out = []
    for qs, rates in pairs:
        advice = horizon.advise_retest(qs.k, rates, years, target)
        out.append(
            {
                "set": qs.name,
                "k": qs.k,
                "n": qs.n,
                "p_lost_per_interval": horizon.p_interval(qs.k, rates, retest),
                "p_lost_in_horizon": horizon.p_horizon(qs.k, rates, retest, years),
                "retest_years": retest,
                "horizon_years": years,
                "target": target,
                "advised_retest_months": advice.months,
            }
        )
    return out


def _finite(obj: Any) -> Any:
    """JSON has no infinity: margins of a zero probability become null."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def reaction_command(args: argparse.Namespace) -> int:
    from appliance.analysis import reaction

    if args.zone is not None:
        dl = reaction.zone_deadline(args.zone, origin=args.origin, now=args.now, target=args.target)
        _emit(
            args,
            dl.lines(),
            {
                "zone": dl.origin,
                "signatures": dl.signatures,
                "earliest_expiration": dl.earliest.isoformat(),
                "owner": dl.owner,
                "covered": dl.covered,
                "key_tag": dl.key_tag,
                "now": dl.now.isoformat(),
                "remaining_seconds": int(dl.remaining.total_seconds()),
                "ok": dl.ok,
            },
        )
        return 0 if dl.ok else 1
    if args.kasp is not None:
        policy = reaction.kasp_policy(args.kasp, args.policy)
    else:
        policy = reaction.knot_policy(args.knot_conf, args.policy, args.zone_max_ttl)
    w = reaction.window(policy, args.target)
    _emit(
        args,
        w.lines(),
        {
            "signer": policy.signer,
            "policy": policy.name,
            "source": policy.source,
            "nominal_seconds": int(w.nominal.total_seconds()),
            "worst_seconds": int(w.worst.total_seconds()),
            "best_seconds": int(w.best.total_seconds()),
            "limited_by": w.limited_by,
            "target_seconds": int(w.target.total_seconds()),
            "ok": w.ok,
        },
    )
    return 0 if w.ok else 1


def coverage_command(args: argparse.Namespace) -> int:
    from appliance.analysis import coverage

    keys = coverage.read_inventory(args.inventory)
    backups = [coverage.read_manifest(p) for p in args.manifest]
    rep = coverage.report(keys, backups, now=args.now, period=args.period)
    _emit(
        args,
        rep.lines(),
        {
            "keys": [
                {
                    "label": k.key.label,
                    "covered": k.covered,
                    "backups": list(k.backups),
                    "note": k.note,
                }
                for k in rep.keys
            ],
            "keys_until": rep.keys_until.isoformat() if rep.keys_until else None,
            "covered_until": rep.covered_until.isoformat() if rep.covered_until else None,
            "advice": rep.advice(),
        },
    )
    return 1 if rep.uncovered else 0
