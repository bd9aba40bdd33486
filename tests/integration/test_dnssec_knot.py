"""Interop with Knot DNS 3.2 (offline KSK): Knot's KSR -> `appliance ksr sign` -> Knot.

keymgr pregenerate + generate-ksr (under faketime) -> our SKR -> keymgr validate-skr (its
exit code lies: stderr must be empty) -> import-skr -> kzonesign at every SKR slot ->
kzonecheck --dnssec on and ldns-verify-zone -k <our KSK DNSKEY> at every slot.
Lifetimes are long (ZSK 60-120 days, RRSIG 30 days refreshed every 20) so that a year has
few slots and the test stays quick.
"""

from __future__ import annotations

import base64
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


@pytest.mark.parametrize(
    ("algorithm", "days", "zsk_lifetime"),
    [(13, 90, "40d"), (13, 365, "120d"), (8, 90, "40d"), (8, 365, "120d")],
    ids=["p256-90d", "p256-365d", "rsa2048-90d", "rsa2048-365d"],
)
def test_knot_ksr_signed_by_us_serves_a_valid_zone_at_every_slot(
    tmp_path: Path, algorithm: int, days: int, zsk_lifetime: str
) -> None:
    knot = KnotZsk(tmp_path / "zsk", ZONE, algorithm, zsk_lifetime=zsk_lifetime,
                   rrsig_lifetime="30d", rrsig_refresh="10d")
    start = (int(time.time()) // 3600) * 3600
    ksr = tmp_path / "interop.ksr"
    ksr.write_bytes(knot.make_ksr(start, days))

    ksk = SoftwareKeySigner.generate(algorithm)
    pem = tmp_path / "ksk.pem"
    pem.write_bytes(ksk.to_pem())
    zones = tmp_path / "zones.toml"
    zones.write_text(
        f'[zone."{ZONE}"]\nksk = ["ksk1"]\nalgorithms = [{algorithm}]\n'
        'rrsig_lifetime = "30d"\nrrsig_refresh = "10d"\ncds_cdnskey = true\n'
        'max_bundle_interval = "180d"\n'
    )
    out = tmp_path / "out"
    assert main(["ksr", "sign", "--zones", str(zones), "--out", str(out),
                 "--software-ksk", f"ksk1={pem}", str(ksr)]) == 0
    skr_path = out / "interop.skr"
    skr, _ = formats.load_document(skr_path)

    check = knot.validate_skr(skr_path)
    assert check.stderr == "", check.stderr
    knot.import_skr(skr_path)

    ksk_file = tmp_path / "ksk.key"
    ksk_file.write_text(publish(ZONE, ksk).dnskey_text(3600) + "\n")
    problems: list[str] = []
    for bundle in skr.bundles:
        when = int(bundle.inception.timestamp()) + 60
        signed = knot.sign_at(when)
        text = signed.read_text()
        assert "DNSKEY\t257" in text or "DNSKEY 257" in text
        problems += knot.zone_checks(signed, when, ksk_file)
    assert problems == []
    assert len(skr.bundles) >= days // 20


def test_a_corrupted_skr_is_caught_by_validate_skr_stderr(tmp_path: Path) -> None:
    """The check above is meaningful: Knot reports a bad signature on stderr (exit 0)."""
    knot = KnotZsk(tmp_path / "zsk", ZONE, 13, zsk_lifetime="40d", rrsig_lifetime="30d",
                   rrsig_refresh="10d")
    start = (int(time.time()) // 3600) * 3600
    ksr = tmp_path / "interop.ksr"
    ksr.write_bytes(knot.make_ksr(start, 30))
    ksk = SoftwareKeySigner.generate(13)
    pem = tmp_path / "ksk.pem"
    pem.write_bytes(ksk.to_pem())
    zones = tmp_path / "zones.toml"
    zones.write_text(f'[zone."{ZONE}"]\nksk = ["ksk1"]\nalgorithms = [13]\n'
                     'rrsig_lifetime = "30d"\nrrsig_refresh = "10d"\n')
    out = tmp_path / "out"
    assert main(["ksr", "sign", "--zones", str(zones), "--out", str(out),
                 "--software-ksk", f"ksk1={pem}", str(ksr)]) == 0
    skr = (out / "interop.skr").read_text().splitlines()
    index = next(i for i, line in enumerate(skr) if " RRSIG DNSKEY " in line) + 2
    line = skr[index]
    skr[index] = line[:-3] + ("A" if line[-3] != "A" else "B") + line[-2:]
    bad = tmp_path / "bad.skr"
    bad.write_text("\n".join(skr) + "\n")
    check = knot.validate_skr(bad)
    assert "invalid" in check.stderr


@pytest.mark.parametrize("algorithm", [13, 8], ids=["p256", "rsa2048"])
def test_knot_interop_with_the_ksk_in_softhsm(
    tmp_path: Path, softhsm: SoftHsm, monkeypatch: pytest.MonkeyPatch, algorithm: int
) -> None:
    """The production path: `appliance ksr sign` opens the token named in the config."""
    from appliance.hsm import keygen

    token = f"dnssec-{algorithm}"
    softhsm.init_token(token)
    with softhsm.open(token) as session:
        made = keygen.generate_key(session, algorithm, role="ksk", zone=ZONE,
                                   label=f"ksk-{algorithm}", allow_uncoverable=True)
        dnskey_key = made.key.dnskey_public_key
    config = softhsm.config_file(tmp_path, token)
    knot = KnotZsk(tmp_path / "zsk", ZONE, algorithm, zsk_lifetime="40d",
                   rrsig_lifetime="30d", rrsig_refresh="10d")
    start = (int(time.time()) // 3600) * 3600
    ksr = tmp_path / "interop.ksr"
    ksr.write_bytes(knot.make_ksr(start, 90))
    zones = tmp_path / "zones.toml"
    zones.write_text(f'[zone."{ZONE}"]\nksk = ["ksk-{algorithm}"]\nalgorithms = [{algorithm}]\n'
                     'rrsig_lifetime = "30d"\nrrsig_refresh = "10d"\n')
    monkeypatch.setenv("APPLIANCE_HSM_PIN", softhsm.pin().decode())
    out = tmp_path / "out"
    assert main(["--config", str(config), "ksr", "sign", "--zones", str(zones), "--out",
                 str(out), str(ksr)]) == 0
    skr_path = out / "interop.skr"
    assert knot.validate_skr(skr_path).stderr == ""
    knot.import_skr(skr_path)
    skr, _ = formats.load_document(skr_path)
    ksk_keys = {k.public_key for b in skr.bundles for k in b.keys if k.is_ksk}
    assert ksk_keys == {dnskey_key}
    ksk_file = tmp_path / "ksk.key"
    ksk_file.write_text(f"{ZONE} 3600 IN DNSKEY 257 3 {algorithm} "
                        f"{base64.b64encode(dnskey_key).decode()}\n")
    problems: list[str] = []
    for bundle in skr.bundles:
        when = int(bundle.inception.timestamp()) + 60
        problems += knot.zone_checks(knot.sign_at(when), when, ksk_file)
    assert problems == []
