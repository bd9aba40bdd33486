"""Credential ageing and the (n, k) search, against closed forms."""

from __future__ import annotations

import math

import pytest

from appliance.analysis import horizon as hz
from appliance.analysis import search
from appliance.analysis.errors import ModelError


def test_n_of_n_is_lost_by_any_single_failure() -> None:
    rates = [hz.Ageing(0.05, 0.02)] * 5
    r = 2.0
    expected = 1 - math.exp(-5 * 0.07 * r)  # the first of five exponential clocks
    assert hz.p_interval(5, rates, r) == pytest.approx(expected, rel=1e-12)


def test_one_of_n_needs_every_credential_to_fail() -> None:
    rates = [hz.Ageing(0.1, 0.0), hz.Ageing(0.0, 0.3), hz.Ageing(0.05, 0.05)]
    r = 1.5
    expected = math.prod(1 - math.exp(-a.rate * r) for a in rates)
    assert hz.p_interval(1, rates, r) == pytest.approx(expected, rel=1e-12)


def test_horizon_compounds_independent_intervals() -> None:
    rates = [hz.Ageing(0.05, 0.02)] * 7
    p1 = hz.p_interval(4, rates, 2.0)
    assert hz.p_horizon(4, rates, 2.0, 10.0) == pytest.approx(1 - (1 - p1) ** 5, rel=1e-12)


def test_advised_interval_is_the_longest_meeting_the_target() -> None:
    rates = [hz.Ageing(0.05, 0.02)] * 7
    advice = hz.advise_retest(4, rates, 10.0, 1e-4)
    assert advice.months is not None and advice.months >= 1
    assert hz.p_horizon(4, rates, advice.months / 12, 10.0) <= 1e-4
    assert hz.p_horizon(4, rates, (advice.months + 1) / 12, 10.0) > 1e-4
    # A 7-of-7 set cannot be saved by retesting: any single loss is fatal.
    assert hz.advise_retest(7, rates, 10.0, 1e-4).months is None


def test_rates_and_intervals_are_checked() -> None:
    with pytest.raises(ModelError, match="holder loss rate -0.1"):
        hz.Ageing(-0.1, 0.0)
    with pytest.raises(ModelError, match="interval 0"):
        hz.p_interval(1, [hz.Ageing(0.1, 0.1)], 0)


def test_search_orders_smallest_n_first_with_true_margins() -> None:
    cands = search.evaluate_all(12, 0.1, 0.01, 1e-3, 1e-6)
    assert len(cands) == sum(range(1, 13))
    ok = search.meeting(cands)
    assert ok, "some (n, k) up to 12 meets 1e-3 / 1e-6 at p = 0.1 / 0.01"
    assert [c.n for c in ok] == sorted(c.n for c in ok)
    first = ok[0]
    # Nothing smaller meets both targets, and the margins are target / value.
    assert not any(c.meets for c in cands if c.n < first.n)
    assert first.margin_denial == pytest.approx(1e-3 / first.p_denial)
    assert first.margin_compromise == pytest.approx(1e-6 / first.p_compromise)
    assert (first.n, first.k) == (8, 4)
    for c in cands:
        assert c.meets == (c.p_denial <= 1e-3 and c.p_compromise <= 1e-6)


def test_search_range_is_bounded() -> None:
    with pytest.raises(ModelError, match="1..64"):
        search.evaluate_all(100, 0.1, 0.01, 1e-3, 1e-6)


def test_seeded_simulation_of_credential_loss_agrees() -> None:
    """Draw failure times, retest every R years, count sets lost within the horizon."""
    import random

    rates = [
        hz.Ageing(0.1, 0.05),
        hz.Ageing(0.2, 0.05),
        hz.Ageing(0.1, 0.1),
        hz.Ageing(0.05, 0.05),
        hz.Ageing(0.15, 0.0),
    ]
    k, retest, years, trials = 3, 2.0, 6.0, 20_000
    rng = random.Random(9)
    lost = 0
    for _ in range(trials):
        for _interval in range(int(years / retest)):
            failed = sum(1 for a in rates if rng.expovariate(a.rate) < retest)
            if failed >= len(rates) - k + 1:
                lost += 1
                break
    p = hz.p_horizon(k, rates, retest, years)
    se = math.sqrt(p * (1 - p) / trials)
    assert 0.01 < p < 0.99
    assert abs(lost / trials - p) < 4.5 * se
