"""Typed action parameters, checked when a script is loaded (never during a ceremony).

Each action declares a schema: parameter name -> `Param`. The loader validates a step's
`params` table against it with the script's context (declared roles, earlier steps), so a
mistyped label or a reference to a later step fails at `appliance script check`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

#: Parameter kinds. `role` names a role (CO2, IW) or a family (CO); `family` only a family;
#: `step` an earlier step id (optionally running one of `actions`); `input` an input slot
#: name supplied per ceremony (answers file, --input or the TUI's file picker).
Kind = Literal[
    "str", "text", "int", "bool", "enum", "label", "role", "family", "roles", "step", "input"
]

LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ROLE = re.compile(r"^([A-Z]+)([1-9][0-9]*)?$")


@dataclass(frozen=True)
class ScriptContext:
    """What a parameter may refer to: the script's roles and the steps before this one."""

    roles: Mapping[str, int]
    earlier_steps: Mapping[str, str | None]  # step id -> action name (None: no action)


@dataclass(frozen=True)
class Param:
    kind: Kind
    doc: str
    required: bool = True
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    #: For `step`: the actions the referenced step must run (empty: any).
    actions: tuple[str, ...] = field(default=())

    def describe(self) -> str:
        """Short type text for documentation and error messages."""
        if self.kind == "enum":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "int":
            bounds = []
            if self.minimum is not None:
                bounds.append(f">= {self.minimum}")
            if self.maximum is not None:
                bounds.append(f"<= {self.maximum}")
            return "a whole number" + (" " + " and ".join(bounds) if bounds else "")
        return {
            "str": "a string",
            "text": "a text",
            "bool": "true or false",
            "label": "a label (letters, digits, . _ -, at most 64)",
            "role": "a role declared in [roles] (e.g. CO2) or a family (e.g. CO)",
            "family": "a role family declared in [roles] (e.g. CO)",
            "roles": "a list of roles declared in [roles]",
            "step": "the id of an earlier step"
            + (" running " + " or ".join(self.actions) if self.actions else ""),
            "input": "an input name (letters, digits, - _)",
        }.get(self.kind, self.kind)

    def check(self, value: Any, ctx: ScriptContext) -> str | None:
        """None when `value` is valid here, else what is wrong (for the loader's message)."""
        kind = self.kind
        if kind in ("str", "text"):
            if not isinstance(value, str) or (kind == "str" and not value.strip()):
                return f"must be {self.describe()}"
            return None
        if kind == "bool":
            return None if isinstance(value, bool) else "must be true or false"
        if kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return f"must be {self.describe()}"
            if self.minimum is not None and value < self.minimum:
                return f"must be {self.describe()}, not {value}"
            if self.maximum is not None and value > self.maximum:
                return f"must be {self.describe()}, not {value}"
            return None
        if kind == "enum":
            return None if value in self.choices else f"must be {self.describe()}"
        if kind == "label":
            ok = isinstance(value, str) and LABEL.match(value)
            return None if ok else f"must be {self.describe()}"
        if kind in ("role", "family"):
            return role_problem(value, ctx.roles, family_only=kind == "family")
        if kind == "roles":
            if not isinstance(value, list) or not value:
                return "must be a non-empty list of roles"
            for item in value:
                problem = role_problem(item, ctx.roles)
                if problem:
                    return problem
            return None
        if kind == "step":
            if not isinstance(value, str) or value not in ctx.earlier_steps:
                return f"must be {self.describe()}; no earlier step has the id {value!r}"
            action = ctx.earlier_steps[value]
            if self.actions and action not in self.actions:
                return (
                    f"must name a step running {' or '.join(self.actions)}; step {value!r} "
                    f"runs {action or 'no action'}"
                )
            return None
        if kind == "input":
            ok = isinstance(value, str) and re.match(r"^[a-z][a-z0-9_-]{0,31}$", value)
            return None if ok else f"must be {self.describe()}"
        return f"has an unknown kind {kind}"  # pragma: no cover - schemas are ours


def role_problem(value: Any, roles: Mapping[str, int], *, family_only: bool = False) -> str | None:
    """Why `value` is not a usable role reference under `roles`, or None."""
    if not isinstance(value, str):
        return f"{value!r} is not a role name"
    m = ROLE.match(value)
    if not m:
        return f"{value!r} is not a role (write e.g. CA, IW, CO2, RKSH)"
    family, index = m.group(1), m.group(2)
    if family not in roles:
        declared = ", ".join(sorted(roles)) or "none"
        return f"role {value!r} is not declared in [roles] (declared: {declared})"
    if index is not None:
        if family_only:
            return f"{value!r} must be a role family such as {family}, not one member"
        if int(index) > max(roles[family], 1):
            return (
                f"role {value!r} is beyond the {roles[family]} {family} that [roles] requires; "
                f"raise [roles] {family} to at least {index}"
            )
    return None


def family_of(role: str) -> str:
    m = ROLE.match(role)
    return m.group(1) if m else role


def expand_family(family: str, count: int) -> list[str]:
    """CO, 3 -> [CO1, CO2, CO3]; a family required once (CA, IW) is its own member."""
    return (
        [family]
        if count <= 1 and family in SINGLE
        else [f"{family}{i}" for i in range(1, count + 1)]
    )


#: Families whose single member goes by the bare name (CA, IW), not CA1.
SINGLE = frozenset({"CA", "IW"})


def check_params(
    schema: Mapping[str, Param], values: Mapping[str, Any], ctx: ScriptContext
) -> list[tuple[str | None, str]]:
    """Problems as (param name or None, message); empty when valid."""
    problems: list[tuple[str | None, str]] = []
    for name, value in values.items():
        spec = schema.get(name)
        if spec is None:
            continue  # unknown params are reported by the loader with a suggestion
        problem = spec.check(value, ctx)
        if problem:
            problems.append((name, f"parameter '{name}' {problem}"))
    for name, spec in schema.items():
        if spec.required and name not in values:
            problems.append(
                (None, f"parameter '{name}' is missing ({spec.describe()}: {spec.doc})")
            )
    return problems


def with_defaults(schema: Mapping[str, Param], values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters in schema order, defaults filled in."""
    return {
        name: values.get(name, spec.default)
        for name, spec in schema.items()
        if name in values or not spec.required
    }


def schema_lines(schema: Mapping[str, Param]) -> Sequence[str]:
    """One line per parameter, for `appliance script actions` and the README."""
    lines = []
    for name, spec in schema.items():
        opt = "" if spec.required else f" (optional, default {spec.default!r})"
        lines.append(f"{name}: {spec.describe()}{opt} - {spec.doc}")
    return lines
