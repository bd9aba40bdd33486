"""Bad input at the HSM: clear errors, no loops, nothing half-done."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.hsm import module as hsm_module
from appliance.hsm.errors import ModuleLoadError, PinError, TokenNotFound
from appliance.hsm.pkcs11_adapter import Token
from tests.support.softhsm import SoftHsm


def test_wrong_module_path(softhsm: SoftHsm, tmp_path: Path) -> None:
    with pytest.raises(ModuleLoadError, match="does not exist"):
        Token(tmp_path / "libnothing.so", label="x")
    fake = tmp_path / "libfake.so"
    fake.write_bytes(b"not a shared object")
    with pytest.raises(ModuleLoadError, match="failed to load"):
        hsm_module.survey(fake)


def test_no_such_token_lists_what_exists(softhsm: SoftHsm) -> None:
    softhsm.init_token("present")
    with pytest.raises(TokenNotFound, match="No token with label 'absent'.*present"):
        Token(softhsm.module, label="absent")
    with pytest.raises(TokenNotFound, match="serial 'ffff'"):
        Token(softhsm.module, serial="ffff")


def test_wrong_pin_reports_the_token_state_once(softhsm: SoftHsm) -> None:
    serial = softhsm.init_token("pin-check")
    token = Token(softhsm.module, serial=serial)
    with pytest.raises(PinError, match="did not accept the user PIN") as info:
        token.open(bytearray(b"wrong-pin"))
    assert "state" in info.value.fields
    assert "token state" in info.value.message
    assert "wrong-pin" not in str(info.value)
    with pytest.raises(TypeError):
        token.open("user-1234")  # type: ignore[arg-type]
    with token.open(softhsm.pin()) as session:
        assert session.info.serial == serial


def test_cli_wrong_pin_exits_1_without_retrying(
    softhsm: SoftHsm, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    softhsm.init_token("pin-cli")
    config = softhsm.config_file(tmp_path, "pin-cli")
    r, w = os.pipe()
    os.write(w, b"not-the-pin\n")
    os.close(w)
    try:
        code = main(["--config", str(config), "hsm", "inventory", "--pin-fd", str(r)])
    finally:
        os.close(r)
    err = capsys.readouterr().err
    assert code == 1
    assert "did not accept the user PIN" in err and "not-the-pin" not in err


def test_module_follows_a_changed_softhsm_conf(softhsm: SoftHsm, tmp_path: Path) -> None:
    """SoftHSM reads SOFTHSM2_CONF only at C_Initialize: load() re-initialises on a change."""
    softhsm.init_token("conf-check")
    other = tmp_path / "other.conf"
    (tmp_path / "tokens").mkdir()
    other.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\n", encoding="utf-8")
    os.environ["SOFTHSM2_CONF"] = str(other)
    try:
        labels = {t.label for t in hsm_module.survey(softhsm.module)}
        assert "conf-check" not in labels
    finally:
        os.environ["SOFTHSM2_CONF"] = str(softhsm.conf)
    assert "conf-check" in {t.label for t in hsm_module.survey(softhsm.module)}


def test_fixture_replaces_a_fixed_label(softhsm: SoftHsm) -> None:
    first = softhsm.init_token("fixed-label")
    second = softhsm.init_token("fixed-label", replace=True)
    serials = [t.serial for t in hsm_module.survey(softhsm.module) if t.label == "fixed-label"]
    assert serials == [second] and first != second
