"""The Beta distribution: posterior of an absence probability from attendance counts.

No SciPy on the appliance: the regularised incomplete beta function is evaluated with its
continued fraction (modified Lentz), and quantiles by bisection on it. Accuracy ~1e-12, far
beyond what a handful of ceremonies can tell.
"""

from __future__ import annotations

import math

from appliance.analysis.errors import ModelError

_EPS = 1e-15
_TINY = 1e-300


def _continued_fraction(a: float, b: float, x: float) -> float:
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > _TINY else _TINY
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            return h
    raise ModelError("the Beta function did not converge", hint="Report this as a bug.")


def cdf(x: float, a: float, b: float) -> float:
    """P(X <= x) for X ~ Beta(a, b): the regularised incomplete beta I_x(a, b)."""
    if a <= 0 or b <= 0:
        raise ModelError(f"Beta({a}, {b}) needs positive parameters", hint="Check the prior.")
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _continued_fraction(a, b, x) / a
    return 1.0 - front * _continued_fraction(b, a, 1.0 - x) / b


def quantile(q: float, a: float, b: float) -> float:
    """The x with P(X <= x) = q, by bisection (cdf is monotone)."""
    if not 0.0 <= q <= 1.0:
        raise ModelError(f"quantile level {q} must be within [0, 1]", hint="Use e.g. 0.05.")
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if cdf(mid, a, b) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-14:
            break
    return (lo + hi) / 2.0


def mean(a: float, b: float) -> float:
    return a / (a + b)
