from __future__ import annotations

import pytest

from appliance.hsm.errors import PinError
from appliance.hsm.pkcs11_adapter import Token
from tests.support.softhsm import USER_PIN, SoftHsm


def test_change_user_pin_then_only_the_new_pin_logs_in(softhsm: SoftHsm) -> None:
    label = "pin-change"
    softhsm.init_token(label, replace=True)
    new = bytearray(b"new-user-pin-4711")
    with Token(softhsm.module, label=label).open(bytearray(USER_PIN)) as session:
        session.change_user_pin(bytearray(USER_PIN), new)
    with pytest.raises(PinError):
        Token(softhsm.module, label=label).open(bytearray(USER_PIN)).close()
    Token(softhsm.module, label=label).open(bytearray(new)).close()


def test_a_wrong_old_pin_changes_nothing(softhsm: SoftHsm) -> None:
    label = "pin-change-wrong"
    softhsm.init_token(label, replace=True)
    with (
        Token(softhsm.module, label=label).open(bytearray(USER_PIN)) as session,
        pytest.raises(PinError, match="refused the PIN change"),
    ):
        session.change_user_pin(bytearray(b"not-the-pin"), bytearray(b"whatever-new"))
    Token(softhsm.module, label=label).open(bytearray(USER_PIN)).close()
