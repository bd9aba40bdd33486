"""A ceremony script in memory: metadata, roles, acts and steps (frozen, validated data)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from appliance.ceremony.params import SINGLE, expand_family, family_of


@dataclass(frozen=True)
class ActionCall:
    """`action = "hsm.activate"` plus its parameters, defaults filled in."""

    name: str
    params: Mapping[str, Any]


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    act: str
    #: Who performs the step (roles or families); the first confirms unless `confirm` says.
    roles: tuple[str, ...]
    #: The words the Ceremony Administrator reads aloud.
    say: str
    #: Checks the witness (IW) confirms aloud, one by one.
    witness: tuple[str, ...] = ()
    action: ActionCall | None = None
    #: Roles whose confirmation completes the step (default: the performers).
    confirm: tuple[str, ...] = ()
    #: Requires a typed confirmation naming the consequence (set by the action or the script).
    destructive: bool = False
    line: int | None = None

    @property
    def confirmers(self) -> tuple[str, ...]:
        return self.confirm or self.roles


@dataclass(frozen=True)
class Act:
    id: str
    title: str
    steps: tuple[Step, ...]
    say: str = ""


@dataclass(frozen=True)
class Script:
    id: str
    title: str
    version: str
    kind: str
    summary: str
    #: Role family -> minimum count present (CA = 1, CO = 3).
    roles: Mapping[str, int]
    acts: tuple[Act, ...]
    path: str = "<string>"
    #: SHA-256 of the script file's bytes, recorded in the journal.
    sha256: str = ""
    source: bytes = field(default=b"", repr=False)

    def steps(self) -> Iterator[Step]:
        for act in self.acts:
            yield from act.steps

    def step(self, step_id: str) -> Step:
        for s in self.steps():
            if s.id == step_id:
                return s
        raise KeyError(step_id)

    def required_seats(self) -> list[str]:
        """Every seat that must be filled: CA, IW, SSC1, SSC2, CO1..CO3 ..."""
        seats: list[str] = []
        for family, count in self.roles.items():
            if count > 0:
                seats.extend(expand_family(family, count))
        return seats

    def actions(self) -> list[tuple[Step, ActionCall]]:
        return [(s, s.action) for s in self.steps() if s.action is not None]


def seat_matches(seat: str, role: str) -> bool:
    """Does the person in `seat` (CO2) fill the step role `role` (CO2 or the family CO)?"""
    if seat == role:
        return True
    return family_of(seat) == role and role not in SINGLE
