"""Native HSM activation (`[hsm] activation = "native"`): the HSM runs its own quorum on its
PED; the appliance reads the steps, records which officers confirmed, and logs in through
the token's protected authentication path.

SoftHSM has no protected authentication path, so `Token.open_protected()` is shown to refuse
it clearly, and the engine flow runs against a PED stand-in whose `open_protected()` opens a
real SoftHSM session with the test PIN (so later steps really use the HSM).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appliance.ceremony import journal
from appliance.ceremony.actions import hsm as hsm_actions
from appliance.ceremony.answers import Answers, AnswersOperator
from appliance.ceremony.context import Services
from appliance.ceremony.engine import Engine
from appliance.ceremony.loader import load_script
from appliance.ceremony.operator import StepView
from appliance.ceremony.registry import default_registry
from appliance.config import load_config
from appliance.errors import HsmError
from tests.support.softhsm import SoftHsm

SCRIPT = """
[ceremony]
id = "native-activation"
title = "Native activation test"
version = "1.0"
kind = "key-generation"

[roles]
CA = 1
IW = 1
CO = 2

[[act]]
id = "main"
title = "Act 1: Activate and generate"

[[act.step]]
id = "activate"
title = "Activate the HSM with its own quorum"
roles = ["CO"]
say = "The crypto officers present their credentials to the HSM's PED."
action = "hsm.activate"
params = { quorum = 2 }

[[act.step]]
id = "generate-ksk"
title = "Generate the KSK"
roles = ["CA"]
say = "I generate the KSK in the HSM."
action = "hsm.generate_key"
params = { algorithm = "ECDSAP256SHA256", purpose = "ksk", zone = "." }
"""

PEOPLE = {"CA": "Alice", "IW": "Ian", "CO1": "Carol", "CO2": "Chris", "CO3": "Cleo"}


class PowerCut(BaseException):
    """Stands for the process dying: nothing in the engine catches it."""


class PedToken:
    """A token with a PED, standing in for real hardware: `open_protected()` logs in on the
    SoftHSM token with the test PIN (what the PED's quorum would do inside the HSM)."""

    def __init__(self, softhsm: SoftHsm, label: str) -> None:
        from appliance.hsm.pkcs11_adapter import Token

        self._real = Token(softhsm.module, label=label)
        self._softhsm = softhsm
        self.logins = 0

    @property
    def info(self) -> Any:
        return self._real.info

    def open_protected(self, *, rw: bool = True) -> Any:
        self.logins += 1
        pin = self._softhsm.pin()
        try:
            return self._real.open(pin, rw=rw)
        finally:
            pin[:] = bytes(len(pin))


def _world(softhsm: SoftHsm, folder: Path, label: str) -> tuple[Path, Path, bytes]:
    from appliance.hsm import keygen
    from appliance.hsm.pkcs11_adapter import Token

    softhsm.init_token(label, replace=True)
    with Token(softhsm.module, label=label).open(softhsm.pin()) as session:
        public = keygen.generate_ceremony_key(session).public_key_der()
    config = folder / "appliance.toml"
    config.write_text(
        f'[hsm]\nmodule = "{softhsm.module}"\ntoken = "{label}"\nactivation = "native"\n\n'
        f'[paths]\nmedia = "{folder / "media"}"\nworkspace = "{folder / "ws"}"\n',
        encoding="utf-8",
    )
    script = folder / "native-activation.toml"
    script.write_text(SCRIPT, encoding="utf-8")
    (folder / "root/sys/class/net/lo").mkdir(parents=True)
    return config, script, public


def _engine(
    folder: Path, config: Path, script: Path, operator: AnswersOperator, ws: Path
) -> Engine:
    registry = default_registry()
    return Engine(
        load_script(script, registry),
        registry,
        operator,
        ws,
        config=load_config(config),
        services=Services(airgap_root=folder / "root"),
    )


@pytest.fixture
def ped(softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    label = f"native-{tmp_path.name[-24:]}"
    config, script, public = _world(softhsm, tmp_path, label)
    token = PedToken(softhsm, label)
    monkeypatch.setattr(hsm_actions, "_token", lambda ctx: token)
    yield token, config, script, public
    softhsm.delete_all(label)


def test_open_protected_on_softhsm_says_to_use_pin_quorum(softhsm: SoftHsm) -> None:
    from appliance.hsm.pkcs11_adapter import Token

    softhsm.init_token("native-no-ped", replace=True)
    try:
        token = Token(softhsm.module, label="native-no-ped")
        assert not token.info.flags & 0x100  # SoftHSM: no CKF_PROTECTED_AUTHENTICATION_PATH
        with pytest.raises(HsmError) as caught:
            token.open_protected()
        assert "no protected authentication path" in caught.value.message
        assert "PED" in caught.value.message
        assert 'activation = "pin-quorum"' in caught.value.hint
    finally:
        softhsm.delete_all("native-no-ped")


def test_officers_confirm_then_the_hsm_logs_in_and_keys_are_generated(
    ped: Any, tmp_path: Path
) -> None:
    token, config, script, public = ped
    operator = AnswersOperator(Answers(attendance=PEOPLE))
    outcome = _engine(tmp_path, config, script, operator, tmp_path / "ws").run()
    assert outcome.status == "ended", "\n".join(operator.transcript[-15:])
    assert token.logins == 1
    v = journal.verify(outcome.journal, public)  # signed by the ceremony key found after login
    assert v.state.outcome == "ended" and v.unsigned_tail == 0 and v.signatures
    results = {e.step: e.data["result"] for e in v.state.entries if e.kind == "action"}
    activated = results["activate"]
    assert activated["mode"] == "native"
    assert activated["confirmed"] == ["CO1", "CO2"]  # quorum 2: CO3 is not asked
    assert activated["token"] == token.info.label
    assert activated["token_serial"] == token.info.serial
    assert activated["ceremony_key"] is not None
    assert results["generate-ksk"]["algorithm"] == 13
    text = "\n".join(operator.transcript)
    assert "runs its own quorum" in text
    assert "CO1 confirms: CO1, confirm that you presented your credential" in text
    assert "CO3 confirms: CO3, confirm that you presented" not in text


def test_an_officer_declining_fails_the_step_and_nothing_is_logged_in(
    ped: Any, tmp_path: Path
) -> None:
    token, config, script, _ = ped
    answers = Answers(attendance=PEOPLE, steps={"activate": {"confirm": False}})
    operator = AnswersOperator(answers)
    outcome = _engine(tmp_path, config, script, operator, tmp_path / "ws").run()
    assert outcome.status != "ended"
    assert token.logins == 0
    state = journal.read(outcome.journal)
    ok = {e.step for e in state.entries if e.kind == "action" and e.data.get("ok")}
    assert "activate" not in ok and "generate-ksk" not in ok
    text = "\n".join(operator.transcript)
    assert "CO1 did not confirm their part of the HSM's own quorum" in text
    assert "the appliance did not log in" in text


def test_after_a_power_cut_the_resumed_run_asks_the_officers_again(
    ped: Any, tmp_path: Path
) -> None:
    token, config, script, public = ped

    class CutBeforeGenerate(AnswersOperator):
        def begin_step(self, view: StepView) -> None:
            if view.step_id == "generate-ksk":
                raise PowerCut
            super().begin_step(view)

    first = CutBeforeGenerate(Answers(attendance=PEOPLE))
    with pytest.raises(PowerCut):
        _engine(tmp_path, config, script, first, tmp_path / "ws").run()
    assert token.logins == 1
    second = AnswersOperator(Answers(attendance=PEOPLE))
    outcome = _engine(tmp_path, config, script, second, tmp_path / "ws").run()
    assert outcome.status == "ended", "\n".join(second.transcript[-15:])
    assert token.logins == 2  # the session was re-established through the PED
    text = "\n".join(second.transcript)
    assert "CO2 confirms: CO2, confirm that you presented your credential" in text
    v = journal.verify(outcome.journal, public)
    generated = [e for e in v.state.entries if e.kind == "action" and e.step == "generate-ksk"]
    assert generated and generated[-1].data["result"]["algorithm"] == 13
