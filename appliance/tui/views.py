"""Text for the read-only views: the script, the journal, key help, quorum analysis, reports.

Plain lines (no widgets), so they are easy to test and the same on every terminal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.errors import ApplianceError

if TYPE_CHECKING:
    from textual.screen import Screen

    from appliance.ceremony.journal import Entry
    from appliance.doctor import CheckResult
    from appliance.tui.app import World

#: Assumed per-holder probabilities for the quorum view (stated on the page).
P_ABSENT = 0.05
P_COMPROMISE = 0.01


def script_lines(world: World, path: Path) -> list[str]:
    from appliance.ceremony.loader import load_script
    from appliance.ceremony.registry import default_registry

    try:
        script = load_script(path, default_registry())
    except ApplianceError as exc:
        return [exc.operator_text()]
    out = [f"{script.title} ({script.id} {script.version}), SHA-256 {script.sha256}", ""]
    for act in script.acts:
        out.append(act.title.upper())
        for step in act.steps:
            roles = ", ".join(step.roles) or "CA"
            action = f"  [action {step.action.name}]" if step.action else ""
            out.append(f"  {step.id}: {step.title} ({roles}){action}")
            out += [f"      {line}" for line in step.say.strip().splitlines()]
            out += [f"      witness: {w}" for w in step.witness]
        out.append("")
    return out


def journal_lines(entries: Sequence[Entry]) -> list[str]:
    if not entries:
        return ["The journal is empty: the ceremony has not started."]
    out = []
    for e in entries:
        data = json.dumps(e.data, sort_keys=True)
        if len(data) > 160:
            data = data[:157] + "..."
        out.append(
            f"{e.seq:>3} {e.time[11:19]} {e.kind:<10} {e.step or '-':<14} "
            f"{e.actor or '-':<5} {e.digest[:10]}"
        )
        out.append(f"      {data}")
    return out


def help_lines(screen: Screen[Any]) -> list[str]:
    out = ["Keyboard only. Keys of the ceremony screen:", ""]
    for binding in screen.BINDINGS:
        key = getattr(binding, "key", "")
        desc = getattr(binding, "description", "")
        out.append(f"  {key:<20} {desc}")
    out += [
        "",
        "In questions: Y = yes, N = no (the Internal Witness records an exception).",
        "In the PIN dialog: digits, Backspace, Enter; Esc cancels without spending a try.",
        "Destructive steps: type the word shown, then Enter.",
    ]
    return out


def _roster(workspace: Path, world: World) -> Any:
    """The roster the ceremony loaded (else the demo's on the media), for viewing only."""

    candidates = [workspace / "inputs" / "roster"]
    if world.inputs.get("roster"):
        candidates.append(Path(world.inputs["roster"]))
    for path in candidates:
        if path.is_file():
            return _load(path)
    return None


def analysis_lines(workspace: Path, world: World) -> list[str]:
    from appliance.analysis import quorum, render

    try:
        roster = _roster(workspace, world)
    except (ApplianceError, ValueError, KeyError) as exc:
        return [f"The roster cannot be read: {exc}"]
    if roster is None:
        return ["No roster loaded yet: the analysis needs the credential sets."]
    out = [
        f"Each holder assumed absent with p={P_ABSENT} and compromised with p={P_COMPROMISE}",
        "(set real figures with `appliance quorum`).",
        "",
    ]
    for cset in roster.active_sets():
        holders = tuple(quorum.Holder(m.holder, P_ABSENT, P_COMPROMISE) for m in cset.live_members)
        qs = quorum.QuorumSet(f"{cset.set_id} {cset.subject}", cset.threshold, holders)
        out += render.single(qs, quorum.risk(qs))
        out += render.holders(qs)
        out.append("")
    return out


def report_lines(workspace: Path, world: World) -> list[str]:
    from appliance.sharing import reports

    try:
        roster = _roster(workspace, world)
    except (ApplianceError, ValueError, KeyError) as exc:
        return [f"The roster cannot be read: {exc}"]
    if roster is None:
        return ["No roster loaded yet."]
    findings = reports.report(roster, now=world.clock())
    if not findings:
        return ["No findings: every set is healthy, no card is old, no retest is overdue."]
    return [f"{f.kind}: {f.message}. {f.action}" for f in findings]


def roster_checks(world: World) -> list[CheckResult]:
    """Roster warnings for the start screen: overdue attestations, ageing cards, thin sets."""
    from appliance.doctor import CheckResult
    from appliance.sharing import reports

    path = Path(world.inputs.get("roster") or world.config.paths.media / "roster.json")
    if not path.is_file():
        return []
    try:
        roster = _load(path)
    except (ApplianceError, ValueError, KeyError) as exc:
        return [
            CheckResult(
                "roster",
                "FAIL",
                f"{path.name} cannot be read: {exc}",
                "Use the roster written by the last credential ceremony.",
            )
        ]
    findings = reports.report(roster, now=world.clock())
    if not findings:
        sets = len(roster.active_sets())
        return [CheckResult("roster", "OK", f"{path.name}: {sets} set(s), no findings")]
    return [CheckResult("roster", "WARN", f.message, f.action) for f in findings]


def _load(path: Path) -> Any:
    import base64

    from appliance.sharing import roster as rosters

    data = path.read_bytes()
    key = json.loads(data)["signature"]["public_key"]
    return rosters.loads(data, trusted_public_key=base64.b64decode(key), where=path.name)
