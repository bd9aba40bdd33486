"""Attendance history: who was summoned to which ceremony, and who came.

Two documented file formats (docs/quorum.md, "Attendance files"):

JSON (`*.json`)::

    {"format": "appliance-attendance/1",
     "ceremonies": [
       {"id": "KSK-2024-Q1", "date": "2024-02-01", "set": "officers-east",
        "summoned": ["CO1", "CO2", "CO3", "CO4"], "present": ["CO1", "CO3", "CO4"]}]}

    `set` is optional; `present` must be a subset of `summoned`.

CSV (`*.csv`), one row per holder summoned, header required::

    ceremony,date,set,holder,present
    KSK-2024-Q1,2024-02-01,officers-east,CO2,no

    `date` and `set` columns are optional; present is yes/no, true/false or 1/0.

A directory may mix both, and ceremony journals (`*.jsonl`, see `journals`); files are read
in name order, sub-directories included (a folder of workspaces works).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from appliance.analysis.errors import InputFormatError
from appliance.analysis.estimates import Attendance

FORMAT = "appliance-attendance/1"
_TRUE = {"yes", "y", "true", "1", "present"}
_FALSE = {"no", "n", "false", "0", "absent"}


def _fail(path: Path, message: str, hint: str, **fields: Any) -> InputFormatError:
    return InputFormatError(f"{path}: {message}", hint=hint, path=str(path), **fields)


def read_json(path: Path) -> list[Attendance]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise _fail(
            path,
            f"line {exc.lineno}: not valid JSON ({exc.msg})",
            "Fix the JSON syntax.",
            line=exc.lineno,
        ) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise _fail(
            path,
            f'not an attendance file: "format" must be "{FORMAT}"',
            "See docs/quorum.md, 'Attendance files'.",
        )
    ceremonies = doc.get("ceremonies")
    if not isinstance(ceremonies, list):
        raise _fail(path, '"ceremonies" must be a list', "See docs/quorum.md.")
    out: list[Attendance] = []
    for i, c in enumerate(ceremonies):
        where = f"ceremonies[{i}]"
        if not isinstance(c, dict):
            raise _fail(path, f"{where} must be an object", "See docs/quorum.md.")
        unknown = set(c) - {"id", "date", "set", "summoned", "present"}
        if unknown:
            raise _fail(
                path,
                f"{where} has unknown keys {sorted(unknown)}",
                "Allowed: id, date, set, summoned, present.",
            )
        cid = c.get("id")
        summoned, present = c.get("summoned"), c.get("present")
        if not isinstance(cid, str) or not cid:
            raise _fail(path, f"{where} has no id", 'Give "id": "KSK-2024-Q1".')
        for key, value in (("summoned", summoned), ("present", present)):
            if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
                raise _fail(
                    path,
                    f"{where} ({cid}): {key} must be a list of holder names",
                    'Write "summoned": ["CO1", "CO2"].',
                )
        assert isinstance(summoned, list) and isinstance(present, list)  # noqa: S101
        strangers = sorted(set(present) - set(summoned))
        if strangers:
            raise _fail(
                path,
                f"{where} ({cid}): {strangers} present but not summoned",
                "List everyone present under summoned too.",
            )
        date, set_name = str(c.get("date", "")), str(c.get("set", ""))
        out.extend(Attendance(cid, h, h in present, date=date, set_name=set_name) for h in summoned)
    return out


def read_csv(path: Path) -> list[Attendance]:
    text = path.read_text(encoding="utf-8")
    reader = csv.DictReader(text.splitlines())
    header = set(reader.fieldnames or [])
    missing = {"ceremony", "holder", "present"} - header
    if missing:
        raise _fail(
            path,
            f"the header lacks {sorted(missing)}",
            "The first line must be: ceremony,date,set,holder,present.",
        )
    out: list[Attendance] = []
    for row in reader:
        line = reader.line_num
        word = (row.get("present") or "").strip().lower()
        if word not in _TRUE | _FALSE:
            raise _fail(
                path,
                f"line {line}: present is {row.get('present')!r}",
                "Write yes or no.",
                line=line,
            )
        ceremony, holder = (row.get("ceremony") or "").strip(), (row.get("holder") or "").strip()
        if not ceremony or not holder:
            raise _fail(
                path,
                f"line {line}: empty ceremony or holder",
                "Every row names a ceremony and a holder.",
                line=line,
            )
        out.append(
            Attendance(
                ceremony,
                holder,
                word in _TRUE,
                date=(row.get("date") or "").strip(),
                set_name=(row.get("set") or "").strip(),
            )
        )
    return out


def _claims_attendance(path: Path) -> bool:
    """Workspaces hold other JSON (manifests, answers): read only files that claim our format
    or look like it (a "ceremonies" key), so a typo in "format" is reported, not skipped."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return path.name.endswith(".attendance.json")
    return isinstance(doc, dict) and (doc.get("format") == FORMAT or "ceremonies" in doc)


def read_dir(directory: Path) -> list[Attendance]:
    """Every attendance record under `directory`: attendance files and ceremony journals.

    Journals (`*.jsonl`) say who came; an attendance file naming the same ceremony id says
    who was summoned too, and replaces what the journal implies for that ceremony.
    """
    from appliance.analysis import journals

    if not directory.is_dir():
        raise InputFormatError(
            f"{directory} is not a directory",
            hint="Point --from-journals to the folder holding the records.",
            path=str(directory),
        )
    records: list[Attendance] = []
    ceremonies: list[journals.JournalCeremony] = []
    files = sorted(p for p in directory.rglob("*") if p.is_file())
    for path in files:
        try:
            if path.suffix == ".json" and _claims_attendance(path):
                records.extend(read_json(path))
            elif path.suffix == ".csv":
                records.extend(read_csv(path))
            elif path.suffix == ".jsonl":
                ceremonies.append(journals.read_journal(path))
        except OSError as exc:
            raise _fail(path, f"cannot read: {exc.strerror}", "Check permissions.") from None
        except UnicodeDecodeError:
            raise _fail(path, "not UTF-8 text", "Give the attendance files as text.") from None
    explicit = {r.ceremony for r in records}
    records.extend(r for r in journals.attendance(ceremonies) if r.ceremony not in explicit)
    if not records:
        raise InputFormatError(
            f"{directory}: no attendance records (*.json, *.csv or ceremony journals *.jsonl)",
            hint="See docs/quorum.md, 'Attendance files'.",
            path=str(directory),
        )
    return records
