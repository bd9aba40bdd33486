"""The quorum model: denial of service against compromise for k-of-n sets and structures.

A k-of-n set is *denied* when fewer than k holders can come, and *abusable* when at least k
holders are compromised or collude. Each holder has their own probability of being absent
and of being compromised; the counts are Poisson-binomial (exact, `poisson_binomial`).

Structures combine sets:

- `AnyOf`: any one child is enough (one of F facilities; activate OR restore from backup).
  It is denied only when every child is denied, and abusable when any child is abusable.
- `AllOf`: every child is needed (restore needs the shareholders AND officers to activate
  the new HSM). It is denied when any child is denied, abusable only when all are.

Independence assumptions (stated in docs/quorum.md too):

1. Holders are independent of each other: one holder's absence or compromise says nothing
   about another's (no shared flight, no common employer who can coerce several).
2. Absence and compromise are two separate questions. P(denial) uses only the absence
   probabilities, P(compromise) only the compromise ones; nothing assumes how they combine.
   A colluder who also refuses to come should be counted in the absence probability.
3. Children of a structure are independent *given the people*: when the same person holds
   a credential in two sets (same holder name), the model conditions exactly on that
   person's state, enumerating the 2^s states of the s shared people.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from appliance.analysis import poisson_binomial as pb
from appliance.analysis.errors import ModelError

#: Shared people are enumerated exactly; beyond this the cost (2^s) is not worth waiting for.
MAX_SHARED_HOLDERS = 16


@dataclass(frozen=True)
class Holder:
    """One credential holder with their own probabilities."""

    name: str
    p_absent: float
    p_compromise: float

    def __post_init__(self) -> None:
        pb.check_probability(self.p_absent, f"p_absent of {self.name}")
        pb.check_probability(self.p_compromise, f"p_compromise of {self.name}")


@dataclass(frozen=True)
class QuorumSet:
    """k of these holders are needed (and enough) to use the credential."""

    name: str
    k: int
    holders: tuple[Holder, ...]

    def __post_init__(self) -> None:
        n = len(self.holders)
        what = f"set {self.name!r}" if self.name else "the set"
        if n == 0:
            raise ModelError(f"{what} has no holders", hint="Give n >= 1 holders.")
        if not 1 <= self.k <= n:
            raise ModelError(
                f"{what}: threshold k={self.k} must be between 1 and n={n}",
                hint="k is how many holders must come; it cannot exceed the number of holders.",
                set=self.name,
            )

    @property
    def n(self) -> int:
        return len(self.holders)

    @classmethod
    def uniform(cls, name: str, n: int, k: int, p_absent: float, p_compromise: float) -> QuorumSet:
        """A set whose n holders all have the same probabilities."""
        if n < 1:
            what = f"set {name!r}" if name else "the set"
            raise ModelError(f"{what}: n={n} must be at least 1", hint="Give n >= 1.")
        holders = tuple(Holder(f"{name}#{i}", p_absent, p_compromise) for i in range(1, n + 1))
        return cls(name, k, holders)


@dataclass(frozen=True)
class AnyOf:
    """Any one child suffices (alternative facilities, alternative paths)."""

    name: str
    children: tuple[Node, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.children:
            raise ModelError(f"{self.name!r} lists no alternatives", hint="Name at least one.")


@dataclass(frozen=True)
class AllOf:
    """Every child is needed together."""

    name: str
    children: tuple[Node, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.children:
            raise ModelError(f"{self.name!r} lists no parts", hint="Name at least one.")


Node = QuorumSet | AnyOf | AllOf


@dataclass(frozen=True)
class Risk:
    """The two numbers the model answers for one set or structure."""

    p_denial: float
    p_compromise: float


def set_risk(s: QuorumSet) -> Risk:
    """Exact P(denial) and P(compromise) of one set (holders independent)."""
    return Risk(
        p_denial=pb.at_least([h.p_absent for h in s.holders], s.n - s.k + 1),
        p_compromise=pb.at_least([h.p_compromise for h in s.holders], s.k),
    )


def iter_sets(node: Node) -> Iterator[QuorumSet]:
    """Every set occurrence under `node`, depth first (a set used twice appears twice)."""
    if isinstance(node, QuorumSet):
        yield node
    else:
        for child in node.children:
            yield from iter_sets(child)


def iter_nodes(node: Node) -> Iterator[Node]:
    yield node
    if not isinstance(node, QuorumSet):
        for child in node.children:
            yield from iter_nodes(child)


def shared_holders(node: Node) -> list[Holder]:
    """People who appear in more than one set occurrence: they make the children dependent."""
    seen: dict[str, Holder] = {}
    count: dict[str, int] = {}
    for s in iter_sets(node):
        for h in s.holders:
            first = seen.setdefault(h.name, h)
            if (first.p_absent, first.p_compromise) != (h.p_absent, h.p_compromise):
                raise ModelError(
                    f"holder {h.name!r} has different probabilities in different sets",
                    hint="One person has one probability of absence and of compromise: "
                    "give the same values wherever the name appears.",
                    holder=h.name,
                )
            count[h.name] = count.get(h.name, 0) + 1
    return [seen[name] for name, c in count.items() if c > 1]


def _success(node: Node, fixed: Mapping[str, bool], attribute: str, need_bad: bool) -> float:
    """P(node works) for availability (need_bad False) or P(node abusable) (need_bad True).

    `fixed` holds the conditioned state (True = the event happened) of shared holders.
    """
    if isinstance(node, QuorumSet):
        probs: list[float] = []
        for h in node.holders:
            p = getattr(h, attribute)
            if h.name in fixed:
                p = 1.0 if fixed[h.name] else 0.0
            probs.append(p)
        if need_bad:  # abusable: at least k holders compromised
            return pb.at_least(probs, node.k)
        # available: at least k present <=> fewer than n-k+1 absent
        return pb.fewer_than(probs, node.n - node.k + 1)
    parts = [_success(c, fixed, attribute, need_bad) for c in node.children]
    if isinstance(node, AnyOf):
        none = 1.0
        for p in parts:
            none *= 1.0 - p
        return 1.0 - none
    every = 1.0
    for p in parts:
        every *= p
    return every


def _conditioned(node: Node, attribute: str, need_bad: bool) -> float:
    shared = shared_holders(node)
    if len(shared) > MAX_SHARED_HOLDERS:
        raise ModelError(
            f"{len(shared)} people hold credentials in more than one set; the exact model "
            f"enumerates their states and stops at {MAX_SHARED_HOLDERS}",
            hint="Give distinct holders distinct names, or split the structure.",
        )
    if not shared:
        return _success(node, {}, attribute, need_bad)
    total = 0.0
    for states in itertools.product((False, True), repeat=len(shared)):
        weight = 1.0
        for h, happened in zip(shared, states, strict=True):
            p = getattr(h, attribute)
            weight *= p if happened else 1.0 - p
        if weight == 0.0:
            continue
        fixed = {h.name: happened for h, happened in zip(shared, states, strict=True)}
        total += weight * _success(node, fixed, attribute, need_bad)
    return total


def risk(node: Node) -> Risk:
    """P(denial): no path can be used. P(compromise): some path can be abused.

    "Any path succeeds" is 1 - p_denial; "any path can be abused" is p_compromise.
    """
    if isinstance(node, QuorumSet) and not shared_holders(node):
        return set_risk(node)
    available = _conditioned(node, "p_absent", need_bad=False)
    abusable = _conditioned(node, "p_compromise", need_bad=True)
    return Risk(p_denial=max(0.0, 1.0 - available), p_compromise=min(1.0, abusable))


@dataclass(frozen=True)
class NodeReport:
    name: str
    kind: str  # "k-of-n", "any", "all"
    detail: str
    risk: Risk


def describe(node: Node) -> str:
    if isinstance(node, QuorumSet):
        return f"{node.k}-of-{node.n}"
    word = "any of" if isinstance(node, AnyOf) else "all of"
    return f"{word} " + ", ".join(c.name for c in node.children)


def report(root: Node) -> list[NodeReport]:
    """One line per distinct node (root first), each evaluated on its own."""
    lines: list[NodeReport] = []
    done: set[str] = set()
    for node in iter_nodes(root):
        if node.name in done:
            continue
        done.add(node.name)
        kind = "k-of-n" if isinstance(node, QuorumSet) else type(node).__name__
        kind = {"AnyOf": "any", "AllOf": "all"}.get(kind, kind)
        lines.append(NodeReport(node.name, kind, describe(node), risk(node)))
    return lines


def uniform_holders(prefix: str, n: int, p_absent: float, p_compromise: float) -> list[Holder]:
    return [Holder(f"{prefix}{i}", p_absent, p_compromise) for i in range(1, n + 1)]


def holders_from_lists(
    prefix: str, absent: Sequence[float], compromise: Sequence[float]
) -> list[Holder]:
    """Holders from two equally long lists (per-holder probabilities)."""
    if len(absent) != len(compromise):
        raise ModelError(
            f"{len(absent)} absence probabilities but {len(compromise)} compromise probabilities",
            hint="Give one value (same for everyone) or exactly n values for each.",
        )
    return [
        Holder(f"{prefix}{i}", a, c)
        for i, (a, c) in enumerate(zip(absent, compromise, strict=True), start=1)
    ]
