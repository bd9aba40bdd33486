"""Search every (n, k) for sets that meet both targets, smallest n first.

For each n up to a limit and each k, the exact P(denial) and P(compromise) of a set whose
holders share the same probabilities. A pair meets the targets when both are at or below
them; its margins say how many times below each target it is (the larger, the safer).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from appliance.analysis import quorum
from appliance.analysis.errors import ModelError


@dataclass(frozen=True)
class Candidate:
    n: int
    k: int
    p_denial: float
    p_compromise: float
    margin_denial: float  # target / value (inf when the value is 0)
    margin_compromise: float

    @property
    def meets(self) -> bool:
        return self.margin_denial >= 1.0 and self.margin_compromise >= 1.0


def _margin(target: float, value: float) -> float:
    return math.inf if value <= 0.0 else target / value


def evaluate_all(
    max_n: int,
    p_absent: float,
    p_compromise: float,
    target_denial: float,
    target_compromise: float,
    min_n: int = 1,
) -> list[Candidate]:
    """Every (n, k) with min_n <= n <= max_n, ordered by n then k."""
    if not 1 <= min_n <= max_n <= 64:
        raise ModelError(
            f"search range n={min_n}..{max_n} is not within 1..64",
            hint="Use --max-n between 1 and 64.",
        )
    out: list[Candidate] = []
    for n in range(min_n, max_n + 1):
        for k in range(1, n + 1):
            r = quorum.set_risk(quorum.QuorumSet.uniform("s", n, k, p_absent, p_compromise))
            out.append(
                Candidate(
                    n,
                    k,
                    r.p_denial,
                    r.p_compromise,
                    _margin(target_denial, r.p_denial),
                    _margin(target_compromise, r.p_compromise),
                )
            )
    return out


def evaluate_holders(
    holders: list[quorum.Holder], target_denial: float, target_compromise: float
) -> list[Candidate]:
    """Every threshold k = 1..n for these very holders (probabilities may differ)."""
    n = len(holders)
    out: list[Candidate] = []
    for k in range(1, n + 1):
        r = quorum.set_risk(quorum.QuorumSet("s", k, tuple(holders)))
        out.append(
            Candidate(
                n,
                k,
                r.p_denial,
                r.p_compromise,
                _margin(target_denial, r.p_denial),
                _margin(target_compromise, r.p_compromise),
            )
        )
    return out


def meeting(candidates: list[Candidate]) -> list[Candidate]:
    """Those meeting both targets, smallest n first, then the best balanced margin."""
    ok = [c for c in candidates if c.meets]
    return sorted(ok, key=lambda c: (c.n, -min(c.margin_denial, c.margin_compromise), c.k))
