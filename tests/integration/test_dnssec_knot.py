"""Interop with Knot DNS 3.2 (offline KSK): Knot's KSR -> `appliance ksr sign` -> Knot.

keymgr pregenerate + generate-ksr (under faketime) -> our SKR -> keymgr validate-skr (its
exit code lies: stderr must be empty) -> import-skr -> kzonesign at every SKR slot ->
kzonecheck --dnssec on and ldns-verify-zone -k <our KSK DNSKEY> at every slot.
Lifetimes are long (ZSK 60-120 days, RRSIG 30 days refreshed every 20) so that a year has
few slots and the test stays quick.
"""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.dnssec import formats
from appliance.dnssec.publish import publish
from appliance.dnssec.signer import SoftwareKeySigner
from tests.support.knot import KnotZsk
from tests.support.softhsm import SoftHsm

ZONE = "interop.example."


def _hsm_ksk(softhsm: SoftHsm, tmp_path: Path, algorithm: int) -> tuple[Path, str, bytes]:
    """A fresh token with one KSK; returns the appliance config, the label, the DNSKEY key."""
    from appliance.hsm import keygen

    token = f"{tmp_path.name[-20:]}-{algorithm}"
    softhsm.init_token(token)
    label = f"ksk-{algorithm}"
    with softhsm.open(token) as session:
        made = keygen.generate_key(
            session, algorithm, role="ksk", zone=ZONE, label=label, allow_uncoverable=True
        )
        dnskey_key = made.key.dnskey_public_key
    return softhsm.config_file(tmp_path, token), label, dnskey_key


@pytest.mark.parametrize(
    ("algorithm", "days", "zsk_lifetime"),
    [(13, 90, "40d"), (13, 365, "120d"), (8, 90, "40d"), (8, 365, "120d")],
    ids=["p256-90d", "p256-365d", "rsa2048-90d", "rsa2048-365d"],
)
def test_knot_ksr_signed_with_the_ksk_in_softhsm_serves_a_valid_zone_at_every_slot(
    tmp_path: Path,
    softhsm: SoftHsm,
    capsys: pytest.CaptureFixture[str],
    algorithm: int,
    days: int,
    zsk_lifetime: str,
) -> None:
    config, label, dnskey_key = _hsm_ksk(softhsm, tmp_path, algorithm)
    knot = KnotZsk(
        tmp_path / "zsk",
        ZONE,
        algorithm,
        zsk_lifetime=zsk_lifetime,
        rrsig_lifetime="30d",
        rrsig_refresh="10d",
    )
    start = (int(time.time()) // 3600) * 3600
    ksr = tmp_path / "interop.ksr"
    ksr.write_bytes(knot.make_ksr(start, days))
    zones = tmp_path / "zones.toml"
    zones.write_text(
        f'[zone."{ZONE}"]\nksk = ["{label}"]\nalgorithms = [{algorithm}]\n'
        'rrsig_lifetime = "30d"\nrrsig_refresh = "10d"\ncds_cdnskey = true\n'
        'max_bundle_interval = "180d"\n'
    )
    read_end, write_end = os.pipe()  # the PIN through a file descriptor, never argv
    os.write(write_end, softhsm.pin() + b"\n")
    os.close(write_end)
    out = tmp_path / "out"
    try:
        assert (
            main(
                [
                    "--config",
                    str(config),
                    "ksr",
                    "sign",
                    "--zones",
                    str(zones),
                    "--out",
                    str(out),
                    "--pin-fd",
                    str(read_end),
                    str(ksr),
                ]
            )
            == 0
        )
    finally:
        os.close(read_end)
    skr_path = out / "interop.skr"
    skr, _ = formats.load_document(skr_path)
    assert {k.public_key for b in skr.bundles for k in b.keys if k.is_ksk} == {dnskey_key}

    check = knot.validate_skr(skr_path)
    assert check.stderr == "", check.stderr
    knot.import_skr(skr_path)

    ksk_file = tmp_path / "ksk.key"
    ksk_file.write_text(
        f"{ZONE} 3600 IN DNSKEY 257 3 {algorithm} {base64.b64encode(dnskey_key).decode()}\n"
    )
    # The published DNSKEY/DS come from the same HSM key.
    read_end, write_end = os.pipe()
    os.write(write_end, softhsm.pin() + b"\n")
    os.close(write_end)
    try:
        assert (
            main(
                [
                    "--config",
                    str(config),
                    "ksr",
                    "publish",
                    "--zone",
                    ZONE,
                    "--label",
                    label,
                    "--pin-fd",
                    str(read_end),
                    "--ttl",
                    "3600",
                ]
            )
            == 0
        )
    finally:
        os.close(read_end)
    printed = capsys.readouterr().out
    assert base64.b64encode(dnskey_key).decode() in printed.replace(" ", "")
    assert f"{ZONE} 86400 IN DS " in printed

    problems: list[str] = []
    for bundle in skr.bundles:
        when = int(bundle.inception.timestamp()) + 60
        signed = knot.sign_at(when)
        assert f"DNSKEY\t257 3 {algorithm}" in signed.read_text()
        problems += knot.zone_checks(signed, when, ksk_file)
    assert problems == []
    assert len(skr.bundles) >= days // 20


def _software_sign(tmp_path: Path, days: int) -> tuple[KnotZsk, SoftwareKeySigner, Path]:
    """Knot's KSR for `days`, signed by `appliance ksr sign --software-ksk`: (knot, KSK, SKR)."""
    knot = KnotZsk(
        tmp_path / "zsk", ZONE, 13, zsk_lifetime="40d", rrsig_lifetime="30d", rrsig_refresh="10d"
    )
    start = (int(time.time()) // 3600) * 3600
    ksr = tmp_path / "interop.ksr"
    ksr.write_bytes(knot.make_ksr(start, days))
    ksk = SoftwareKeySigner.generate(13)
    pem = tmp_path / "ksk.pem"
    pem.write_bytes(ksk.to_pem())
    zones = tmp_path / "zones.toml"
    zones.write_text(
        f'[zone."{ZONE}"]\nksk = ["ksk1"]\nalgorithms = [13]\n'
        'rrsig_lifetime = "30d"\nrrsig_refresh = "10d"\n'
    )
    out = tmp_path / "out"
    argv = ["ksr", "sign", "--zones", str(zones), "--out", str(out)]
    assert main([*argv, "--software-ksk", f"ksk1={pem}", str(ksr)]) == 0
    return knot, ksk, out / "interop.skr"


def test_knot_interop_with_a_software_ksk(tmp_path: Path) -> None:
    """The labs path (--software-ksk) produces the same interoperable SKR."""
    knot, ksk, skr_path = _software_sign(tmp_path, 60)
    assert knot.validate_skr(skr_path).stderr == ""
    knot.import_skr(skr_path)
    ksk_file = tmp_path / "ksk.key"
    ksk_file.write_text(publish(ZONE, ksk).dnskey_text(3600) + "\n")
    skr, _ = formats.load_document(skr_path)
    problems: list[str] = []
    for bundle in skr.bundles:
        when = int(bundle.inception.timestamp()) + 60
        problems += knot.zone_checks(knot.sign_at(when), when, ksk_file)
    assert problems == []


def test_a_corrupted_skr_is_caught_by_validate_skr_stderr(tmp_path: Path) -> None:
    """The check above is meaningful: Knot reports a bad signature on stderr (exit 0)."""
    knot, _, skr_path = _software_sign(tmp_path, 30)
    skr = skr_path.read_text().splitlines()
    index = next(i for i, line in enumerate(skr) if " RRSIG DNSKEY " in line) + 2
    line = skr[index]
    skr[index] = line[:-3] + ("A" if line[-3] != "A" else "B") + line[-2:]
    bad = tmp_path / "bad.skr"
    bad.write_text("\n".join(skr) + "\n")
    check = knot.validate_skr(bad)
    assert "invalid" in check.stderr
