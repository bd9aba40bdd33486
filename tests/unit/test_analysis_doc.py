"""docs/quorum.md cannot drift: every `<!-- cli: ... -->` block is the command's output.

Files the commands read are in the document too (`<!-- file: NAME -->` before a fenced
block). To refresh the page after a deliberate change of the model or its tables:

    APPLIANCE_REGENERATE_DOCS=1 .venv/bin/pytest tests/unit/test_analysis_doc.py
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

from appliance.cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "quorum.md"
BLOCK = re.compile(
    r"<!-- (?P<what>file|cli): (?P<arg>.+?) -->\n```(?P<lang>[a-z]*)\n(?P<body>.*?)```",
    re.DOTALL,
)


def _run(command: str, workdir: Path, capsys: pytest.CaptureFixture[str]) -> str:
    argv = shlex.split(command)
    assert argv[0] == "appliance", command
    capsys.readouterr()
    old = Path.cwd()
    os.chdir(workdir)
    try:
        main(argv[1:])
    finally:
        os.chdir(old)
    out, err = capsys.readouterr()
    assert not err, err
    return out


def test_every_output_block_is_what_the_cli_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = list(BLOCK.finditer(text))
    commands = [m for m in blocks if m["what"] == "cli"]
    assert len(commands) >= 5, "the worked examples are missing from docs/quorum.md"
    assert any("--structure root-like.toml" in m["arg"] for m in commands)
    pieces: list[str] = []
    last = 0
    stale: list[str] = []
    for m in blocks:
        if m["what"] == "file":
            target = tmp_path / m["arg"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(m["body"], encoding="utf-8")
            continue
        fresh = _run(m["arg"], tmp_path, capsys)
        if fresh != m["body"]:
            stale.append(m["arg"])
        pieces.append(text[last : m.start("body")])
        pieces.append(fresh)
        last = m.end("body")
    pieces.append(text[last:])
    if stale and os.environ.get("APPLIANCE_REGENERATE_DOCS") == "1":
        DOC.write_text("".join(pieces), encoding="utf-8")
        return
    assert not stale, (
        f"docs/quorum.md is out of date for: {stale}. Run APPLIANCE_REGENERATE_DOCS=1 "
        ".venv/bin/pytest tests/unit/test_analysis_doc.py and review the diff."
    )


def test_the_worked_example_states_its_inputs() -> None:
    text = DOC.read_text(encoding="utf-8")
    example = text[text.index("## Worked example") : text.index("## Choosing n and k")]
    for needle in (
        "k = 3\nn = 7",
        "k = 4\nn = 7",
        "p_absent = 0.2",
        "p_compromise = 0.01",
        "holder_loss = 0.05",
        "card_failure = 0.02",
        "retest_years = 2",
        'of = ["east", "west"]',
        'of = ["activate", "recovery"]',
    ):
        assert needle in example, needle


def test_the_worked_example_numbers_match_the_closed_form() -> None:
    """Independent of the program: the top row is binomial sums combined by hand."""
    import math

    def at_least(n: int, p: float, k: int) -> float:
        return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))

    facility_denial = at_least(7, 0.2, 5)  # 5 or more of 7 officers away
    recovery_denial = at_least(7, 0.3, 4)
    facility_abuse = at_least(7, 0.01, 3)
    recovery_abuse = at_least(7, 0.01, 4)
    denial = facility_denial**2 * recovery_denial
    abuse = 1 - (1 - facility_abuse) ** 2 * (1 - recovery_abuse)
    text = DOC.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("ksk "))
    assert f"{denial:.3e}" in row and f"{abuse:.3e}" in row, row
