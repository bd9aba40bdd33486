"""Coverage: keys made after the last backup are reported (CLI exit 1) until a new backup."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.hsm import backup, coverage, keygen, keys
from appliance.hsm.errors import BackupForAnotherToken, KeyNotCoverable
from tests.support.softhsm import USER_PIN, SoftHsm

WRAP_HEX = "5a" * 32


def _fd(data: bytes) -> int:
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return r


def _cli(config: Path, *args: str, wrapping: bool = False) -> int:
    fds = [_fd(USER_PIN + b"\n")]
    argv = ["--config", str(config), "hsm", args[0], "--pin-fd", str(fds[0]), *args[1:]]
    if wrapping:
        fds.append(_fd(WRAP_HEX.encode() + b"\n"))
        argv += ["--wrapping-key-fd", str(fds[1])]
    try:
        return main(argv)
    finally:
        for fd in fds:
            os.close(fd)


@pytest.fixture(scope="module")
def cov(softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    softhsm.init_token("cov")
    folder = tmp_path_factory.mktemp("cov")
    yield softhsm.config_file(folder, "cov")


def test_coverage_through_the_cli(cov: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(cov, "keygen", "--ceremony-key") == 0
    assert _cli(cov, "keygen", "--algorithm", "13", "--role", "ksk", "--zone", "example.") == 0
    capsys.readouterr()
    assert _cli(cov, "coverage") == 1  # nothing backed up yet
    assert "no verified backup" in capsys.readouterr().out

    assert _cli(cov, "backup", wrapping=True) == 0
    assert "covered: 2 key(s); locked now: 2" in capsys.readouterr().out
    assert _cli(cov, "coverage") == 0
    assert "OK: every key is covered" in capsys.readouterr().out

    # A ZSK made after the backup (an automatic rollover) is uncovered.
    assert _cli(cov, "keygen", "--algorithm", "13", "--role", "zsk", "--zone", "example.") == 0
    capsys.readouterr()
    assert _cli(cov, "coverage") == 1
    out = capsys.readouterr().out
    assert "UNCOVERED example-zsk-a13-" in out and "0 day(s) old" in out
    assert "created or changed after the latest backup" in out

    # A new backup covers it; the locked KSK is carried forward from the first backup.
    assert _cli(cov, "backup", wrapping=True) == 0
    capsys.readouterr()
    assert _cli(cov, "coverage") == 0
    capsys.readouterr()
    assert _cli(cov, "inventory", "--json") == 0
    listing = json.loads(capsys.readouterr().out)
    assert {k["role"] for k in listing["keys"]} == {"ceremony", "ksk", "zsk"}
    assert all(k["covered"] for k in listing["keys"])
    ksk = next(k for k in listing["keys"] if k["role"] == "ksk")
    assert isinstance(ksk["key_tag_257"], int) and isinstance(ksk["key_tag_256"], int)


def test_restore_through_the_cli(
    softhsm: SoftHsm, cov: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    backups_dir = cov.parent / "workspace" / "hsm-backups"
    latest = sorted(p for p in backups_dir.iterdir() if not p.name.startswith("."))[-1]
    serial = softhsm.init_token("cov-restored")
    config = softhsm.config_file(tmp_path, "cov-restored")
    try:
        # The backup is of token 'cov': refused for another label, nothing restored.
        assert _cli(config, "restore", str(latest), wrapping=True) == 1
        assert "not of 'cov-restored'" in capsys.readouterr().err
        with softhsm.open(serial=serial) as session:
            assert session.object_count() == 0
    finally:
        softhsm.delete_token("cov-restored", serial=serial)
    # A fresh token with the right label (chosen by serial: two tokens are called 'cov').
    serial = softhsm.init_token("cov")
    try:
        assert _cli(cov, "restore", str(latest), "--serial", serial, wrapping=True) == 0
        out = capsys.readouterr().out
        assert "Restored 3 key(s)" in out and out.count("signs verifiably") == 3
        with softhsm.open(serial=serial) as session:
            assert len(session.key_objects()) == 3
    finally:
        softhsm.delete_token("cov", serial=serial)


def test_uncovered_age_and_reason(softhsm: SoftHsm, tmp_path: Path) -> None:
    serial = softhsm.init_token("aging")
    with softhsm.open(serial=serial) as session:
        keygen.generate_ceremony_key(session)
        old = keygen.generate_key(
            session, 14, role="zsk", zone="example.", today=dt.date(2026, 1, 1)
        )
        report = coverage.check(session, tmp_path, today=dt.date(2026, 1, 31))
        assert not report.ok
        aged = next(u for u in report.uncovered if u.label == old.key.label)
        assert aged.age_days == 30 and aged.reason == "no backup of this token exists"


def test_pregeneration_backs_up_in_the_same_step(softhsm: SoftHsm, tmp_path: Path) -> None:
    serial = softhsm.init_token("pregen")
    key = bytearray(os.urandom(32))
    with softhsm.open(serial=serial) as session:
        keygen.generate_ceremony_key(session)
        plans = [
            keygen.Plan("example.", "zsk", 13, dt.date(2027, month, 1)) for month in (1, 4, 7, 10)
        ]
        made, result = keygen.pregenerate(session, plans, key, tmp_path)
        assert [g.key.label for g in made] == [
            f"example-zsk-a13-2027{m:02d}01" for m in (1, 4, 7, 10)
        ]
        assert {g.key.id for g in made} <= result.covered_ids
        assert coverage.check(session, tmp_path).ok
        with softhsm.open("aging") as other, pytest.raises(BackupForAnotherToken):
            coverage.check(other, tmp_path, backup_path=result.backup.path)
        before = len(session.key_objects())
        with pytest.raises(KeyNotCoverable, match="algorithm 15"):
            keygen.pregenerate(
                session, [keygen.Plan("example.", "zsk", 15, dt.date(2028, 1, 1))], key, tmp_path
            )
        assert len(session.key_objects()) == before
        # A damaged backup does not count: coverage says which and why.
        blob = next((result.backup.path / "blobs").iterdir())
        data = blob.read_bytes()
        blob.write_bytes(data[:-1] + bytes([data[-1] ^ 0x01]))
        report = coverage.check(session, tmp_path)
        assert not report.ok and "no backup of this token exists" in report.uncovered[0].reason
        assert report.skipped and result.backup.path.name in report.skipped[0]


def test_pregeneration_rolls_back_when_the_backup_fails(softhsm: SoftHsm, tmp_path: Path) -> None:
    serial = softhsm.init_token("pregen-fail")
    with softhsm.open(serial=serial) as session:
        # No ceremony key: the backup cannot be signed, so the generated keys must go.
        plans = [keygen.Plan("example.", "zsk", 13, dt.date(2027, 1, 1))]
        with pytest.raises(keys.KeyNotFound, match="no ceremony key"):
            keygen.pregenerate(session, plans, bytearray(os.urandom(32)), tmp_path)
        assert session.object_count() == 0
        assert backup.latest_backup(tmp_path, "pregen-fail", b"") is None


def test_init_through_the_cli(
    softhsm: SoftHsm, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = softhsm.config_file(tmp_path, "cli-made")
    so_fd, pin_fd = _fd(b"so-pin-99\n"), _fd(USER_PIN + b"\n")
    try:
        argv = ["--config", str(config), "hsm", "init", "--so-pin-fd", str(so_fd)]
        assert main([*argv, "--pin-fd", str(pin_fd)]) == 0
    finally:
        os.close(so_fd)
        os.close(pin_fd)
    assert "Token 'cli-made' initialised" in capsys.readouterr().out
    assert _cli(config, "keygen", "--ceremony-key") == 0
