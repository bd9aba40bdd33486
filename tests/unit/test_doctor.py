from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_doctor(
    tmp_path: Path, module: str, extra_env: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    media = tmp_path / "media"
    media.mkdir(exist_ok=True)
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(
        f'[paths]\nmedia = "{media}"\n[hsm]\nmodule = "{module}"\n[airgap]\nrequired = false\n'
    )
    env = {**os.environ, **extra_env}
    proc = subprocess.run(
        [sys.executable, "-m", "appliance", "--config", str(cfg), "doctor", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=ROOT,
    )
    assert "Traceback" not in proc.stderr
    report = json.loads(proc.stdout)
    return proc.returncode, {c["name"]: c for c in report["checks"]}


def test_pcscd_stopped_is_a_fail_with_the_fix(tmp_path: Path) -> None:
    # The pyscard client honours PCSCLITE_CSOCK_NAME: a socket nobody listens on is a stopped pcscd.
    code, checks = run_doctor(
        tmp_path,
        "/usr/lib/softhsm/libsofthsm2.so",
        {"PCSCLITE_CSOCK_NAME": str(tmp_path / "no-pcscd.comm")},
    )
    assert code == 1
    assert checks["pcscd"]["status"] == "FAIL"
    assert "pcscd is not reachable" in checks["pcscd"]["detail"]
    assert "pcscd --foreground" in checks["pcscd"]["fix"]


def test_missing_pkcs11_module_is_a_fail_with_the_fix(tmp_path: Path) -> None:
    code, checks = run_doctor(
        tmp_path, str(tmp_path / "nope.so"), {"PCSCLITE_CSOCK_NAME": str(tmp_path / "x")}
    )
    assert code == 1
    assert checks["pkcs11"]["status"] == "FAIL"
    assert "does not exist" in checks["pkcs11"]["detail"]
    assert "softhsm2" in checks["pkcs11"]["fix"]


def test_every_check_reports_and_text_mode_shows_fixes(tmp_path: Path) -> None:
    code, checks = run_doctor(
        tmp_path, "/nonexistent.so", {"PCSCLITE_CSOCK_NAME": str(tmp_path / "x")}
    )
    assert set(checks) == {
        "python",
        "packages",
        "pcscd",
        "pkcs11",
        "printer",
        "airgap",
        "media",
        "clock",
    }
    assert checks["python"]["status"] == "OK"
    assert checks["packages"]["status"] == "OK"
    assert checks["media"]["status"] == "OK"
    assert checks["printer"]["status"] == "WARN"


def test_render_puts_the_fix_under_the_line() -> None:
    from appliance.doctor import CheckResult, render

    text = render(
        [CheckResult("pcscd", "FAIL", "down", "start it"), CheckResult("clock", "OK", "t")]
    )
    lines = text.splitlines()
    assert lines[0].startswith("FAIL  pcscd") and lines[1].strip() == "-> start it"
    assert lines[2].startswith("OK    clock")


def test_broken_pipe_is_not_an_internal_error(tmp_path: Path) -> None:
    cfg = tmp_path / "a.toml"
    cfg.write_text('[hsm]\nmodule = "/x.so"\n')
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone, as with `| head`
    proc = subprocess.run(
        [sys.executable, "-m", "appliance", "--config", str(cfg), "doctor"],
        stdout=write_end,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
        cwd=ROOT,
    )
    os.close(write_end)
    assert proc.returncode == 1
    assert proc.stderr == ""
