"""Beta posteriors from attendance: files, journals written by the real engine, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.analysis import attendance, beta, estimates
from appliance.analysis.errors import InputFormatError, ModelError
from appliance.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "analysis"


@pytest.mark.parametrize("q", [0.025, 0.3, 0.5, 0.9, 0.975])
def test_beta_quantiles_match_closed_forms(q: float) -> None:
    assert beta.quantile(q, 1, 1) == pytest.approx(q, abs=1e-12)  # uniform
    assert beta.quantile(q, 3, 1) == pytest.approx(q ** (1 / 3), abs=1e-12)  # cdf x^a
    assert beta.quantile(q, 1, 4) == pytest.approx(1 - (1 - q) ** 0.25, abs=1e-12)
    # Beta(1/2, 1/2) is the arcsine law: cdf = (2/pi) asin(sqrt x).
    import math

    assert beta.quantile(q, 0.5, 0.5) == pytest.approx(math.sin(math.pi * q / 2) ** 2, abs=1e-10)


def test_beta_cdf_is_symmetric() -> None:
    assert beta.cdf(0.3, 2.5, 7.5) == pytest.approx(1 - beta.cdf(0.7, 7.5, 2.5), abs=1e-13)


def test_posterior_counts_absences() -> None:
    e = estimates.posterior("CO1", summoned=40, absent=4)
    assert (e.alpha, e.beta) == (4.5, 36.5)  # Jeffreys prior
    assert e.mean == pytest.approx(4.5 / 41)
    assert e.lower < e.mean < e.upper
    assert beta.cdf(e.upper, e.alpha, e.beta) == pytest.approx(0.95, abs=1e-9)
    u = estimates.posterior("CO1", 40, 4, prior="uniform", level=0.5)
    assert (u.alpha, u.beta) == (5.0, 37.0)
    with pytest.raises(ModelError, match="absent 5 times out of 4"):
        estimates.posterior("CO1", 4, 5)


def test_attendance_json_and_csv_agree() -> None:
    from_json = attendance.read_json(DATA / "attendance" / "officers.json")
    from_csv = attendance.read_csv(DATA / "attendance-officers.csv")
    key = sorted((r.ceremony, r.holder, r.present, r.set_name) for r in from_json)
    assert key == sorted((r.ceremony, r.holder, r.present, r.set_name) for r in from_csv)
    est = {e.holder: e for e in estimates.estimate(from_json)}
    assert (est["CO2"].summoned, est["CO2"].absent) == (4, 2)
    assert (est["CO1"].summoned, est["CO1"].absent) == (4, 0)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"format": "other"}', '"format" must be "appliance-attendance/1"'),
        (
            '{"format": "appliance-attendance/1", "ceremonies": [{"id": "c1", "summoned": ["A"],'
            ' "present": ["A", "B"]}]}',
            "['B'] present but not summoned",
        ),
        (
            '{"format": "appliance-attendance/1", "ceremonies": [{"id": "c1", "summoned": "A",'
            ' "present": []}]}',
            "summoned must be a list",
        ),
        ('{"format": "appliance-attendance/1",\n "ceremonies": [}', "line 2: not valid JSON"),
    ],
)
def test_bad_attendance_json_is_named(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "a.json"
    path.write_text(text)
    with pytest.raises(InputFormatError) as err:
        attendance.read_json(path)
    assert needle in str(err.value)


def test_bad_attendance_csv_is_named(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("ceremony,holder,present\nc1,CO1,maybe\n")
    with pytest.raises(InputFormatError, match="line 2: present is 'maybe'"):
        attendance.read_csv(path)
    path.write_text("ceremony,person,present\n")
    with pytest.raises(InputFormatError, match="header lacks"):
        attendance.read_csv(path)


# --- real journals --------------------------------------------------------------------------

SCRIPT = b"""
[ceremony]
id = "credential-retest"
title = "Retest"
version = "1"
kind = "credential-retest"

[roles]
CA = 1
IW = 1
CO = 2

[[act]]
id = "roll"
title = "Roll call"
[[act.step]]
id = "welcome"
title = "Welcome"
roles = ["CA"]
say = "Welcome to the ceremony."
"""


def run_ceremony(workspace: Path, officers: dict[str, str], airgap_root: Path) -> Path:
    """A real (tiny) ceremony through the engine, which writes the journal we then read."""
    from appliance.ceremony.answers import Answers, AnswersOperator
    from appliance.ceremony.context import Services
    from appliance.ceremony.engine import Engine
    from appliance.ceremony.loader import loads_script
    from appliance.ceremony.registry import default_registry

    registry = default_registry()
    script = loads_script(SCRIPT, "retest.toml", registry)
    seats = {"CA": "Carol", "IW": "Ivan", **officers}
    op = AnswersOperator(Answers(attendance=seats))
    outcome = Engine(
        script, registry, op, workspace, services=Services(airgap_root=airgap_root)
    ).run()
    assert outcome.status == "ended"
    return outcome.journal


def test_from_journals_reads_real_engine_journals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "airgap"
    root.mkdir()
    history = tmp_path / "history"
    run_ceremony(history / "2026-q1", {"CO1": "Alice", "CO2": "Bob"}, root)
    run_ceremony(history / "2026-q2", {"CO1": "Alice", "CO2": "Dan"}, root)
    run_ceremony(history / "2026-q3", {"CO1": "Dan", "CO2": "Alice"}, root)
    records = attendance.read_dir(history)
    est = {e.holder: e for e in estimates.estimate(records)}
    assert sorted(est) == ["Alice", "Bob", "Dan"]  # CA and IW hold no credential
    assert (est["Alice"].summoned, est["Alice"].absent) == (3, 0)
    assert (est["Bob"].summoned, est["Bob"].absent) == (3, 2)
    assert (est["Dan"].summoned, est["Dan"].absent) == (3, 1)
    assert {e.set_name for e in est.values()} == {"CO"}

    # The model runs on those estimates: 2-of-3 with the posterior means.
    code = main(
        ["quorum", "--from-journals", str(history), "--k", "2", "--p-compromise", "0.01", "--json"]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    means = [e["mean"] for e in out["estimates"]]
    assert means == [pytest.approx(0.5 / 4), pytest.approx(2.5 / 4), pytest.approx(1.5 / 4)]
    from appliance.analysis import quorum

    qs = quorum.QuorumSet("s", 2, tuple(quorum.holders_from_lists("H", means, [0.01] * 3)))
    assert out["set"]["p_denial"] == pytest.approx(quorum.set_risk(qs).p_denial)


def test_attendance_file_overrides_a_journal_for_the_same_ceremony(tmp_path: Path) -> None:
    root = tmp_path / "airgap"
    root.mkdir()
    history = tmp_path / "history"
    journal = run_ceremony(history / "q1", {"CO1": "Alice", "CO2": "Bob"}, root)
    first = json.loads(journal.read_text().splitlines()[0])
    cid = f"credential-retest@{first['time']}"
    (history / "summons.json").write_text(
        json.dumps(
            {
                "format": "appliance-attendance/1",
                "ceremonies": [
                    {
                        "id": cid,
                        "set": "CO",
                        "summoned": ["Alice", "Bob", "Eve"],
                        "present": ["Alice", "Bob"],
                    }
                ],
            }
        )
    )
    est = {e.holder: e for e in estimates.estimate(attendance.read_dir(history))}
    assert (est["Eve"].summoned, est["Eve"].absent) == (1, 1)
    assert est["Alice"].summoned == 1  # not counted twice


def test_a_directory_without_records_says_so(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text('{"artifacts": []}')  # other workspace JSON
    with pytest.raises(InputFormatError, match="no attendance records"):
        attendance.read_dir(tmp_path)
    (tmp_path / "journal.jsonl").write_text('{"seq": 3}\n')
    with pytest.raises(InputFormatError, match="not the start entry"):
        attendance.read_dir(tmp_path)


def test_cli_runs_on_one_set_and_on_the_upper_bound(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    history = tmp_path / "h"
    history.mkdir()
    (history / "officers.json").write_text((DATA / "attendance" / "officers.json").read_text())
    (history / "rksh.csv").write_text(
        "ceremony,set,holder,present\nR1,rksh,RKSH1,yes\nR1,rksh,RKSH2,no\n"
    )
    assert (
        main(["quorum", "--from-journals", str(history), "--k", "2", "--p-compromise", "0.01"]) == 2
    )
    assert "several sets (officers, rksh)" in capsys.readouterr().err
    assert (
        main(
            [
                "quorum",
                "--from-journals",
                str(history),
                "--set",
                "officers",
                "--k",
                "3",
                "--p-compromise",
                "0.01",
                "--estimate",
                "upper",
                "--json",
            ]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    uppers = [e["upper"] for e in out["estimates"]]
    from appliance.analysis import quorum

    hs = quorum.holders_from_lists("H", uppers, [0.01] * 4)
    assert out["set"]["p_denial"] == pytest.approx(
        quorum.set_risk(quorum.QuorumSet("s", 3, tuple(hs))).p_denial
    )
    # --search runs on the pooled estimate: 4 absences in 16 summons, Jeffreys prior.
    main(
        [
            "quorum",
            "--from-journals",
            str(history),
            "--set",
            "officers",
            "--search",
            "--max-n",
            "6",
            "--p-compromise",
            "0.01",
        ]
    )
    assert f"p_absent {4.5 / 17:.4g}" in capsys.readouterr().out
