"""The actions registry: what a step may do, its typed parameters, and its implementation.

An action is declared once with its parameter schema (so every script can be checked even
before the layer that implements it exists) and bound to an implementation by the module
that adapts its layer (appliance/ceremony/actions/*.py). An action that is declared but not
bound makes the engine refuse to START a script that uses it, naming the missing layer;
it is never faked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from appliance.ceremony.params import Param

if TYPE_CHECKING:
    from appliance.ceremony.context import ActionContext


@dataclass(frozen=True)
class ActionResult:
    """What an action reports: a line for the room, journal-safe data, and whether it had
    already happened (detected from the journal or the world) and so was not repeated."""

    summary: str
    data: Mapping[str, Any] = field(default_factory=dict)
    already: bool = False
    #: Shown to the room only after the journal holds this result, and never journaled
    #: (an opened location hint: the opening is on record before anyone reads it).
    reveal: str = field(default="", repr=False)


ActionFn = Callable[["ActionContext", Mapping[str, Any]], ActionResult]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    summary: str
    params: Mapping[str, Param]
    #: The layer that implements it ("engine", "appliance.hsm", ...), for messages.
    layer: str
    #: Requires a typed confirmation naming `consequence` before it runs.
    destructive: bool = False
    consequence: str = ""
    #: Builds in-memory state (an HSM login): re-run after a resume, never skipped.
    session: bool = False
    #: Actions one of which must run in an earlier step of the same script.
    needs_earlier: tuple[str, ...] = ()


class Registry:
    def __init__(self) -> None:
        self._specs: dict[str, ActionSpec] = {}
        self._impls: dict[str, ActionFn] = {}
        self._waiting: dict[str, str] = {}

    def declare(self, spec: ActionSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"action {spec.name} declared twice")
        self._specs[spec.name] = spec
        self._waiting[spec.name] = f"waits for {spec.layer}"

    def bind(self, name: str, fn: ActionFn) -> None:
        if name not in self._specs:
            raise KeyError(f"bind: action {name} is not declared")
        self._impls[name] = fn
        self._waiting.pop(name, None)

    def unavailable(self, name: str, reason: str) -> None:
        """Record why `name` cannot be bound here (e.g. its layer failed to import)."""
        self._impls.pop(name, None)
        self._waiting[name] = reason

    def names(self) -> list[str]:
        return sorted(self._specs)

    def spec(self, name: str) -> ActionSpec | None:
        return self._specs.get(name)

    def implementation(self, name: str) -> ActionFn | None:
        return self._impls.get(name)

    def why_unavailable(self, name: str) -> str | None:
        return None if name in self._impls else self._waiting.get(name, "not declared")

    def status(self) -> dict[str, str]:
        """name -> "implemented" or the reason it is not, for reports and docs."""
        return {n: self.why_unavailable(n) or "implemented" for n in self.names()}

    def declare_all(self, specs: Iterable[ActionSpec]) -> None:
        for spec in specs:
            self.declare(spec)


def require(*modules: str) -> None:
    """Raise ImportError unless every module can be imported (found without importing it,
    so binding stays cheap: layers load when their action first runs)."""
    import importlib.util

    for name in modules:
        try:
            found = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            found = None
        if found is None:
            raise ImportError(f"no module named {name}", name=name)


def default_registry() -> Registry:
    """Every declared action, bound to every layer present on this appliance."""
    from appliance.ceremony.actions import bind_all
    from appliance.ceremony.actions.schemas import SPECS

    registry = Registry()
    registry.declare_all(SPECS)
    bind_all(registry)
    return registry
