"""The quorum model against closed forms, brute-force enumeration and a seeded Monte Carlo."""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Sequence

import pytest

from appliance.analysis import poisson_binomial as pb
from appliance.analysis import quorum
from appliance.analysis.errors import ModelError
from appliance.analysis.quorum import AllOf, AnyOf, Holder, QuorumSet


def binomial_at_least(n: int, p: float, k: int) -> float:
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))


def brute_at_least(ps: Sequence[float], k: int) -> float:
    """Sum over all 2^n outcomes: the definition, with no cleverness."""
    total = 0.0
    for outcome in itertools.product((0, 1), repeat=len(ps)):
        if sum(outcome) >= k:
            w = 1.0
            for hit, p in zip(outcome, ps, strict=True):
                w *= p if hit else 1 - p
            total += w
    return total


@pytest.mark.parametrize(
    ("n", "k", "pa", "pc"),
    [(7, 4, 0.1, 0.01), (7, 3, 0.2, 0.05), (5, 5, 0.3, 0.5), (12, 1, 0.4, 0.001)],
)
def test_equal_probabilities_match_the_binomial(n: int, k: int, pa: float, pc: float) -> None:
    r = quorum.set_risk(QuorumSet.uniform("s", n, k, pa, pc))
    assert r.p_denial == pytest.approx(binomial_at_least(n, pa, n - k + 1), rel=1e-12)
    assert r.p_compromise == pytest.approx(binomial_at_least(n, pc, k), rel=1e-12)


def test_one_of_n_and_n_of_n_closed_forms() -> None:
    a = [0.1, 0.25, 0.05, 0.4]
    c = [0.01, 0.2, 0.03, 0.07]
    hs = quorum.holders_from_lists("H", a, c)
    one = quorum.set_risk(QuorumSet("one", 1, tuple(hs)))
    assert one.p_denial == pytest.approx(math.prod(a), rel=1e-12)  # everyone away
    assert one.p_compromise == pytest.approx(1 - math.prod(1 - x for x in c), rel=1e-12)
    every = quorum.set_risk(QuorumSet("all", 4, tuple(hs)))
    assert every.p_denial == pytest.approx(1 - math.prod(1 - x for x in a), rel=1e-12)
    assert every.p_compromise == pytest.approx(math.prod(c), rel=1e-12)


def test_poisson_binomial_matches_brute_force_for_unequal_probabilities() -> None:
    rng = random.Random(11)
    for n in range(1, 11):
        ps = [rng.random() for _ in range(n)]
        dist = pb.pmf(ps)
        assert sum(dist) == pytest.approx(1.0, abs=1e-12)
        for k in range(0, n + 2):
            assert pb.at_least(ps, k) == pytest.approx(brute_at_least(ps, k), abs=1e-13)
            assert pb.fewer_than(ps, k) == pytest.approx(1 - brute_at_least(ps, k), abs=1e-13)


def test_set_risk_matches_brute_force_for_unequal_holders() -> None:
    rng = random.Random(5)
    for n in (3, 6, 10):
        a = [rng.uniform(0, 0.5) for _ in range(n)]
        c = [rng.uniform(0, 0.2) for _ in range(n)]
        for k in range(1, n + 1):
            r = quorum.set_risk(QuorumSet("s", k, tuple(quorum.holders_from_lists("H", a, c))))
            assert r.p_denial == pytest.approx(brute_at_least(a, n - k + 1), abs=1e-13)
            assert r.p_compromise == pytest.approx(brute_at_least(c, k), abs=1e-13)


def test_tiny_tails_keep_their_precision() -> None:
    """1 - (almost 1) would lose every digit; the small tail is summed directly."""
    r = quorum.set_risk(QuorumSet.uniform("s", 10, 9, 0.5, 1e-6))
    assert r.p_compromise == pytest.approx(binomial_at_least(10, 1e-6, 9), rel=1e-9)
    assert r.p_compromise < 1e-50


# --- structures ----------------------------------------------------------------------------


def _works(node: quorum.Node, bad: set[str], need_bad: bool) -> bool:
    """Evaluate a structure for one outcome: `bad` are the holders absent (or compromised)."""
    if isinstance(node, QuorumSet):
        hits = sum(1 for h in node.holders if h.name in bad)
        return hits >= node.k if need_bad else node.n - hits >= node.k
    parts = [_works(c, bad, need_bad) for c in node.children]
    return any(parts) if isinstance(node, AnyOf) else all(parts)


def brute_structure(node: quorum.Node) -> quorum.Risk:
    people = {h.name: h for s in quorum.iter_sets(node) for h in s.holders}
    names = sorted(people)
    out = []
    for attribute, need_bad in (("p_absent", False), ("p_compromise", True)):
        total = 0.0
        for outcome in itertools.product((False, True), repeat=len(names)):
            w = 1.0
            for name, hit in zip(names, outcome, strict=True):
                p = getattr(people[name], attribute)
                w *= p if hit else 1 - p
            bad = {n for n, hit in zip(names, outcome, strict=True) if hit}
            if _works(node, bad, need_bad):
                total += w
        out.append(total)
    return quorum.Risk(p_denial=1 - out[0], p_compromise=out[1])


def _facility(name: str, n: int, k: int, rng: random.Random, prefix: str = "") -> QuorumSet:
    hs = tuple(
        Holder(f"{prefix or name}{i}", rng.uniform(0.05, 0.5), rng.uniform(0.01, 0.3))
        for i in range(1, n + 1)
    )
    return QuorumSet(name, k, hs)


def test_any_of_facilities_closed_form() -> None:
    east = QuorumSet.uniform("east", 7, 3, 0.2, 0.01)
    west = QuorumSet.uniform("west", 7, 3, 0.2, 0.01)
    one = quorum.set_risk(east)
    both = quorum.risk(AnyOf("activate", (east, west)))
    assert both.p_denial == pytest.approx(one.p_denial**2, rel=1e-12)
    assert both.p_compromise == pytest.approx(1 - (1 - one.p_compromise) ** 2, rel=1e-12)
    together = quorum.risk(AllOf("both", (east, west)))
    assert together.p_denial == pytest.approx(1 - (1 - one.p_denial) ** 2, rel=1e-12)
    assert together.p_compromise == pytest.approx(one.p_compromise**2, rel=1e-12)


def test_structures_match_brute_force_with_unequal_and_shared_holders() -> None:
    rng = random.Random(7)
    east = _facility("east", 4, 2, rng)
    west = _facility("west", 3, 2, rng)
    # Two people hold a recovery share AND sit in the east facility: the paths are dependent.
    recovery_holders = (*east.holders[:2], *_facility("r", 3, 1, rng, "RKSH").holders)
    recovery = QuorumSet("recovery", 3, recovery_holders)
    activate = AnyOf("activate", (east, west))
    for root in (
        activate,
        AnyOf("ksk", (activate, recovery)),
        AllOf("restore", (recovery, activate)),
        AnyOf("dup", (east, east)),
    ):
        exact, brute = quorum.risk(root), brute_structure(root)
        assert exact.p_denial == pytest.approx(brute.p_denial, abs=1e-13), root.name
        assert exact.p_compromise == pytest.approx(brute.p_compromise, abs=1e-13), root.name
    assert [h.name for h in quorum.shared_holders(AnyOf("ksk", (activate, recovery)))] == [
        "east1",
        "east2",
    ]


def test_ignoring_a_shared_holder_would_be_wrong() -> None:
    """The conditioning matters: treating shared people as independent gives another number."""
    alice = Holder("alice", 0.5, 0.5)
    a = QuorumSet("a", 1, (alice,))
    b = QuorumSet("b", 1, (alice,))
    r = quorum.risk(AnyOf("either", (a, b)))
    assert r.p_denial == pytest.approx(0.5)  # one person: either path fails together
    assert r.p_compromise == pytest.approx(0.5)


def _monte_carlo(root: quorum.Node, trials: int, seed: int) -> tuple[float, float]:
    rng = random.Random(seed)
    people = {h.name: h for s in quorum.iter_sets(root) for h in s.holders}
    denied = abused = 0
    for _ in range(trials):
        absent = {n for n, h in people.items() if rng.random() < h.p_absent}
        bad = {n for n, h in people.items() if rng.random() < h.p_compromise}
        denied += not _works(root, absent, need_bad=False)
        abused += _works(root, bad, need_bad=True)
    return denied / trials, abused / trials


@pytest.mark.parametrize("seed", [1, 2])
def test_seeded_monte_carlo_agrees_within_its_error(seed: int) -> None:
    rng = random.Random(100 + seed)
    east = QuorumSet(
        "east",
        3,
        tuple(Holder(f"CO{i}", rng.uniform(0.3, 0.6), rng.uniform(0.1, 0.3)) for i in range(1, 6)),
    )
    west = QuorumSet(
        "west",
        2,
        tuple(Holder(f"CW{i}", rng.uniform(0.3, 0.6), rng.uniform(0.1, 0.3)) for i in range(1, 4)),
    )
    recovery = QuorumSet(
        "recovery", 2, (east.holders[0], *(Holder(f"R{i}", 0.4, 0.2) for i in range(1, 4)))
    )
    root = AnyOf("ksk", (AnyOf("activate", (east, west)), recovery))
    trials = 20_000
    mc_denial, mc_abuse = _monte_carlo(root, trials, seed)
    exact = quorum.risk(root)
    for mc, p in ((mc_denial, exact.p_denial), (mc_abuse, exact.p_compromise)):
        se = math.sqrt(p * (1 - p) / trials)
        assert 0.005 < p < 0.995  # the check means something only away from 0 and 1
        assert abs(mc - p) < 4.5 * se, (mc, p, se)


@pytest.mark.parametrize(
    ("build", "needle"),
    [
        (lambda: QuorumSet.uniform("s", 3, 4, 0.1, 0.1), "k=4 must be between 1 and n=3"),
        (lambda: QuorumSet.uniform("s", 3, 0, 0.1, 0.1), "k=0"),
        (lambda: Holder("h", 1.5, 0.1), "p_absent of h is 1.5"),
        (lambda: Holder("h", 0.1, float("nan")), "p_compromise of h"),
        (lambda: AnyOf("x", ()), "lists no alternatives"),
        (
            lambda: quorum.risk(
                AnyOf(
                    "x",
                    (
                        QuorumSet("a", 1, (Holder("p", 0.1, 0.1),)),
                        QuorumSet("b", 1, (Holder("p", 0.2, 0.1),)),
                    ),
                )
            ),
            "different probabilities",
        ),
    ],
)
def test_bad_parameters_are_named(build: Callable[[], object], needle: str) -> None:
    with pytest.raises(ModelError) as err:
        build()
    assert needle in str(err.value)
