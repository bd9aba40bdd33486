"""Absence probabilities estimated from attendance history.

For each holder: summoned m times, absent x times. With a Beta(a0, b0) prior the posterior of
the absence probability is Beta(a0 + x, b0 + m - x). Its mean is the probability that the
holder misses the *next* ceremony (the posterior predictive), which is what the quorum
model needs; the credible interval says how much ten years of data really pins it down.
The default prior is Jeffreys' Beta(1/2, 1/2); Beta(1, 1) (uniform) is the other choice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from appliance.analysis import beta
from appliance.analysis.errors import ModelError

PRIORS: dict[str, tuple[float, float]] = {"jeffreys": (0.5, 0.5), "uniform": (1.0, 1.0)}


@dataclass(frozen=True)
class Attendance:
    """One holder summoned to one ceremony, and whether they came."""

    ceremony: str
    holder: str
    present: bool
    date: str = ""
    set_name: str = ""


@dataclass(frozen=True)
class AbsenceEstimate:
    holder: str
    set_name: str
    summoned: int
    absent: int
    alpha: float
    beta: float
    mean: float
    lower: float
    upper: float
    level: float


def posterior(
    holder: str,
    summoned: int,
    absent: int,
    *,
    prior: str = "jeffreys",
    level: float = 0.9,
    set_name: str = "",
) -> AbsenceEstimate:
    """Beta posterior for one holder, with an equal-tailed credible interval at `level`."""
    if prior not in PRIORS:
        raise ModelError(f"unknown prior {prior!r}", hint=f"Use one of {sorted(PRIORS)}.")
    if not 0.0 < level < 1.0:
        raise ModelError(f"credible level {level} must be between 0 and 1", hint="E.g. 0.9.")
    if summoned < 0 or not 0 <= absent <= summoned:
        raise ModelError(
            f"{holder}: absent {absent} times out of {summoned} summons is impossible",
            hint="Check the attendance records.",
        )
    a0, b0 = PRIORS[prior]
    a, b = a0 + absent, b0 + summoned - absent
    tail = (1.0 - level) / 2.0
    return AbsenceEstimate(
        holder=holder,
        set_name=set_name,
        summoned=summoned,
        absent=absent,
        alpha=a,
        beta=b,
        mean=beta.mean(a, b),
        lower=beta.quantile(tail, a, b),
        upper=beta.quantile(1.0 - tail, a, b),
        level=level,
    )


def estimate(
    records: Iterable[Attendance], *, prior: str = "jeffreys", level: float = 0.9
) -> list[AbsenceEstimate]:
    """Per (set, holder) estimates, in order of first appearance.

    A holder summoned twice to the same ceremony counts once (present if present at all).
    """
    seen: dict[tuple[str, str], dict[str, bool]] = {}
    for r in records:
        per = seen.setdefault((r.set_name, r.holder), {})
        per[r.ceremony] = per.get(r.ceremony, False) or r.present
    out: list[AbsenceEstimate] = []
    for (set_name, holder), ceremonies in seen.items():
        m = len(ceremonies)
        x = sum(1 for came in ceremonies.values() if not came)
        out.append(posterior(holder, m, x, prior=prior, level=level, set_name=set_name))
    return out
