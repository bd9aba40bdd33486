"""KSR policy overrides without an HSM: the answers file's `overrides`, the headless CA's
answers to override requests, and which journaled overrides `ksr.sign` uses."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from appliance.ceremony.actions.dnssec import OVERRIDE_TOPIC, _journaled_overrides
from appliance.ceremony.answers import AnswersOperator, load_answers
from appliance.ceremony.context import ActionContext, History
from appliance.ceremony.errors import AnswersInvalid
from appliance.ceremony.journal import Entry
from appliance.ceremony.operator import Choice
from appliance.errors import DnssecError

GAP = "KSR-POLICY-BUNDLE-INTERVALS"


def _answers(tmp_path: Path, text: str) -> AnswersOperator:
    path = tmp_path / "answers.toml"
    path.write_text('[attendance]\nCA = "Alice"\nIW = "Ian"\n\n' + text)
    return AnswersOperator(load_answers(path))


def _request(requirement: str) -> Choice:
    return Choice(
        "check-ksr",
        "CA",
        f"violates {requirement}",
        ("refuse", f"override {requirement}"),
        topic=OVERRIDE_TOPIC,
    )


def test_the_ca_overrides_only_listed_requirements_with_their_reason(tmp_path: Path) -> None:
    op = _answers(
        tmp_path,
        f'[steps.check-ksr]\nchoose = "continue"\n'
        f'exception = "IW words"\noverrides = {{ "{GAP}" = "agreed gap" }}\n',
    )
    # listed: overridden, and the reason is the CA's next typed text (once)
    assert op.choose(_request(GAP)) == f"override {GAP}"
    assert op.exception_text("check-ksr", "CA", "the reason") == "agreed gap"
    assert op.exception_text("check-ksr", "IW", "an exception") == "IW words"
    # not listed: refused, even though the step answers other choices with "continue"
    assert op.choose(_request("KSR-POLICY-SIG-HORIZON")) == "refuse"
    assert "  CA requests: override KSR-POLICY-BUNDLE-INTERVALS" in op.transcript


def test_without_overrides_every_request_is_refused(tmp_path: Path) -> None:
    op = _answers(tmp_path, "")
    assert op.choose(_request(GAP)) == "refuse"


@pytest.mark.parametrize(
    "table",
    [
        'overrides = "KSR-POLICY-BUNDLE-INTERVALS"',
        f'overrides = {{ "{GAP}" = "  " }}',
        f'overrides = {{ "{GAP}" = 3 }}',
    ],
)
def test_bad_overrides_are_refused_with_the_line(tmp_path: Path, table: str) -> None:
    with pytest.raises(AnswersInvalid, match=r"line 6: overrides maps requirement ids"):
        _answers(tmp_path, f"[steps.check-ksr]\n{table}\n")


def _entry(seq: int, step: str, action: str, result: dict[str, Any], ok: bool = True) -> Entry:
    data = {"action": action, "ok": ok, "result": result}
    return Entry(seq, "2026-12-04T00:00:00.000Z", "action", step, "CA", data, "0" * 64)


def _override(requirement: str, reason: str) -> dict[str, str]:
    return {
        "requirement": requirement,
        "reason": reason,
        "requested_by": "CA",
        "requested_by_name": "Alice",
        "witnessed_by": "IW",
        "witnessed_by_name": "Ian",
    }


def _ctx(*entries: Entry) -> ActionContext:
    return cast(ActionContext, SimpleNamespace(history=History(list(entries))))


def test_sign_uses_exactly_the_latest_check_of_the_same_ksr() -> None:
    this, other = "a" * 64, "b" * 64
    ctx = _ctx(
        _entry(
            1,
            "check-ksr",
            "ksr.check",
            {"ksr_sha256": this, "zone": "ex.", "overrides": [_override(GAP, "first")]},
        ),
        _entry(
            2,
            "check-other",
            "ksr.check",
            {
                "ksr_sha256": other,
                "zone": "ex.",
                "overrides": [_override("KSR-POLICY-SIG-HORIZON", "other KSR")],
            },
        ),
        _entry(
            3,
            "check-again",
            "ksr.check",
            {"ksr_sha256": this, "zone": "ex.", "overrides": [_override(GAP, "second")]},
        ),
        _entry(
            4,
            "check-failed",
            "ksr.check",
            {
                "ksr_sha256": this,
                "zone": "ex.",
                "overrides": [_override("KSR-POLICY-SIG-HORIZON", "never recorded ok")],
            },
            ok=False,
        ),
    )
    overrides, step = _journaled_overrides(ctx, this, "ex.")
    assert step == "check-again"
    assert [(o.requirement, o.reason, o.witness) for o in overrides] == [
        (GAP, "second", "IW (Ian)")
    ]
    assert _journaled_overrides(ctx, "c" * 64, "ex.") == ([], "")
    assert _journaled_overrides(ctx, this, "other.") == ([], "")


def test_a_journal_cannot_smuggle_a_deprecated_algorithm_override() -> None:
    ctx = _ctx(
        _entry(
            1,
            "check-ksr",
            "ksr.check",
            {
                "ksr_sha256": "a" * 64,
                "zone": "ex.",
                "overrides": [_override("KSR-ALG-DEPRECATED", "edited journal")],
            },
        )
    )
    with pytest.raises(DnssecError, match="KSR-ALG-DEPRECATED cannot be overridden"):
        _journaled_overrides(ctx, "a" * 64, "ex.")
