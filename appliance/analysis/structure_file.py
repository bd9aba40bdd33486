"""Structure files: k-of-n sets and how they combine, written in TOML.

    title = "Root-zone-like KSK"
    root = "ksk"                 # optional when exactly one node is not used by another

    [defaults]                   # for every holder unless a set or holder says otherwise
    p_absent = 0.1
    p_compromise = 0.01
    holder_loss = 0.05           # per holder per year (optional: horizon model)
    card_failure = 0.02          # per card per year

    [horizon]                    # optional
    retest_years = 2
    years = 10
    target = 1e-4

    [sets.east]                  # n holders with the defaults ...
    k = 3
    n = 7
    [sets.recovery]              # ... or named holders with their own numbers
    k = 4
    holders = ["RKSH1", { name = "RKSH2", p_absent = 0.2 }, ...]

    [any.activate]               # any one of these suffices
    of = ["east", "west"]
    [all.restore]                # all of these are needed together
    of = ["recovery", "activate"]

The same holder name in two sets means the same person: the model conditions on them.
Errors name the file, the line and, for a misspelt key, the key you probably meant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance import tomlfile
from appliance.analysis.errors import InputFormatError, ModelError
from appliance.analysis.horizon import Ageing
from appliance.analysis.quorum import AllOf, AnyOf, Holder, Node, QuorumSet, shared_holders

_TOP = {"title", "root", "defaults", "horizon", "sets", "any", "all"}
_PROBS = {"p_absent", "p_compromise", "holder_loss", "card_failure"}
_SET_KEYS = {"k", "n", "holders"} | _PROBS
_HOLDER_KEYS = {"name"} | _PROBS
_HORIZON_KEYS = {"retest_years", "years", "target"}


@dataclass(frozen=True)
class HorizonSpec:
    retest_years: float
    years: float
    target: float


@dataclass(frozen=True)
class Structure:
    title: str
    root: Node
    sets: dict[str, QuorumSet]
    ageing: dict[str, tuple[Ageing, ...]]  # per set, per holder; empty when no rates given
    horizon: HorizonSpec | None
    source: str


class _Reader:
    def __init__(self, doc: tomlfile.TomlDocument) -> None:
        self.doc = doc

    def fail(self, key: tuple[str | int, ...], message: str, hint: str) -> InputFormatError:
        return InputFormatError(
            f"{self.doc.where(key)}: {message}",
            hint=hint,
            path=self.doc.path,
            line=self.doc.line(key),
        )

    def table(self, key: tuple[str | int, ...], value: Any, allowed: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(
                key,
                f"'{'.'.join(map(str, key))}' must be a table",
                "Write it as [section] with key = value lines.",
            )
        for name in value:
            if name not in allowed:
                guess = tomlfile.nearest(name, allowed)
                raise self.fail(
                    key + (name,),
                    f"unknown key {name!r}" + (f"; did you mean {guess!r}?" if guess else ""),
                    f"Allowed here: {', '.join(sorted(allowed))}.",
                )
        return value

    def named(self, key: tuple[str | int, ...], value: Any) -> dict[str, Any]:
        """A table of named sub-tables ([sets.NAME], [any.NAME]): any name is allowed."""
        if not isinstance(value, dict):
            raise self.fail(
                key,
                f"'{key[0]}' must hold tables like [{key[0]}.NAME]",
                f"Write [{key[0]}.NAME] sections.",
            )
        return value

    def number(self, key: tuple[str | int, ...], value: Any, *, probability: bool) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(
                key,
                f"{key[-1]} must be a number, not {value!r}",
                "Write decimals like 0.05 or 1e-4.",
            )
        v = float(value)
        if (probability and not 0.0 <= v <= 1.0) or not 0.0 <= v < float("inf"):
            what = "a probability between 0 and 1" if probability else "a number >= 0"
            raise self.fail(
                key,
                f"{key[-1]} = {value!r} must be {what}",
                "Probabilities are decimals: 0.05 means 5 %.",
            )
        return v

    def integer(self, key: tuple[str | int, ...], value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(
                key,
                f"{key[-1]} must be a whole number >= 1, not {value!r}",
                "k and n count holders.",
            )
        return value


def load(path: Path) -> Structure:
    try:
        doc = tomlfile.load(path)
    except tomlfile.TomlSyntaxError as exc:
        raise InputFormatError(
            str(exc), hint="Fix the TOML syntax.", path=str(path), line=exc.line
        ) from None
    except OSError as exc:
        raise InputFormatError(
            f"cannot read {path}: {exc.strerror}", hint="Check the path.", path=str(path)
        ) from None
    return parse(doc)


def loads(text: str, name: str = "<structure>") -> Structure:
    try:
        doc = tomlfile.loads(text, name)
    except tomlfile.TomlSyntaxError as exc:
        raise InputFormatError(
            str(exc), hint="Fix the TOML syntax.", path=name, line=exc.line
        ) from None
    return parse(doc)


def parse(doc: tomlfile.TomlDocument) -> Structure:
    r = _Reader(doc)
    top = r.table((), doc.data, _TOP)
    defaults_raw = r.table(("defaults",), top.get("defaults", {}), _PROBS)
    defaults = {
        k: r.number(("defaults", k), v, probability=k.startswith("p_"))
        for k, v in defaults_raw.items()
    }
    sets_raw = r.named(("sets",), top.get("sets", {}))
    if not sets_raw:
        raise r.fail((), "no [sets.NAME] table", "Define at least one k-of-n set.")
    sets: dict[str, QuorumSet] = {}
    ageing: dict[str, tuple[Ageing, ...]] = {}
    any_rates = "holder_loss" in defaults or "card_failure" in defaults
    for name, raw in sets_raw.items():
        qs, rates, has_rates = _parse_set(r, name, raw, defaults)
        sets[name] = qs
        ageing[name] = rates
        any_rates = any_rates or has_rates
    if not any_rates:
        ageing = {}
    groups: dict[str, tuple[str, list[str]]] = {}
    for kind in ("any", "all"):
        section = r.named((kind,), top.get(kind, {}))
        for name, raw in section.items():
            body = r.table((kind, name), raw, {"of"})
            of = body.get("of")
            if not isinstance(of, list) or not of or not all(isinstance(x, str) for x in of):
                raise r.fail(
                    (kind, name, "of"),
                    f"{kind}.{name}: 'of' must list node names",
                    'Write of = ["east", "west"].',
                )
            if name in sets or name in groups:
                raise r.fail(
                    (kind, name),
                    f"the name {name!r} is used twice",
                    "Sets and groups share one name space: rename one.",
                )
            groups[name] = (kind, of)
    known = set(sets) | set(groups)
    for name, (kind, of) in groups.items():
        for ref in of:
            if ref not in known:
                guess = tomlfile.nearest(ref, known)
                raise r.fail(
                    (kind, name, "of"),
                    f"{kind}.{name} names {ref!r}, which is not "
                    "defined" + (f"; did you mean {guess!r}?" if guess else ""),
                    "Define it as [sets.NAME], [any.NAME] or [all.NAME].",
                )
    built: dict[str, Node] = dict(sets)

    def build(name: str, trail: tuple[str, ...]) -> Node:
        if name in built:
            return built[name]
        if name in trail:
            kind = groups[name][0]
            raise r.fail(
                (kind, name),
                "the structure loops: " + " -> ".join((*trail, name)),
                "A group cannot contain itself.",
            )
        kind, of = groups[name]
        children = tuple(build(ref, (*trail, name)) for ref in of)
        node: Node = AnyOf(name, children) if kind == "any" else AllOf(name, children)
        built[name] = node
        return node

    for name in groups:  # every group, used or not: loops are errors wherever they are
        build(name, ())
    root_name = top.get("root")
    if root_name is None:
        used = {ref for _, of in groups.values() for ref in of}
        tops = [n for n in [*groups, *sets] if n not in used]
        if len(tops) != 1:
            raise r.fail(
                (),
                f"cannot tell which node is the answer: {tops} are unused",
                'Add root = "NAME" at the top of the file.',
            )
        root_name = tops[0]
    if not isinstance(root_name, str) or root_name not in known:
        guess = tomlfile.nearest(str(root_name), known)
        raise r.fail(
            ("root",),
            f"root {root_name!r} is not defined" + (f"; did you mean {guess!r}?" if guess else ""),
            "root names a set or a group.",
        )

    root = built[root_name]
    try:
        shared_holders(root)
    except ModelError as exc:
        raise r.fail(("sets",), exc.message, exc.hint) from None
    horizon = None
    if "horizon" in top:
        h = r.table(("horizon",), top["horizon"], _HORIZON_KEYS)
        missing = _HORIZON_KEYS - set(h)
        if missing:
            raise r.fail(
                ("horizon",),
                f"[horizon] lacks {', '.join(sorted(missing))}",
                "Give retest_years, years and target.",
            )
        horizon = HorizonSpec(
            retest_years=r.number(
                ("horizon", "retest_years"), h["retest_years"], probability=False
            ),
            years=r.number(("horizon", "years"), h["years"], probability=False),
            target=r.number(("horizon", "target"), h["target"], probability=True),
        )
        if not ageing:
            raise r.fail(
                ("horizon",),
                "[horizon] needs holder_loss or card_failure rates",
                "Add them under [defaults] or per set.",
            )
    title = top.get("title", Path(doc.path).stem)
    try:
        return Structure(str(title), root, sets, ageing, horizon, doc.path)
    except ModelError as exc:  # pragma: no cover - validated above
        raise r.fail((), exc.message, exc.hint) from None


def _parse_set(
    r: _Reader, name: str, raw: Any, defaults: dict[str, float]
) -> tuple[QuorumSet, tuple[Ageing, ...], bool]:
    key: tuple[str | int, ...] = ("sets", name)
    body = r.table(key, raw, _SET_KEYS)
    if "k" not in body:
        raise r.fail(key, f"set {name!r} has no threshold k", "Add k = NUMBER.")
    k = r.integer(key + ("k",), body["k"])
    base = dict(defaults)
    has_rates = False
    for p in _PROBS:
        if p in body:
            base[p] = r.number(key + (p,), body[p], probability=p.startswith("p_"))
            has_rates = has_rates or not p.startswith("p_")
    entries: list[dict[str, Any]] = []
    if "holders" in body:
        raw_holders = body["holders"]
        if not isinstance(raw_holders, list) or not raw_holders:
            raise r.fail(
                key + ("holders",),
                "holders must be a non-empty list",
                'Write holders = ["CO1", {name = "CO2", p_absent = 0.2}].',
            )
        for i, item in enumerate(raw_holders):
            hkey = key + ("holders", i)
            if isinstance(item, str):
                entries.append({"name": item})
            else:
                entries.append(r.table(hkey, item, _HOLDER_KEYS))
                if "name" not in item:
                    raise r.fail(
                        hkey,
                        f"holder {i + 1} of set {name!r} has no name",
                        'Write {name = "CO2", ...}.',
                    )
        if "n" in body and r.integer(key + ("n",), body["n"]) != len(entries):
            raise r.fail(
                key + ("n",),
                f"n = {body['n']} but {len(entries)} holders are listed",
                "Drop n or make it match the list.",
            )
    elif "n" in body:
        n = r.integer(key + ("n",), body["n"])
        entries = [{"name": f"{name}#{i}"} for i in range(1, n + 1)]
    else:
        raise r.fail(key, f"set {name!r} gives neither n nor holders", "Add n = NUMBER.")
    if k > len(entries):
        raise r.fail(
            key + ("k",),
            f"set {name!r}: k = {k} exceeds n = {len(entries)}",
            "k is how many of the n holders must come.",
        )
    holders: list[Holder] = []
    rates: list[Ageing] = []
    for i, e in enumerate(entries):
        values = dict(base)
        for p in _PROBS:
            if p in e:
                values[p] = r.number(key + ("holders", i, p), e[p], probability=p.startswith("p_"))
                has_rates = has_rates or not p.startswith("p_")
        for p in ("p_absent", "p_compromise"):
            if p not in values:
                raise r.fail(
                    key,
                    f"set {name!r}: no {p} for holder {e['name']!r}",
                    f"Give {p} under [defaults], in the set or for the holder.",
                )
        holders.append(Holder(str(e["name"]), values["p_absent"], values["p_compromise"]))
        rates.append(Ageing(values.get("holder_loss", 0.0), values.get("card_failure", 0.0)))
    return QuorumSet(name, k, tuple(holders)), tuple(rates), has_rates
