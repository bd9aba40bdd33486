"""The engine in process: steps, confirmations, exceptions, abort, refusal, resume."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from appliance.ceremony import journal
from appliance.ceremony.actions import basic
from appliance.ceremony.actions.schemas import SPECS
from appliance.ceremony.answers import Answers, AnswersOperator
from appliance.ceremony.context import ActionContext, Services
from appliance.ceremony.engine import Engine
from appliance.ceremony.errors import RefusedToStart
from appliance.ceremony.loader import load_script, loads_script
from appliance.ceremony.operator import StepView
from appliance.ceremony.params import Param
from appliance.ceremony.registry import ActionResult, ActionSpec, Registry
from appliance.signing import SoftwareSigner

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "tests/data/ceremony/mini.toml"
PEOPLE = {"CA": "Alice", "IW": "Ian", "CO1": "Carol", "CO2": "Chris"}


def engine_registry() -> Registry:
    """Every declaration, only the engine's own actions bound (whatever layers exist)."""
    registry = Registry()
    registry.declare_all(SPECS)
    basic.bind(registry)
    return registry


@pytest.fixture
def world(tmp_path: Path) -> dict[str, Any]:
    root = tmp_path / "root"
    (root / "sys/class/net/lo").mkdir(parents=True)
    doc = tmp_path / "doc.txt"
    doc.write_bytes(b"the zone operator's document\n")
    return {"root": root, "doc": doc, "ws": tmp_path / "ws", "signer": SoftwareSigner()}


def run(world: dict[str, Any], answers: Answers | None = None, **kw: Any) -> Any:
    registry = kw.pop("registry", engine_registry())
    script = load_script(kw.pop("script", MINI), registry)
    op = kw.pop("operator", None) or AnswersOperator(
        answers or Answers(attendance=PEOPLE, inputs={"doc": str(world["doc"])})
    )
    services = Services(signer=world["signer"], airgap_root=world["root"])
    engine = Engine(script, registry, op, world["ws"], services=services, **kw)
    return engine.run(), op


def kinds(world: dict[str, Any]) -> list[tuple[str, str | None]]:
    state = journal.read(world["ws"] / "journal.jsonl")
    return [(e.kind, e.step) for e in state.entries]


def test_whole_ceremony_is_journaled_and_signed(world: dict[str, Any]) -> None:
    outcome, op = run(world)
    assert outcome.status == "ended" and outcome.exceptions == 0
    k = kinds(world)
    assert k[0] == ("start", None)
    assert k[1:5] == [
        ("step_start", "airgap"),
        ("action", "airgap"),
        ("step_done", "airgap"),
        ("step_start", "load-doc"),
    ]
    assert ("action", "seal") in k and k[-2] == ("end", None) and k[-1] == ("signature", None)
    v = journal.verify(world["ws"] / "journal.jsonl", world["signer"].public_key_der())
    # checkpoints at the end of each act, and the end
    assert len(v.signatures) == 3 and v.unsigned_tail == 0
    entries = v.state.entries
    start = entries[0].data
    assert start["script"]["id"] == "mini" and len(start["script"]["sha256"]) == 64
    assert start["airgap"]["ok"] is True and start["attendance"] == PEOPLE
    load = next(e for e in entries if e.kind == "action" and e.step == "load-doc")
    digest = load.data["result"]["inputs"]["doc"]
    assert (world["ws"] / "inputs/doc").read_bytes() == world["doc"].read_bytes()
    assert len(digest) == 64 and load.data["result"]["pgp_words"].split()[0]
    seal = next(e for e in entries if e.kind == "step_done" and e.step == "seal")
    assert seal.data["confirmed_by"] == ["CO1", "IW"] and seal.data["names"] == ["Carol", "Ian"]
    assert any("CO1 types 'SEALED'" in line for line in op.transcript)
    # nothing secret-shaped in the journal: PIN answers never appear
    assert "pin" not in (world["ws"] / "journal.jsonl").read_text().lower()


def test_witness_refusal_records_exception_and_continues(world: dict[str, Any]) -> None:
    answers = Answers(
        attendance=PEOPLE,
        inputs={"doc": str(world["doc"])},
        steps={"airgap": {"confirm": False, "exception": "Screen was not readable."}},
    )
    outcome, _ = run(world, answers)
    assert outcome.status == "ended" and outcome.exceptions == 2  # witness check + CA confirm
    state = journal.read(world["ws"] / "journal.jsonl")
    exc = [e for e in state.entries if e.kind == "exception"]
    assert exc[0].step == "airgap" and exc[0].data["text"] == "Screen was not readable."
    assert exc[0].actor == "IW"


def test_abort_with_reason_ends_the_ceremony(world: dict[str, Any]) -> None:
    answers = Answers(
        attendance=PEOPLE,
        inputs={"doc": str(world["doc"])},
        steps={"seal": {"abort": "The bag was torn."}},
    )
    outcome, _ = run(world, answers)
    assert outcome.status == "aborted"
    state = journal.read(world["ws"] / "journal.jsonl")
    abort = [e for e in state.entries if e.kind == "abort"][0]
    assert abort.data["reason"] == "The bag was torn." and state.outcome == "aborted"
    with pytest.raises(RefusedToStart, match="finished ceremony"):
        run(world)


def test_failed_action_is_recorded_then_retry_or_abort(world: dict[str, Any]) -> None:
    answers = Answers(
        attendance=PEOPLE,
        inputs={"doc": str(world["doc"])},
        action_failed="retry",
        max_retries=1,
        steps={"load-doc": {"confirm": False}},
    )
    outcome, _ = run(world, answers)
    assert outcome.status == "aborted"
    state = journal.read(world["ws"] / "journal.jsonl")
    failed = [e for e in state.entries if e.kind == "action" and not e.data["ok"]]
    assert len(failed) == 2  # first try, one retry, then abort
    assert "does not match" in failed[0].data["error"]


def test_refuses_to_start_unimplemented_actions(world: dict[str, Any]) -> None:
    script = ROOT / "scripts/ksr-sign.toml"
    with pytest.raises(RefusedToStart) as info:
        run(world, script=script)
    text = str(info.value)
    assert "ksr.load" in text and "waits for appliance.dnssec" in text
    assert "line" in text and "Nothing was started" in text
    assert not (world["ws"] / "journal.jsonl").exists()


def test_refuses_without_required_seats(world: dict[str, Any]) -> None:
    answers = Answers(attendance={"CA": "Alice", "IW": "Ian", "CO1": "Carol"})
    with pytest.raises(RefusedToStart, match="CO2"):
        run(world, answers)
    assert not (world["ws"] / "journal.jsonl").exists()


def test_refuses_when_airgap_fails_and_is_enforced(world: dict[str, Any]) -> None:
    (world["root"] / "sys/class/net/eth0").mkdir()
    with pytest.raises(RefusedToStart, match="air-gap check failed: network interface"):
        run(world)
    assert not (world["ws"] / "journal.jsonl").exists()


class Crash(Exception):
    pass


class CrashingOperator(AnswersOperator):
    """Dies as `step` begins: the journal stays unfinished, as after a power cut."""

    def __init__(self, answers: Answers, step: str) -> None:
        super().__init__(answers)
        self.step = step

    def begin_step(self, view: StepView) -> None:
        if view.step_id == self.step:
            raise Crash()
        super().begin_step(view)


def test_resume_continues_at_first_unfinished_step(world: dict[str, Any]) -> None:
    answers = Answers(attendance=PEOPLE, inputs={"doc": str(world["doc"])})
    with pytest.raises(Crash):
        run(world, operator=CrashingOperator(answers, "seal"))
    outcome, op = run(world)
    assert outcome.status == "ended" and outcome.resumed
    k = kinds(world)
    assert k.count(("action", "load-doc")) == 1  # not loaded twice
    assert k.count(("step_done", "airgap")) == 1
    resume = [e for e in journal.read(world["ws"] / "journal.jsonl").entries if e.kind == "resume"][
        0
    ]
    assert resume.data["at_step"] == "seal"
    assert op.transcript[0].startswith("[3/4] seal")  # no attendance asked again


def test_resume_refuses_another_script(world: dict[str, Any]) -> None:
    answers = Answers(attendance=PEOPLE, inputs={"doc": str(world["doc"])})
    with pytest.raises(Crash):
        run(world, operator=CrashingOperator(answers, "seal"))
    other = world["ws"].parent / "other.toml"
    other.write_text(MINI.read_text().replace('version = "1.0"', 'version = "1.1"'))
    with pytest.raises(RefusedToStart, match="Resume with the same script"):
        run(world, script=other)


TWICE_SCRIPT = b"""
[ceremony]
id = "twice"
title = "Twice"
version = "1"
kind = "exercise"
[roles]
CA = 1
IW = 1
[[act]]
id = "a"
title = "A"
[[act.step]]
id = "first"
title = "First read"
roles = ["CA"]
say = "read"
action = "hash.readaloud"
params = { input = "doc", description = "the document" }
[[act.step]]
id = "second"
title = "Second read"
roles = ["CA"]
say = "read again"
action = "hash.readaloud"
params = { input = "doc", description = "the document" }
"""


def test_resume_detects_a_changed_input_copy(world: dict[str, Any]) -> None:
    path = world["ws"].parent / "twice.toml"
    path.write_bytes(TWICE_SCRIPT)
    answers = Answers(attendance=PEOPLE, inputs={"doc": str(world["doc"])})
    with pytest.raises(Crash):
        run(world, script=path, operator=CrashingOperator(answers, "second"))
    (world["ws"] / "inputs/doc").write_bytes(b"swapped after loading\n")
    outcome, op = run(world, script=path)
    assert outcome.status == "aborted"
    failed = [
        e for e in journal.read(outcome.journal).entries if e.kind == "action" and not e.data["ok"]
    ]
    assert "changed after it was loaded" in failed[0].data["error"]


SESSION_SCRIPT = b"""
[ceremony]
id = "session"
title = "Session"
version = "1"
kind = "exercise"
[roles]
CA = 1
IW = 1
[[act]]
id = "a"
title = "A"
[[act.step]]
id = "login"
title = "Log in"
roles = ["CA"]
say = "log in"
action = "test.session"
[[act.step]]
id = "use"
title = "Use"
roles = ["CA"]
say = "use"
action = "test.use"
"""


def test_session_actions_are_reestablished_after_resume(world: dict[str, Any]) -> None:
    calls: list[str] = []

    def login(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
        calls.append("login")
        ctx.session["token"] = "open"
        return ActionResult("logged in")

    def use(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
        calls.append("use:" + ctx.session.get("token", "closed"))
        return ActionResult("used")

    registry = engine_registry()
    registry.declare(ActionSpec("test.session", "log in", {}, layer="test", session=True))
    registry.declare(
        ActionSpec("test.use", "use", {"x": Param("int", "x", required=False)}, layer="test")
    )
    registry.bind("test.session", login)
    registry.bind("test.use", use)
    path = world["ws"].parent / "session.toml"
    path.write_bytes(SESSION_SCRIPT)
    answers = Answers(attendance=PEOPLE)
    with pytest.raises(Crash):
        run(world, registry=registry, script=path, operator=CrashingOperator(answers, "use"))
    outcome, _ = run(world, registry=registry, script=path)
    assert outcome.status == "ended"
    assert calls == ["login", "login", "use:open"]
    entries = journal.read(world["ws"] / "journal.jsonl").entries
    again = [e for e in entries if e.kind == "action" and e.step == "login"]
    assert len(again) == 2 and again[1].data["reestablished"] is True


def test_scripts_load_from_bytes_and_hash(world: dict[str, Any]) -> None:
    script = loads_script(MINI.read_bytes(), "mini.toml", engine_registry())
    outcome, _ = run(world)
    start = journal.read(outcome.journal).entries[0]
    assert start.data["script"]["sha256"] == script.sha256
    assert json.loads(outcome.journal.read_text().splitlines()[0])["kind"] == "start"


def test_resume_refuses_a_tampered_journal(world: dict[str, Any]) -> None:
    from appliance.ceremony.errors import JournalTampered

    answers = Answers(attendance=PEOPLE, inputs={"doc": str(world["doc"])})
    with pytest.raises(Crash):
        run(world, operator=CrashingOperator(answers, "seal"))
    path = world["ws"] / "journal.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    del lines[2]
    path.write_bytes(b"".join(lines))
    with pytest.raises(JournalTampered) as info:
        run(world)
    assert info.value.seq == 2
