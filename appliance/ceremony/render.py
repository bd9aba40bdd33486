"""Paper copies of a script: Markdown or PDF, with signature lines for the witnesses.

Each step shows who performs it, the words the CA reads, the witness checks as boxes, the
action and its parameters, and a line for the initials of the confirming role and the IW.
The PDF embeds DejaVu Sans (Debian fonts-dejavu-core) so every character prints as written.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from appliance.ceremony.model import Script, Step
from appliance.errors import OutputsError

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")


def _params(step: Step) -> str:
    if step.action is None:
        return ""
    args = ", ".join(f"{k} = {json.dumps(v)}" for k, v in step.action.params.items())
    return f"{step.action.name}({args})"


def markdown(script: Script) -> str:
    out = [
        f"# {script.title}",
        "",
        f"Script `{script.id}` version {script.version} ({script.kind}); SHA-256 `{script.sha256}`",
        "",
    ]
    if script.summary:
        out += [script.summary.strip(), ""]
    out += ["## Roles", "", "| seat | name | signature |", "|---|---|---|"]
    out += [f"| {seat} | | |" for seat in script.required_seats()]
    out.append("")
    number = 0
    for act in script.acts:
        out += [f"## {act.title}", ""]
        if act.say:
            out += [act.say.strip(), ""]
        for step in act.steps:
            number += 1
            out += [f"### Step {number}: {step.title} (`{step.id}`)", ""]
            out.append(f"**Performed by:** {', '.join(step.roles)}")
            if step.action is not None:
                out.append(f"  \n**Action:** `{_params(step)}`")
            if step.destructive:
                out.append("  \n**Destructive:** typed confirmation required")
            out += ["", "> " + step.say.strip().replace("\n", "\n> "), ""]
            for check in step.witness:
                out.append(f"- [ ] {check}")
            if step.witness:
                out.append("")
            confirmers = ", ".join(step.confirmers)
            out += [
                f"{confirmers} initials: ________  IW initials: ________  time (UTC): ________",
                "",
                "Exception: ____________________________________________",
                "",
            ]
    out += [
        "## Signatures",
        "",
        "We attest that this ceremony was performed as recorded above, exceptions noted.",
        "",
    ]
    out += [
        f"{seat}: ______________________________  date: __________"
        for seat in script.required_seats()
    ]
    out.append("")
    return "\n".join(out)


def pdf(script: Script, target: Path) -> None:
    """Write a PDF of the script to `target` (needs fonts-dejavu-core)."""
    from fpdf import FPDF

    regular, bold = FONT_DIR / "DejaVuSans.ttf", FONT_DIR / "DejaVuSans-Bold.ttf"
    if not regular.exists() or not bold.exists():
        raise OutputsError(
            f"The PDF font {regular} is missing.",
            hint="Install the Debian package fonts-dejavu-core (make setup), or use --markdown.",
        )
    doc = FPDF(format="A4")
    doc.set_title(script.title)
    doc.set_creator("ceremony appliance")
    doc.set_creation_date(_fixed_date())
    doc.add_font("DejaVu", "", str(regular))
    doc.add_font("DejaVu", "B", str(bold))
    doc.set_auto_page_break(auto=True, margin=15)
    doc.add_page()
    width = doc.epw

    def text(size: int, body: str, style: str = "", gap: float = 1.5) -> None:
        doc.set_font("DejaVu", style, size)
        doc.multi_cell(width, size * 0.5, body, new_x="LMARGIN", new_y="NEXT")
        doc.ln(gap)

    text(16, script.title, "B")
    text(9, f"Script {script.id} version {script.version} ({script.kind})\nSHA-256 {script.sha256}")
    if script.summary:
        text(10, script.summary.strip())
    text(12, "Roles", "B")
    for seat in script.required_seats():
        text(10, f"{seat}: name ______________________  signature ______________________")
    number = 0
    for act in script.acts:
        doc.ln(2)
        text(14, act.title, "B")
        if act.say:
            text(10, act.say.strip())
        for step in act.steps:
            number += 1
            text(11, f"Step {number}: {step.title} ({step.id})", "B", 0.5)
            text(
                9,
                "Performed by: "
                + ", ".join(step.roles)
                + (f"    Action: {_params(step)}" if step.action else "")
                + ("    DESTRUCTIVE: typed confirmation" if step.destructive else ""),
                gap=0.5,
            )
            text(10, step.say.strip())
            for check in step.witness:
                text(10, "\u2610 " + check, gap=0.5)
            text(
                9,
                f"{', '.join(step.confirmers)} initials ______   IW initials ______   "
                "time (UTC) ______   exception ________________________",
                gap=3,
            )
    doc.ln(4)
    text(12, "Signatures", "B")
    text(10, "We attest that this ceremony was performed as recorded above, exceptions noted.")
    for seat in script.required_seats():
        text(10, f"{seat}: ________________________________   date __________", gap=3)
    target.parent.mkdir(parents=True, exist_ok=True)
    from appliance import atomic

    atomic.write_bytes(target, bytes(doc.output()))


def _fixed_date() -> datetime:
    """A fixed creation date so the same script prints to the same PDF bytes."""
    return datetime(2026, 1, 1, tzinfo=UTC)
