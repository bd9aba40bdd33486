"""`appliance run` and `appliance verify journal` on the library's rehearsal script."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_exercise_runs_headless_and_its_journal_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "root/sys/class/net/lo").mkdir(parents=True)
    (tmp_path / "practice.txt").write_text("practice input\n")
    config = tmp_path / "appliance.toml"
    config.write_text('[hsm]\nmodule = "/usr/lib/softhsm/libsofthsm2.so"\n')
    answers = tmp_path / "answers.toml"
    answers.write_text(
        '[attendance]\nCA = "Alice"\nIW = "Ian"\nSSC1 = "Sam"\nSSC2 = "Sue"\n'
        '[steps.bag]\nconfirm = false\nexception = "Bag number misread, corrected."\n'
    )
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "dev-key.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pub = tmp_path / "pub.pem"
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    ws = tmp_path / "ws"
    argv = [
        "--config",
        str(config),
        "run",
        str(ROOT / "scripts/exercise.toml"),
        "--workspace",
        str(ws),
        "--answers",
        str(answers),
        "--airgap-root",
        str(tmp_path / "root"),
        "--signing-key",
        str(pem),
        "--input",
        f"practice={tmp_path / 'practice.txt'}",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "[3/5] load-input: Load a file and read its hash aloud" in out
    assert "Ceremony exercise ENDED" in out and "3 exception(s)" in out
    assert main(["verify", "journal", str(ws / "journal.jsonl"), "--pubkey", str(pub)]) == 0
    report = capsys.readouterr().out
    assert "ceremony ENDED" in report
    assert "bag: EXCEPTION by IW: Bag number misread, corrected." in report
    assert "load-input: done, confirmed by CA (Alice)" in report
    # A second run on the finished workspace refuses, saying why.
    assert main(argv) == 1
    assert "holds a finished ceremony" in capsys.readouterr().err


def test_run_needs_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(ROOT / "scripts/exercise.toml"), "--workspace", str(tmp_path)]) == 2
    assert "needs --answers" in capsys.readouterr().err


def test_run_refuses_a_script_whose_layer_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from appliance.ceremony import registry as registry_module

    def without_hsm() -> registry_module.Registry:
        from appliance.ceremony.actions import basic
        from appliance.ceremony.actions.schemas import SPECS

        reg = registry_module.Registry()
        reg.declare_all(SPECS)
        basic.bind(reg)
        return reg

    monkeypatch.setattr(registry_module, "default_registry", without_hsm)
    config = tmp_path / "appliance.toml"
    config.write_text('[hsm]\nmodule = "/usr/lib/softhsm/libsofthsm2.so"\n')
    answers = tmp_path / "answers.toml"
    answers.write_text('[attendance]\nCA = "A"\n')
    code = main(
        [
            "--config",
            str(config),
            "run",
            str(ROOT / "scripts/backup.toml"),
            "--workspace",
            str(tmp_path / "ws"),
            "--answers",
            str(answers),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "step 'activate' (line" in err and "hsm.activate, which waits for appliance.hsm" in err
    assert not (tmp_path / "ws/journal.jsonl").exists()
