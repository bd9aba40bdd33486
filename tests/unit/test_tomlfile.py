from __future__ import annotations

from appliance import tomlfile

SCRIPT = '''\
[meta]
id = "demo"
title = """multi
[not.a.table]
line"""

[[acts]]
id = "a1"

[[acts.steps]]
id = "s1"
values = [
  "x = y",
]

[[acts.steps]]
id = "s2"
"quoted key" = 1
dotted.key = 2

[[acts]]
id = "a2"

[[acts.steps]]
id = "s3"
action = "hsm.activate"
'''


def test_lines_of_nested_arrays_of_tables() -> None:
    doc = tomlfile.loads(SCRIPT, "s.toml")
    assert doc.line(("meta", "id")) == 2
    assert doc.line(("meta", "title")) == 3
    assert doc.line(("acts", 0, "id")) == 8
    assert doc.line(("acts", 0, "steps", 0, "id")) == 11
    assert doc.line(("acts", 0, "steps", 0, "values")) == 12
    assert ("acts", 0, "steps", 0, "x") not in doc.lines
    assert doc.line(("acts", 0, "steps", 1)) == 16
    assert doc.line(("acts", 0, "steps", 1, "quoted key")) == 18
    assert doc.line(("acts", 0, "steps", 1, "dotted", "key")) == 19
    assert doc.line(("acts", 1, "id")) == 22
    assert doc.line(("acts", 1, "steps", 0, "action")) == 26
    assert doc.where(("acts", 1, "steps", 0, "action")) == "s.toml, line 26"
    assert ("not", "a", "table") not in doc.lines


def test_nearest() -> None:
    assert tomlfile.nearest("modul", ["module", "token"]) == "module"
    assert tomlfile.nearest("zzz", ["module", "token"]) is None
