"""Scripts: the loader's model, every broken script's file and line, the library passes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appliance.ceremony.errors import ScriptInvalid
from appliance.ceremony.loader import load_script, loads_script
from appliance.ceremony.registry import default_registry

ROOT = Path(__file__).resolve().parents[2]
BROKEN = sorted((ROOT / "tests/data/scripts-broken").glob("*.toml"))
LIBRARY = sorted((ROOT / "scripts").glob("*.toml"))
EXPECT = re.compile(r"^# expect: (\d+): (.+)$")


def test_mini_script_model() -> None:
    script = load_script(ROOT / "tests/data/ceremony/mini.toml", default_registry())
    assert script.id == "mini"
    assert script.roles == {"CA": 1, "IW": 1, "CO": 2}
    assert script.required_seats() == ["CA", "IW", "CO1", "CO2"]
    steps = list(script.steps())
    assert [s.id for s in steps] == ["airgap", "load-doc", "seal", "bye"]
    load = steps[1]
    assert load.action is not None and load.action.name == "hash.readaloud"
    assert load.action.params == {"input": "doc", "description": "the document", "confirm": "IW"}
    seal = script.step("seal")
    assert seal.destructive  # from the action's declaration
    assert seal.confirmers == ("CO1", "IW")
    assert load.line == 26
    assert len(script.sha256) == 64


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_script_names_file_and_line(path: Path) -> None:
    m = EXPECT.match(path.read_text(encoding="utf-8").splitlines()[0])
    assert m, f"{path.name} lacks its '# expect: LINE: TEXT' header"
    line, text = int(m.group(1)), m.group(2)
    with pytest.raises(ScriptInvalid) as info:
        load_script(path, default_registry())
    problems = info.value.problems
    assert any(p.line == line and text in p.message for p in problems), [str(p) for p in problems]
    assert f"{path}, line {line}: " in str(info.value)


def test_corpus_covers_every_kind_of_mistake() -> None:
    names = {p.stem for p in BROKEN}
    for needed in (
        "syntax-error",
        "unknown-action",
        "missing-role",
        "bad-param-type",
        "missing-param",
        "duplicate-step-id",
        "unknown-key",
    ):
        assert needed in names


def test_all_problems_are_reported_at_once() -> None:
    text = (ROOT / "tests/data/ceremony/mini.toml").read_text(encoding="utf-8")
    text = text.replace('action = "airgap.check"', 'action = "airgap.chek"')
    text = text.replace('roles = ["CO1"]', 'roles = ["SSC1"]')
    with pytest.raises(ScriptInvalid) as info:
        loads_script(text.encode(), "two.toml", default_registry())
    assert len(info.value.problems) == 2
    assert {p.line for p in info.value.problems} == {24, 43}


def test_library_is_present_and_valid() -> None:
    ids = {p.stem for p in LIBRARY}
    assert ids >= {
        "hsm-init",
        "ksk-generate",
        "ksr-sign",
        "backup",
        "restore",
        "rksh-enroll",
        "credential-retest",
        "holder-replace",
        "credential-rekey",
        "location-hint",
    }
    registry = default_registry()
    for path in LIBRARY:
        script = load_script(path, registry)
        assert script.id == path.stem
        assert "IW" in script.roles and "CA" in script.roles
        assert any(s.witness for s in script.steps()), f"{path.name} has no witness checks"
