"""Loading a ceremony script: TOML -> `model.Script`, every problem with file and line.

The loader collects all problems rather than stopping at the first, so one run of
`appliance script check` shows the author everything to fix.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from appliance import tomlfile
from appliance.ceremony.errors import ScriptInvalid, ScriptProblem
from appliance.ceremony.model import Act, ActionCall, Script, Step
from appliance.ceremony.params import ScriptContext, check_params, role_problem, with_defaults
from appliance.ceremony.registry import Registry

TOP_KEYS = ("ceremony", "roles", "act")
CEREMONY_KEYS = ("id", "title", "version", "kind", "summary")
ACT_KEYS = ("id", "title", "say", "step")
STEP_KEYS = ("id", "title", "roles", "say", "witness", "action", "params", "confirm", "destructive")
KINDS = (
    "hsm-init",
    "key-generation",
    "ksr-signing",
    "backup",
    "restore",
    "enrolment",
    "credential-retest",
    "holder-replacement",
    "credential-rekey",
    "location-hint",
    "exercise",
)
ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,47}$")
FAMILY = re.compile(r"^[A-Z]{2,8}$")

Key = tuple[str | int, ...]


class _Collector:
    def __init__(self, doc: tomlfile.TomlDocument) -> None:
        self.doc = doc
        self.problems: list[ScriptProblem] = []

    def add(self, key: Key, message: str) -> None:
        self.problems.append(ScriptProblem(self.doc.path, self.doc.line(key), message))

    def unknown_keys(self, table: Mapping[str, Any], key: Key, valid: tuple[str, ...]) -> None:
        where = "[" + ".".join(str(k) for k in key if isinstance(k, str)) + "]" if key else "top"
        for name in table:
            if name not in valid:
                guess = tomlfile.nearest(name, valid)
                hint = f"did you mean '{guess}'?" if guess else "valid: " + ", ".join(valid)
                self.add(key + (name,), f"unknown key '{name}' in {where}; {hint}")

    def text(self, table: Mapping[str, Any], key: Key, name: str, *, required: bool = True) -> str:
        value = table.get(name)
        if value is None:
            if required:
                self.add(key, f"'{name}' is missing")
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.add(key + (name,), f"'{name}' must be a non-empty string")
            return ""
        return value

    def str_list(self, table: Mapping[str, Any], key: Key, name: str) -> tuple[str, ...]:
        value = table.get(name, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(key + (name,), f"'{name}' must be a list of strings")
            return ()
        return tuple(value)


def load_script(path: Path, registry: Registry) -> Script:
    """Load and validate `path`; raise ScriptInvalid listing every problem."""
    try:
        source = Path(path).read_bytes()
    except OSError as exc:
        raise ScriptInvalid(
            [ScriptProblem(str(path), None, f"cannot read: {exc.strerror}")]
        ) from None
    return loads_script(source, str(path), registry)


def loads_script(source: bytes, path: str, registry: Registry) -> Script:
    try:
        text = source.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = source[: exc.start].count(b"\n") + 1
        raise ScriptInvalid([ScriptProblem(path, line, "not valid UTF-8")]) from None
    try:
        doc = tomlfile.loads(text, path)
    except tomlfile.TomlSyntaxError as exc:
        raise ScriptInvalid([ScriptProblem(path, exc.line, exc.detail)]) from None
    c = _Collector(doc)
    data = doc.data
    c.unknown_keys(data, (), TOP_KEYS)

    meta = data.get("ceremony")
    if not isinstance(meta, dict):
        c.add((), "the [ceremony] table (id, title, version, kind) is missing")
        meta = {}
    else:
        c.unknown_keys(meta, ("ceremony",), CEREMONY_KEYS)
    script_id = c.text(meta, ("ceremony",), "id")
    if script_id and not ID.match(script_id):
        c.add(("ceremony", "id"), "'id' must be lower-case letters, digits and '-'")
    title = c.text(meta, ("ceremony",), "title")
    version = c.text(meta, ("ceremony",), "version")
    kind = c.text(meta, ("ceremony",), "kind")
    if kind and kind not in KINDS:
        guess = tomlfile.nearest(kind, KINDS)
        c.add(
            ("ceremony", "kind"),
            f"unknown kind '{kind}'"
            + (f"; did you mean '{guess}'?" if guess else "; valid: " + ", ".join(KINDS)),
        )
    summary = c.text(meta, ("ceremony",), "summary", required=False)

    roles = _roles(c, data.get("roles"))

    acts_raw = data.get("act")
    if not isinstance(acts_raw, list) or not acts_raw:
        c.add((), "the script has no acts: add [[act]] tables with [[act.step]] steps")
        acts_raw = []
    seen_steps: dict[str, int | None] = {}
    seen_acts: dict[str, int | None] = {}
    earlier: dict[str, str | None] = {}
    earlier_actions: set[str] = set()
    acts: list[Act] = []
    for ai, act in enumerate(acts_raw):
        akey: Key = ("act", ai)
        if not isinstance(act, dict):
            c.add(akey, "each act must be a table")
            continue
        c.unknown_keys(act, akey, ACT_KEYS)
        act_id = c.text(act, akey, "id")
        if act_id:
            _unique(c, seen_acts, act_id, akey + ("id",), "act")
        act_title = c.text(act, akey, "title")
        steps_raw = act.get("step")
        if not isinstance(steps_raw, list) or not steps_raw:
            c.add(akey, f"act '{act_id}' has no steps: add [[act.step]] tables")
            steps_raw = []
        steps: list[Step] = []
        for si, raw in enumerate(steps_raw):
            skey: Key = akey + ("step", si)
            if not isinstance(raw, dict):
                c.add(skey, "each step must be a table")
                continue
            step = _step(c, raw, skey, act_id, roles, registry, earlier, earlier_actions)
            if step.id:
                _unique(c, seen_steps, step.id, skey + ("id",), "step")
                earlier[step.id] = step.action.name if step.action else None
            if step.action:
                earlier_actions.add(step.action.name)
            steps.append(step)
        acts.append(Act(act_id, act_title, tuple(steps), say=str(act.get("say", ""))))

    if c.problems:
        raise ScriptInvalid(c.problems, path=path)
    return Script(
        id=script_id,
        title=title,
        version=version,
        kind=kind,
        summary=summary,
        roles=roles,
        acts=tuple(acts),
        path=path,
        sha256=hashlib.sha256(source).hexdigest(),
        source=source,
    )


def _unique(c: _Collector, seen: dict[str, int | None], value: str, key: Key, what: str) -> None:
    if value in seen:
        first = seen[value]
        at = f" (first at line {first})" if first else ""
        c.add(key, f"duplicate {what} id '{value}'{at}: ids must be unique")
    else:
        seen[value] = c.doc.line(key)


def _roles(c: _Collector, raw: Any) -> dict[str, int]:
    if not isinstance(raw, dict):
        c.add((), "the [roles] table is missing (e.g. CA = 1, IW = 1, CO = 3)")
        return {}
    roles: dict[str, int] = {}
    for family, count in raw.items():
        key: Key = ("roles", family)
        if not FAMILY.match(family):
            c.add(key, f"role family '{family}' must be 2-8 capital letters (CA, IW, CO, RKSH)")
            continue
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= 16:
            c.add(key, f"[roles] {family} must be a whole number from 0 to 16 (minimum present)")
            continue
        roles[family] = count
    for needed in ("CA", "IW"):
        if roles.get(needed, 0) < 1:
            c.add(
                ("roles",),
                f"[roles] must require {needed} = 1: every ceremony has a "
                "Ceremony Administrator and an Internal Witness",
            )
    return roles


def _step(
    c: _Collector,
    raw: Mapping[str, Any],
    key: Key,
    act_id: str,
    roles: Mapping[str, int],
    registry: Registry,
    earlier: Mapping[str, str | None],
    earlier_actions: set[str],
) -> Step:
    c.unknown_keys(raw, key, STEP_KEYS)
    step_id = c.text(raw, key, "id")
    if step_id and not ID.match(step_id):
        c.add(key + ("id",), f"step id '{step_id}' must be lower-case letters, digits and '-'")
    title = c.text(raw, key, "title")
    say = c.text(raw, key, "say")
    witness = c.str_list(raw, key, "witness")
    step_roles = c.str_list(raw, key, "roles")
    if not step_roles and "roles" not in raw:
        c.add(key, f"step '{step_id}' names no roles: add roles = [\"CA\"] (who performs it)")
    for role in step_roles:
        problem = role_problem(role, roles)
        if problem:
            c.add(key + ("roles",), f"step '{step_id}': {problem}")
    confirm = c.str_list(raw, key, "confirm")
    for role in confirm:
        problem = role_problem(role, roles)
        if problem:
            c.add(key + ("confirm",), f"step '{step_id}': {problem}")
    destructive = raw.get("destructive", False)
    if not isinstance(destructive, bool):
        c.add(key + ("destructive",), "'destructive' must be true or false")
        destructive = False

    action: ActionCall | None = None
    name = raw.get("action")
    params = raw.get("params", {})
    if not isinstance(params, dict):
        c.add(key + ("params",), "'params' must be a table")
        params = {}
    if name is None:
        if params:
            c.add(key + ("params",), f"step '{step_id}' has params but no action")
    elif not isinstance(name, str):
        c.add(key + ("action",), "'action' must be a string such as \"hsm.activate\"")
    else:
        spec = registry.spec(name)
        if spec is None:
            guess = tomlfile.nearest(name, registry.names())
            c.add(
                key + ("action",),
                f"unknown action '{name}'"
                + (f"; did you mean '{guess}'?" if guess else "; see scripts/README.md"),
            )
        else:
            ctx = ScriptContext(roles, earlier)
            for pname in params:
                if pname not in spec.params:
                    guess = tomlfile.nearest(pname, spec.params)
                    hint = (
                        f"did you mean '{guess}'?"
                        if guess
                        else (
                            "valid: " + ", ".join(spec.params) if spec.params else "it takes none"
                        )
                    )
                    c.add(
                        key + ("params", pname), f"unknown parameter '{pname}' for {name}; {hint}"
                    )
            for pname, message in check_params(spec.params, params, ctx):
                where = key + ("params", pname) if pname else key + ("action",)
                c.add(where, f"{name}: {message}")
            if spec.needs_earlier and not earlier_actions.intersection(spec.needs_earlier):
                c.add(
                    key + ("action",),
                    f"{name} needs an earlier step running " + " or ".join(spec.needs_earlier),
                )
            destructive = destructive or spec.destructive
            action = ActionCall(name, with_defaults(spec.params, params))
    return Step(
        id=step_id,
        title=title,
        act=act_id,
        roles=step_roles,
        say=say,
        witness=witness,
        action=action,
        confirm=confirm,
        destructive=destructive,
        line=c.doc.line(key),
    )
