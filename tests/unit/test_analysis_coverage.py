"""Backup coverage: uncovered keys alarm, how far ahead keys exist, the HSM layer's files."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from appliance.analysis import coverage
from appliance.analysis.errors import InputFormatError
from appliance.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "analysis" / "coverage"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def test_a_key_made_after_the_last_backup_is_uncovered() -> None:
    keys = coverage.read_inventory(DATA / "inventory.json")
    backups = [
        coverage.read_manifest(DATA / "backup-2026-09.json"),
        coverage.read_manifest(DATA / "backup-2025-12.json"),
    ]
    rep = coverage.report(keys, backups, now=NOW)
    status = {k.key.label: k.backups for k in rep.keys}
    assert status["ksk-2026"] == ("backup-2026-09",)  # the 2025 backup predates the key
    assert status["zsk-2027-q1"] == ("backup-2026-09",)
    assert status["zsk-2027-q2"] == ()  # made in November, after the September backup
    uncovered = rep.uncovered[0]
    assert uncovered.note == "backup-2025-12 holds an older key with this label"
    assert rep.keys_until == datetime(2027, 7, 1, tzinfo=UTC)
    assert rep.covered_until == datetime(2027, 4, 1, tzinfo=UTC)  # zsk-2027-q2 starts then
    advice = "\n".join(rep.advice())
    assert "ALARM: 1 key(s) in no backup: zsk-2027-q2" in advice
    assert "Keys exist only 208d 12h ahead" in advice
    assert "pre-generate the keys for the next 365d" in advice


def test_after_a_new_backup_everything_is_covered(tmp_path: Path) -> None:
    keys = coverage.read_inventory(DATA / "inventory.json")
    fresh = tmp_path / "backup-2026-12.json"
    fresh.write_text(
        json.dumps(
            {
                "format": "appliance-backup-coverage/1",
                "id": "b-2026-12",
                "created": "2026-12-04T10:00:00Z",
                "keys": [k.label for k in keys],
            }
        )
    )
    rep = coverage.report(
        keys, [coverage.read_manifest(fresh)], now=NOW, period=timedelta(days=180)
    )
    assert not rep.uncovered
    assert rep.covered_until == rep.keys_until
    assert rep.advice()[0].startswith("Every key is in a backup")


def test_cli_coverage_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "coverage",
        "--inventory",
        str(DATA / "inventory.json"),
        "--manifest",
        str(DATA / "backup-2026-09.json"),
        "--now",
        "2026-12-04T12:00Z",
    ]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "zsk-2027-q2" in out and "NONE" in out and "ALARM" in out
    assert main([*args, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert [k["label"] for k in doc["keys"] if not k["covered"]] == ["zsk-2027-q2"]


def test_reads_the_hsm_layers_inventory_and_backup(tmp_path: Path) -> None:
    """The HSM layer's own JSON (built with its own serialiser, so a format change shows)."""
    from appliance.hsm.backup import FORMAT, BackupEntry

    def entry(label: str, key_id: bytes) -> BackupEntry:
        return BackupEntry(
            label=label,
            id=key_id,
            type="ecdsa-p256",
            algorithm=13,
            public_key_der=b"\x30\x00",
            key_tags={"257": 1, "256": 2},
            created=date(2026, 11, 1),
            blob=f"blobs/{key_id.hex()}.bin",
            blob_sha256="00" * 32,
        )

    backup_dir = tmp_path / "KSK-20261201T110000Z"
    backup_dir.mkdir()
    manifest = {
        "format": FORMAT,
        "version": 1,
        "created": "2026-12-01T11:00:00Z",
        "keys": [entry("ksk-a", b"\x01").to_json(), entry("zsk-b", b"\x02").to_json()],
        "not_covered": [],
    }
    (backup_dir / "manifest.json").write_text(json.dumps({"manifest": manifest, "signature": "00"}))
    inventory = tmp_path / "inventory.json"
    inventory.write_text(
        json.dumps(
            {
                "token": "KSK",
                "latest_backup": None,
                "keys": [
                    {"label": "ksk-a", "id": "01", "created": "2026-11-01", "covered": False},
                    {"label": "zsk-b", "id": "02", "created": "2026-11-01", "covered": False},
                    {"label": "zsk-b", "id": "03", "created": "2026-12-02", "covered": False},
                    {"label": "ceremony", "id": "04", "created": None, "covered": False},
                ],
            }
        )
    )
    keys = coverage.read_inventory(inventory)
    rep = coverage.report(keys, [coverage.read_manifest(backup_dir)], now=NOW)
    by_id = {k.key.id: k for k in rep.keys}
    assert by_id["01"].backups == ("KSK-20261201T110000Z",)
    assert by_id["02"].covered
    assert not by_id["03"].covered  # same label, another key: matched by id
    assert not by_id["04"].covered


def test_inventory_covered_flag_names_the_latest_backup(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.json"
    inventory.write_text(
        json.dumps(
            {
                "token": "KSK",
                "latest_backup": "KSK-20261201T110000Z",
                "keys": [{"label": "k", "id": "01", "created": "2026-11-01", "covered": True}],
            }
        )
    )
    rep = coverage.report(coverage.read_inventory(inventory), [], now=NOW)
    assert rep.keys[0].backups == ("KSK-20261201T110000Z",)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("{}", 'not a key inventory (no "keys" list)'),
        ('{"keys": [{"created": "2026-01-01"}]}', "keys[0] has no label"),
        ('{"keys": [{"label": "k", "created": "yesterday"}]}', "'yesterday', not an ISO 8601"),
        ("{", "not valid JSON"),
    ],
)
def test_bad_inventory_is_named(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "inv.json"
    path.write_text(text)
    with pytest.raises(InputFormatError) as err:
        coverage.read_inventory(path)
    assert needle in str(err.value)
