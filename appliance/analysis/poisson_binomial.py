"""The number of successes among independent trials with unequal probabilities.

With n holders each absent (or compromised) with their own probability, the count follows a
Poisson-binomial distribution. Its exact probability mass function comes from a dynamic
programme over the holders, O(n^2), stable for any n a ceremony will ever see.
"""

from __future__ import annotations

from collections.abc import Sequence

from appliance.analysis.errors import ModelError


def check_probability(p: float, what: str) -> float:
    """Return `p` as a float, or raise naming `what` when it is not within [0, 1]."""
    value = float(p)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ModelError(
            f"{what} is {p!r}: a probability must be between 0 and 1",
            hint="Write probabilities as decimals, for example 0.05 for 5 %.",
            what=what,
        )
    return value


def pmf(probabilities: Sequence[float]) -> list[float]:
    """P(exactly j successes) for j = 0..n, each trial succeeding with its own probability."""
    dist = [1.0]
    for i, raw in enumerate(probabilities):
        p = check_probability(raw, f"probability {i + 1}")
        nxt = [0.0] * (len(dist) + 1)
        for j, mass in enumerate(dist):
            nxt[j] += mass * (1.0 - p)
            nxt[j + 1] += mass * p
        dist = nxt
    return dist


def at_least(probabilities: Sequence[float], k: int) -> float:
    """P(at least k successes). Summed from the small tail for accuracy near 0 and 1."""
    dist = pmf(probabilities)
    n = len(dist) - 1
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    upper = sum(dist[k:])
    lower = sum(dist[:k])
    return min(1.0, upper) if upper <= lower else max(0.0, 1.0 - lower)


def fewer_than(probabilities: Sequence[float], k: int) -> float:
    """P(fewer than k successes), the complement of `at_least`, from its own small tail."""
    dist = pmf(probabilities)
    n = len(dist) - 1
    if k <= 0:
        return 0.0
    if k > n:
        return 1.0
    lower = sum(dist[:k])
    upper = sum(dist[k:])
    return min(1.0, lower) if lower <= upper else max(0.0, 1.0 - upper)
