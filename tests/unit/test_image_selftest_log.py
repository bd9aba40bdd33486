"""The boot test's judge (image/lib/selftest_log.py) on serial logs shaped like real ones.

It must pass a good self-test and fail on each missing fact, even when the image's own
marker claims PASS (the boot test does not take the marker on trust).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "selftest_log", REPO / "image/lib/selftest_log.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sl = _load()


def _doctor(**status: str) -> str:
    names = ("python", "packages", "pcscd", "pkcs11", "printer", "airgap", "media", "clock")
    checks = [
        {"name": n, "status": status.get(n, "OK"), "detail": f"{n} detail", "fix": ""}
        for n in names
    ]
    return json.dumps({"config": "/etc/appliance/appliance.toml", "checks": checks})


def _log(
    interfaces: str = "lo",
    airgap_ok: bool = True,
    doctor: str | None = None,
    result: str = "PASS",
    cmdline: str = "boot=live nonetworking nopersistence appliance.selftest console=ttyS0",
    console_exit: str = "1",
    console_command: str = "appliance doctor",
    console_last: str = "OK    clock  2026-12-04 09:00:00 UTC",
) -> str:
    airgap = {
        "ok": airgap_ok,
        "interfaces": interfaces.split(),
        "radios_unblocked": [],
        "routes": [],
        "problems": [] if airgap_ok else ["network interface(s) present"],
    }
    return "\n".join(
        [
            "[    3.1] Run /init as init process",
            "SELFTEST begin",
            f"SELFTEST cmdline: {cmdline}",
            f"[   40.2] e1000 0000:00:03.0: probe\rSELFTEST interfaces: {interfaces}",
            f"SELFTEST airgap: {json.dumps(airgap)}",
            "SELFTEST doctor-exit: 1",
            f"SELFTEST doctor: {doctor or _doctor(pcscd='WARN', pkcs11='WARN', media='FAIL')}",
            f"SELFTEST console-command: {console_command}",
            f"SELFTEST console-exit: {console_exit}",
            "SELFTEST console-lines: 12",
            f"SELFTEST console-last: {console_last}",
            f"SELFTEST RESULT {result}",
            "[   61.0] reboot: Power down",
        ]
    )


def test_a_good_boot_passes() -> None:
    assert sl.judge(_log()) == []


def test_a_nic_fails_even_if_the_marker_says_pass() -> None:
    problems = sl.judge(_log(interfaces="lo eth0", airgap_ok=False))
    assert "network interfaces other than lo: lo eth0" in problems
    assert any(p.startswith("air-gap check failed") for p in problems)


def test_pcscd_not_answering_fails() -> None:
    problems = sl.judge(_log(doctor=_doctor(pcscd="FAIL")))
    assert problems == ["pcscd: pcscd detail"]


def test_pkcs11_module_not_loading_fails() -> None:
    assert sl.judge(_log(doctor=_doctor(pkcs11="FAIL"))) == ["pkcs11: pkcs11 detail"]


def test_missing_boot_parameter_fails() -> None:
    problems = sl.judge(_log(cmdline="boot=live nopersistence"))
    assert problems == ["kernel command line lacks nonetworking"]


def test_console_command_that_crashed_fails() -> None:
    problems = sl.judge(_log(console_exit="3"))
    assert len(problems) == 1 and "console command did not run" in problems[0]


def test_no_marker_and_no_start() -> None:
    cut = _log().split("SELFTEST RESULT")[0]
    assert sl.judge(cut) == ["no result marker (the self-test did not finish)"]
    assert sl.judge("[ 1.0] Kernel panic")[0].startswith("the self-test never started")


def test_image_verdict_fail_is_reported() -> None:
    assert sl.judge(_log(result="FAIL: console")) == ["the image's own verdict: FAIL: console"]


def test_cli(tmp_path: Path) -> None:
    good = tmp_path / "good.log"
    good.write_text(_log())
    bad = tmp_path / "bad.log"
    bad.write_text(_log(interfaces="lo ens3", airgap_ok=False))
    assert sl.main([str(good)]) == 0
    assert sl.main([str(bad)]) == 1
    assert sl.main([str(tmp_path / "missing.log")]) == 2


def test_the_tui_render_check_must_draw() -> None:
    tui = "appliance tui --check"
    drawn = "TUI RENDERED: StartScreen at 80x24 with 8 status rows"
    assert sl.judge(_log(console_command=tui, console_exit="0", console_last=drawn)) == []
    failed = sl.judge(_log(console_command=tui, console_exit="1", console_last="TUI RENDER FAILED"))
    assert len(failed) == 1 and "the TUI did not render" in failed[0]
    silent = sl.judge(_log(console_command=tui, console_exit="0", console_last="Traceback"))
    assert len(silent) == 1 and "the TUI did not render" in silent[0]
