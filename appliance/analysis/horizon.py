"""Credentials age: how likely a set silently falls below its threshold between retests.

Each holder's credential becomes unusable at a constant rate per year: the holder is lost
(death, departure: `holder_loss`) or the card fails (`card_failure`). Losses are assumed to
go unnoticed until the next retest, every R years; a retest finds them and the set is
re-issued with a quorum. The set is lost for good when, within one interval, more than n-k
credentials fail: then no quorum remains to re-issue it. With rate r_i = loss_i + failure_i,

    q_i(R) = 1 - exp(-r_i R)                          (holder i fails within one interval)
    P_interval(R) = P(at least n-k+1 of the q_i)      (Poisson-binomial, exact)
    P_horizon(R, H) = 1 - (1 - P_interval(R))^(H/R)   (H/R independent intervals)

The recommended retest interval is the longest whole number of months for which this and
every shorter interval keep P_horizon under the target.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from appliance.analysis import poisson_binomial as pb
from appliance.analysis.errors import ModelError


@dataclass(frozen=True)
class Ageing:
    """Annual rates for one holder's credential."""

    holder_loss: float
    card_failure: float

    def __post_init__(self) -> None:
        for what, value in (
            ("holder loss rate", self.holder_loss),
            ("card failure rate", self.card_failure),
        ):
            if not value >= 0.0 or math.isinf(value):
                raise ModelError(
                    f"{what} {value!r} per year must be a finite number >= 0",
                    hint="A rate of 0.05 means one in twenty per year.",
                )

    @property
    def rate(self) -> float:
        return self.holder_loss + self.card_failure


def _check(k: int, ageing: Sequence[Ageing], years: float) -> None:
    if not 1 <= k <= len(ageing):
        raise ModelError(
            f"threshold k={k} must be between 1 and n={len(ageing)}",
            hint="k cannot exceed the number of holders.",
        )
    if not years > 0.0 or math.isinf(years):
        raise ModelError(f"interval {years!r} years must be positive", hint="E.g. 2.")


def p_interval(k: int, ageing: Sequence[Ageing], retest_years: float) -> float:
    """P(more than n-k credentials fail within one retest interval)."""
    _check(k, ageing, retest_years)
    q = [-math.expm1(-a.rate * retest_years) for a in ageing]
    return pb.at_least(q, len(ageing) - k + 1)


def p_horizon(k: int, ageing: Sequence[Ageing], retest_years: float, horizon_years: float) -> float:
    """P(the set is lost at least once within the horizon), intervals independent."""
    _check(k, ageing, horizon_years)
    p = p_interval(k, ageing, retest_years)
    intervals = horizon_years / retest_years
    if p >= 1.0:
        return 1.0
    return -math.expm1(intervals * math.log1p(-p))


@dataclass(frozen=True)
class RetestAdvice:
    months: int | None  # None: even monthly retests do not meet the target
    p_horizon: float  # at the advised interval (or at one month when None)
    target: float
    horizon_years: float


def advise_retest(
    k: int, ageing: Sequence[Ageing], horizon_years: float, target: float, max_months: int = 120
) -> RetestAdvice:
    """The longest retest interval (whole months) keeping P_horizon <= target."""
    pb.check_probability(target, "target probability of losing the set")
    best: int | None = None
    best_p = p_horizon(k, ageing, 1 / 12, horizon_years)
    for months in range(1, max_months + 1):
        p = p_horizon(k, ageing, months / 12, horizon_years)
        if p > target:
            break
        best, best_p = months, p
    return RetestAdvice(best, best_p, target, horizon_years)
