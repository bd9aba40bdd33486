"""The answers file: strict parsing with lines, and the headless operator's behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import tomlfile
from appliance.ceremony.answers import AnswersOperator, load_answers, parse_answers
from appliance.ceremony.errors import AnswersInvalid, CeremonyAborted, OperatorCancelled
from appliance.ceremony.operator import CardRequest, Choice, PinRequest, StepView, wipe

GOOD = """\
[attendance]
CA = "Alice"
IW = "Ian"

[defaults]
action_failed = "retry"
max_retries = 1

[inputs]
ksr = "ksr.txt"

[cards.CO1]
card = "co1"
pins = ["000000", "123456"]

[cards.CO2]
card = "co2"
pin = "654321"

[quorum]
order = ["CO2", "CO1"]

[steps.seal]
abort = "bag torn"
"""


class Slots:
    def __init__(self) -> None:
        self.inserted: list[str] = []

    def insert(self, card: str) -> None:
        self.inserted.append(card)

    def remove(self) -> None:
        self.inserted.append("-")


def test_answers_drive_cards_pins_and_choices(tmp_path: Path) -> None:
    path = tmp_path / "answers.toml"
    path.write_text(GOOD)
    answers = load_answers(path)
    assert answers.inputs == {"ksr": str(tmp_path / "ksr.txt")}
    slots = Slots()
    op = AnswersOperator(answers, card_slots=slots)
    request = CardRequest("act", "activate", ("CO1", "CO2"))
    assert op.present_card(request) == "CO2"  # quorum order
    assert op.present_card(CardRequest("act", "activate", ("CO1", "CO2"), ("CO2",))) == "CO1"
    assert slots.inserted == ["co2", "co1"]
    first = op.enter_pin(PinRequest("act", "CO1", "0001", 3))
    second = op.enter_pin(PinRequest("act", "CO1", "0001", 2))
    assert (bytes(first), bytes(second)) == (b"000000", b"123456")
    wipe(first)
    assert first == bytearray()
    assert all("123456" not in line for line in op.transcript)
    retry = Choice("act", "CA", "failed", ("retry", "abort"), topic="action-failed")
    assert op.choose(retry) == "retry"
    assert op.choose(retry) == "abort"  # max_retries reached
    with pytest.raises(CeremonyAborted, match="bag torn"):
        op.begin_step(StepView("seal", "Act", "Seal", ("CA",), "words", (), None, 3, 4))
    with pytest.raises(OperatorCancelled, match="No card answer"):
        op.present_card(CardRequest("x", "p", ("CO3",)))
    with pytest.raises(OperatorCancelled, match="No path for input 'roster'"):
        op.locate_input("x", "roster", "the roster")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[defaults]\nconfirm = true\nretries = 3\n", 3, "unknown key 'retries'"),
        ('[cards.CO1]\npin = "123456"\n', 1, "needs card ="),
        ('[defaults]\naction_failed = "continue"\n', 2, "must be one of retry, abort"),
        ("[steps.a]\nconfirmm = false\n", 2, "did you mean 'confirm'"),
        ('[atendance]\nCA = "x"\n', 1, "unknown key 'atendance'"),
    ],
)
def test_bad_answers_name_the_line(text: str, line: int, message: str) -> None:
    with pytest.raises(AnswersInvalid) as info:
        parse_answers(tomlfile.loads(text, "a.toml"))
    assert f"a.toml, line {line}: " in str(info.value) and message in str(info.value)
