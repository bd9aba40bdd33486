"""Plain-text tables of the analysis, shared by the CLI and the TUI (no colours, no widgets)."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

from appliance.analysis import horizon as hz
from appliance.analysis import quorum
from appliance.analysis.estimates import AbsenceEstimate
from appliance.analysis.search import Candidate

ASSUMPTIONS = "\n".join(
    textwrap.wrap(
        "Assumptions: holders are independent of each other; absence and compromise are separate "
        "questions (a colluder who also stays away belongs in p_absent); the same holder name in "
        "two sets is the same person, conditioned on exactly.",
        width=92,
    )
)


def prob(p: float) -> str:
    """'1.765e-04 (1 in 5,666)': exact digits for the record, odds for people."""
    if p <= 0.0:
        return "0"
    odds = 1.0 / p
    if odds < 1.5:
        return f"{p:.3e}"
    tail = f"1 in {odds:,.0f}" if odds < 1e7 else f"1 in {odds:.1e}"
    return f"{p:.3e} ({tail})"


def margin(m: float) -> str:
    return "inf" if math.isinf(m) else f"x{m:.3g}"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*headers).rstrip(), fmt.format(*("-" * w for w in widths)).rstrip()]
    out.extend(fmt.format(*r).rstrip() for r in rows)
    return out


def holders(qs: quorum.QuorumSet) -> list[str]:
    rows = [[h.name, f"{h.p_absent:.4g}", f"{h.p_compromise:.4g}"] for h in qs.holders]
    return table(["holder", "p_absent", "p_compromise"], rows)


def single(qs: quorum.QuorumSet, r: quorum.Risk) -> list[str]:
    return [
        (f"Set {qs.name}: " if qs.name else "One set: ") + f"{qs.k}-of-{qs.n}",
        f"P(denial of service) = {prob(r.p_denial)}   fewer than {qs.k} of {qs.n} can come",
        f"P(compromise)        = {prob(r.p_compromise)}   {qs.k} or more of {qs.n} compromised "
        "or colluding",
    ]


def structure(title: str, root: quorum.Node) -> list[str]:
    reports = quorum.report(root)
    rows = [
        [r.name, r.kind, r.detail, prob(r.risk.p_denial), prob(r.risk.p_compromise)]
        for r in reports
    ]
    top = reports[0].risk
    out = [f"Structure: {title} (answer: {root.name})"]
    out += table(["node", "kind", "made of", "P(denial)", "P(compromise)"], rows)
    out += [
        "",
        f"any path succeeds:      P = {1.0 - top.p_denial:.12f}   "
        f"(P(denial) = {prob(top.p_denial)})",
        f"any path can be abused: P = {prob(top.p_compromise)}",
    ]
    shared = quorum.shared_holders(root)
    if shared:
        out.append(
            "shared holders (same person in several sets): " + ", ".join(h.name for h in shared)
        )
    return out


def ageing(
    sets: Sequence[tuple[quorum.QuorumSet, Sequence[hz.Ageing]]],
    retest_years: float,
    years: float,
    target: float,
) -> list[str]:
    rows: list[list[str]] = []
    for qs, rates in sets:
        p1 = hz.p_interval(qs.k, rates, retest_years)
        ph = hz.p_horizon(qs.k, rates, retest_years, years)
        advice = hz.advise_retest(qs.k, rates, years, target)
        best = (
            "none: even monthly retests miss it"
            if advice.months is None
            else (f"{advice.months} months ({prob(advice.p_horizon)})")
        )
        rate = sorted({f"{a.holder_loss:g}+{a.card_failure:g}" for a in rates})
        rows.append([qs.name or "-", f"{qs.k}-of-{qs.n}", "/".join(rate), prob(p1), prob(ph), best])
    head = (
        f"Credential ageing: retest every {retest_years:g} years, horizon {years:g} years, "
        f"target P(set lost) <= {target:g}"
    )
    return [
        head,
        *table(
            [
                "set",
                "k-of-n",
                "loss+failure /yr",
                "P(lost per interval)",
                f"P(lost in {years:g} y)",
                "longest retest interval",
            ],
            rows,
        ),
    ]


def search(
    candidates: Sequence[Candidate],
    ok: Sequence[Candidate],
    target_denial: float,
    target_compromise: float,
    limit: int = 15,
) -> list[str]:
    out = [
        f"Search: targets P(denial) <= {target_denial:g}, P(compromise) <= "
        f"{target_compromise:g}; {len(candidates)} pairs tried, {len(ok)} meet both."
    ]
    if not ok:
        best = min(
            candidates,
            key=lambda c: max(
                1 / c.margin_denial if c.margin_denial else 0,
                1 / c.margin_compromise if c.margin_compromise else 0,
            ),
        )
        out += textwrap.wrap(
            f"None meets both; the closest is {best.k}-of-{best.n} (P(denial) "
            f"{prob(best.p_denial)}, P(compromise) {prob(best.p_compromise)}): allow a larger "
            "n or revisit the targets.",
            width=92,
        )
        return out
    rows = [
        [
            f"{c.k}-of-{c.n}",
            prob(c.p_denial),
            margin(c.margin_denial),
            prob(c.p_compromise),
            margin(c.margin_compromise),
        ]
        for c in ok[:limit]
    ]
    out += table(["k-of-n", "P(denial)", "margin", "P(compromise)", "margin"], rows)
    if len(ok) > limit:
        out.append(f"... and {len(ok) - limit} more (larger n).")
    out.append("margin: how many times below the target (x2 = half the target).")
    return out


def estimates(rows: Sequence[AbsenceEstimate]) -> list[str]:
    if not rows:
        return ["No attendance records."]
    level = f"{rows[0].level * 100:g}%"
    body = [
        [
            e.set_name or "-",
            e.holder,
            str(e.summoned),
            str(e.absent),
            f"Beta({e.alpha:g}, {e.beta:g})",
            f"{e.mean:.4f}",
            f"{e.lower:.4f} - {e.upper:.4f}",
        ]
        for e in rows
    ]
    return table(
        ["set", "holder", "summoned", "absent", "posterior", "mean", f"{level} credible interval"],
        body,
    )
