"""`appliance quorum`: single sets, per-holder lists, structures, search, plots, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from appliance.analysis import quorum, structure_file
from appliance.analysis.errors import InputFormatError
from appliance.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "analysis"


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_single_set(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        ["quorum", "--n", "7", "--k", "4", "--p-absent", "0.1", "--p-compromise", "0.01", "--json"],
        capsys,
    )
    assert code == 0
    doc = json.loads(out)
    r = quorum.set_risk(quorum.QuorumSet.uniform("s", 7, 4, 0.1, 0.01))
    assert doc["set"] == {"n": 7, "k": 4, "p_denial": r.p_denial, "p_compromise": r.p_compromise}
    code, out, _ = run(
        ["quorum", "--n", "7", "--k", "4", "--p-absent", "0.1", "--p-compromise", "0.01"], capsys
    )
    assert f"P(denial of service) = {r.p_denial:.3e}" in out
    assert "fewer than 4 of 7 can come" in out and "Assumptions:" in out


def test_per_holder_probabilities(capsys: pytest.CaptureFixture[str]) -> None:
    pa = [0.05, 0.1, 0.2, 0.3, 0.05]
    code, out, _ = run(
        [
            "quorum",
            "--k",
            "3",
            "--p-absent",
            ",".join(map(str, pa)),
            "--p-compromise",
            "0.02",
            "--json",
        ],
        capsys,
    )
    hs = quorum.holders_from_lists("H", pa, [0.02] * 5)
    r = quorum.set_risk(quorum.QuorumSet("s", 3, tuple(hs)))
    assert code == 0 and json.loads(out)["set"]["p_denial"] == pytest.approx(r.p_denial)
    code, _, err = run(
        ["quorum", "--n", "4", "--k", "3", "--p-absent", "0.1,0.2", "--p-compromise", "0.02"],
        capsys,
    )
    assert code == 2 and "--p-absent lists 2 values for n=4 holders" in err


def test_ageing_section(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        [
            "quorum",
            "--n",
            "7",
            "--k",
            "4",
            "--p-absent",
            "0.1",
            "--p-compromise",
            "0.01",
            "--holder-loss",
            "0.05",
            "--card-failure",
            "0.02",
            "--retest",
            "2",
            "--horizon",
            "10",
            "--json",
        ],
        capsys,
    )
    ageing = json.loads(out)["ageing"][0]
    from appliance.analysis import horizon as hz

    rates = [hz.Ageing(0.05, 0.02)] * 7
    assert ageing["p_lost_in_horizon"] == pytest.approx(hz.p_horizon(4, rates, 2, 10))
    assert ageing["advised_retest_months"] == hz.advise_retest(4, rates, 10, 1e-4).months


def test_search_with_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = tmp_path / "frontier.png"
    code, out, _ = run(
        [
            "quorum",
            "--search",
            "--max-n",
            "10",
            "--p-absent",
            "0.1",
            "--p-compromise",
            "0.01",
            "--plot",
            str(png),
        ],
        capsys,
    )
    assert code == 0
    lines = out.splitlines()
    first = next(line for line in lines if line[:1].isdigit() and "-of-" in line)
    assert first.startswith("4-of-8")  # smallest n first
    assert "margin" in out
    from PIL import Image

    with Image.open(png) as img:
        assert img.format == "PNG" and img.size == (960, 720)
        colours = {c for _, c in img.getcolors(maxcolors=1 << 16) or []}
    assert (200, 0, 0) in colours  # the dashed target lines
    assert (0, 150, 0) in colours  # pairs meeting both targets
    code, out, _ = run(
        ["quorum", "--search", "--max-n", "4", "--p-absent", "0.1", "--p-compromise", "0.01"],
        capsys,
    )
    assert code == 1 and "None meets both; the closest is" in out


def test_nothing_to_compute_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["quorum"], capsys)
    assert code == 2 and "nothing to compute" in err


def test_structure_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        'title = "two sites"\n[defaults]\np_absent = 0.2\np_compromise = 0.01\n'
        "[sets.east]\nk = 3\nn = 7\n[sets.west]\nk = 3\nn = 7\n"
        '[any.activate]\nof = ["east", "west"]\n'
    )
    code, out, _ = run(["quorum", "--structure", str(path), "--json"], capsys)
    assert code == 0
    rows = {r["node"]: r for r in json.loads(out)["structure"]}
    east = quorum.set_risk(quorum.QuorumSet.uniform("e", 7, 3, 0.2, 0.01))
    assert rows["activate"]["p_denial"] == pytest.approx(east.p_denial**2)
    assert rows["east"]["made_of"] == "3-of-7"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "[sets.a]\nk = 2\nn = 3\np_absnt = 0.1\n",
            "line 4: unknown key 'p_absnt'; did you mean 'p_absent'?",
        ),
        (
            "[defaults]\np_absent = 0.1\np_compromise = 0.1\n[sets.a]\nk = 4\nn = 3\n",
            "line 5: set 'a': k = 4 exceeds n = 3",
        ),
        ("[defaults]\np_absent = 1.2\n", "line 2: p_absent = 1.2 must be a probability"),
        (
            "[defaults]\np_absent = 0.1\np_compromise = 0.1\n[sets.a]\nk = 1\nn = 1\n"
            '[any.x]\nof = ["a", "bb"]\n',
            "any.x names 'bb', which is not defined",
        ),
        (
            "[defaults]\np_absent = 0.1\np_compromise = 0.1\n[sets.a]\nk = 1\nn = 1\n"
            '[any.x]\nof = ["a", "y"]\n[all.y]\nof = ["x"]\n',
            "the structure loops",
        ),
        (
            "[defaults]\np_absent = 0.1\np_compromise = 0.1\n[sets.a]\nk = 1\nn = 1\n"
            "[sets.b]\nk = 1\nn = 1\n",
            "cannot tell which node is the answer",
        ),
        ("[sets.a]\nk = 1\nn = 2\n", "no p_absent for holder 'a#1'"),
        ("[defaults]\nholder_loss = inf\n", "line 2: holder_loss = inf must be a number >= 0"),
        ("[sets.a\nk = 1\n", "line 1"),
        (
            '[sets.a]\nk = 1\nholders = ["A", {nme = "B"}]\np_absent = 0.1\np_compromise = 0.1\n',
            "unknown key 'nme'; did you mean 'name'?",
        ),
    ],
)
def test_bad_structure_files_name_file_and_line(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputFormatError) as err:
        structure_file.load(path)
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_named_holders_shared_between_sets() -> None:
    st = structure_file.loads(
        "[defaults]\np_absent = 0.3\np_compromise = 0.1\n"
        '[sets.officers]\nk = 2\nholders = ["Ann", "Ben", {name = "Cat", p_absent = 0.5}]\n'
        '[sets.shareholders]\nk = 2\nholders = ["Ann", "Dov", "Eli"]\n'
        '[any.key]\nof = ["officers", "shareholders"]\n'
    )
    assert [h.name for h in quorum.shared_holders(st.root)] == ["Ann"]
    assert st.sets["officers"].holders[2].p_absent == 0.5
    with pytest.raises(InputFormatError, match="different probabilities"):
        structure_file.loads(
            "[defaults]\np_absent = 0.3\np_compromise = 0.1\n"
            '[sets.a]\nk = 1\nholders = ["Ann"]\n'
            '[sets.b]\nk = 1\nholders = [{name = "Ann", p_absent = 0.9}]\n'
            '[any.key]\nof = ["a", "b"]\n'
        )


def test_single_set_plot_uses_the_real_holders(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from appliance.analysis import search

    png = tmp_path / "k.png"
    code, out, _ = run(
        [
            "quorum",
            "--k",
            "2",
            "--p-absent",
            "0.1,0.5,0.3",
            "--p-compromise",
            "0.01",
            "--plot",
            str(png),
        ],
        capsys,
    )
    assert code == 0 and png.stat().st_size > 1000 and "frontier over k" in out
    hs = quorum.holders_from_lists("H", [0.1, 0.5, 0.3], [0.01] * 3)
    cands = search.evaluate_holders(hs, 1e-3, 1e-6)
    assert [c.k for c in cands] == [1, 2, 3]
    assert cands[1].p_denial == quorum.set_risk(quorum.QuorumSet("s", 2, tuple(hs))).p_denial
    code, _, err = run(["quorum", "--structure", str(png), "--plot", str(png)], capsys)
    assert code == 2 and "not on a structure" in err
