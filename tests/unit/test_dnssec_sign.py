"""KSK publication, signing through the signer port, SKR writing, the `appliance ksr` CLI."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dns.dnssec
import dns.name
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import dns.rrset
import pytest

from appliance.cli import main
from appliance.dnssec import formats, writer
from appliance.dnssec.errors import SigningError
from appliance.dnssec.model import Document
from appliance.dnssec.policy import ZonePolicy
from appliance.dnssec.publish import publish, trust_anchor_xml
from appliance.dnssec.sign import Ksk, SignStats, knot_slots, sign_request
from appliance.dnssec.signer import DnssecPrivateKey, SoftwareKeySigner
from tests.support.knot import rollover_slots, synthetic_ksr

IANA = Path(__file__).resolve().parents[1] / "data" / "iana-root"
START = datetime(2027, 1, 1, tzinfo=UTC)


class RootKsk2017:
    """Only the public half of the root's KSK-2017, to test publication (it cannot sign)."""

    algorithm = 8
    dnskey_public_key = base64.b64decode(
        "AwEAAaz/tAm8yTn4Mfeh5eyI96WSVexTBAvkMgJzkKTOiW1vkIbzxeF3+/4RgWOq7HrxRixHlFlExOLAJr5e"
        "mLvN7SWXgnLh4+B5xQlNVz8Og8kvArMtNROxVQuCaSnIDdD5LKyWbRd2n9WGe2R8PzgCmr3EgVLrjyBxWezF"
        "0jLHwVN8efS3rCj/EWgvIWgb9tarpVUDK/b58Da+sqqls3eNbuv7pr+eoZG+SrDK6nWeL3c6H5Apxz7LjVc1"
        "uTIdsIXxuOLYA4/ilBmSVIzuDWfdRUfhHdY6+cn8HFRm+2hM8AnXGXws9555KrUB5qihylGa8subX2Nn6UwN"
        "R1AkUTV74bU="
    )

    def sign(self, data: bytes) -> bytes:
        raise AssertionError("not a signing key")


def test_publication_of_the_root_ksk_2017_matches_iana() -> None:
    pub = publish(".", RootKsk2017())
    assert pub.key_tag == 20326
    assert pub.ds[0] == (
        "20326 8 2 e06d44b80b8f1d39a95c0b0d7c65d08458e880409bbc683457104237c7f8ec8d"
    )
    assert pub.ds[1].startswith("20326 8 4 ")
    xml = trust_anchor_xml(pub, anchor_id="test", valid_from=datetime(2017, 2, 2, tzinfo=UTC))
    assert "<KeyTag>20326</KeyTag>" in xml
    assert "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D" in xml
    assert pub.dnskey_text().startswith(". 172800 IN DNSKEY 257 3 8 ")
    import defusedxml.ElementTree as DET

    assert DET.fromstring(xml).tag == "TrustAnchor"


@pytest.mark.parametrize("algorithm", [8, 13, 14, 15])
def test_the_signer_port_plugs_into_dnspython(algorithm: int) -> None:
    signer = SoftwareKeySigner.generate(algorithm)
    key = DnssecPrivateKey(signer)
    name = dns.name.from_text("example.")
    dnskey = key.dnskey()
    rrset = dns.rrset.from_rdata(name, 3600, dnskey)
    rrsig = dns.dnssec.sign(rrset, key, name, dnskey, inception=START, lifetime=86400, verify=True)
    keys = {name: dns.rdataset.from_rdata(3600, dnskey)}
    dns.dnssec.validate_rrsig(rrset, rrsig, keys, now=START.timestamp() + 10)


def test_fast_path_equals_dnspython_sign_for_rsa() -> None:
    ksk = SoftwareKeySigner.generate(8)
    zsk = SoftwareKeySigner.generate(8)
    data = synthetic_ksr("example.", [zsk], [(START, [0]), (START + timedelta(days=1), [0])])
    doc = formats.parse_bytes(data, "k")
    policy = ZonePolicy(
        "example.", rrsig_lifetime=timedelta(days=2), rrsig_refresh=timedelta(days=1)
    )
    skr = sign_request(doc, policy, [Ksk(ksk, "k")], now=START)
    ours = skr.bundles[0].signatures[0].rrsig
    private = DnssecPrivateKey(ksk)
    name = dns.name.from_text("example.")
    rrset = dns.rrset.from_rdata_list(name, 3600, [k.dnskey() for k in skr.bundles[0].keys])
    theirs = dns.dnssec.sign(
        rrset, private, name, private.dnskey(), inception=ours.inception, expiration=ours.expiration
    )
    assert ours == theirs  # RSA PKCS#1 v1.5 is deterministic: same data, same signature


def _knot_doc(zsks: int = 4, days: int = 90) -> Document:
    signers = [SoftwareKeySigner.generate(13) for _ in range(zsks)]
    return formats.parse_bytes(
        synthetic_ksr("example.", signers, rollover_slots(START, days, 30)), "k.ksr"
    )


def _verify_all(skr: Document) -> int:
    count = 0
    for b in skr.bundles:
        keys = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.DNSKEY)
        for k in b.keys:
            keys.add(k.dnskey(), k.ttl)
        for s in b.signatures:
            if s.rrsig.type_covered == dns.rdatatype.DNSKEY:
                dns.dnssec.validate_rrsig(
                    (skr.zone, keys), s.rrsig, {skr.zone: keys}, now=s.rrsig.inception + 1
                )
                count += 1
    return count


def test_knot_slots_refresh_between_ksr_slots_like_keymgr() -> None:
    doc = _knot_doc()
    policy = ZonePolicy("example.")
    slots = knot_slots(doc, policy)
    step = policy.rrsig_lifetime - policy.rrsig_refresh
    times = [t for t, _ in slots]
    assert times == sorted(times) and times[0] == doc.bundles[0].inception
    assert all(b - a <= step for a, b in zip(times, times[1:], strict=False))
    assert times[-1] == doc.bundles[-1].inception
    assert {b.inception for b in doc.bundles} <= set(times)


def test_knot_skr_with_cds_verifies_and_round_trips(tmp_path: Path) -> None:
    doc = _knot_doc()
    ksk = Ksk(SoftwareKeySigner.generate(13), "ksk")
    stats = SignStats()
    skr = sign_request(doc, ZonePolicy("example.", cds_cdnskey=True), [ksk], now=START, stats=stats)
    assert stats.rrsigs == 3 * len(skr.bundles)
    assert stats.full_validations == stats.rrsets
    out = tmp_path / "example.skr"
    writer.write(skr, out)
    again, _ = formats.load_document(out)
    assert again.kind == "response" and again.format == "knot"
    assert len(again.bundles) == len(skr.bundles)
    assert [r.rdtype for r in again.bundles[0].records] == ["CDNSKEY", "CDS"]
    for ours, read in zip(skr.bundles, again.bundles, strict=True):
        assert read.inception == ours.inception
        assert [k.dnskey() for k in read.keys] == [k.dnskey() for k in ours.keys]
        assert [s.rrsig for s in read.signatures] == [s.rrsig for s in ours.signatures]
        assert read.records == ours.records
    assert _verify_all(again) == len(skr.bundles)
    first = again.bundles[0].signatures[0].rrsig
    assert first.inception == int((START - timedelta(minutes=90)).timestamp())
    assert first.expiration == int((START + timedelta(days=14)).timestamp())


def test_root_style_skr_xml_verifies_and_round_trips(tmp_path: Path) -> None:
    ksr = formats.parse_bytes((IANA / "ksr-root-2017-q2-0.xml").read_bytes(), "ksr")
    ksks = [
        Ksk(SoftwareKeySigner.generate(8), "Kours"),
        Ksk(SoftwareKeySigner.generate(8), "Kold", revoked=True),
    ]
    skr = sign_request(ksr, ZonePolicy.root(), ksks, now=START)
    data = writer.render(skr)
    again = formats.parse_bytes(data, "skr.xml")
    assert again == dataclass_without_source(skr)
    assert _verify_all(again) == 2 * len(ksr.bundles)
    flags = sorted(k.flags for k in again.bundles[0].keys)
    assert flags == [256, 256, 257, 385]
    assert again.id == ksr.id and [b.id for b in again.bundles] == [b.id for b in ksr.bundles]


def dataclass_without_source(doc: Document) -> Document:
    return doc  # `source` and `where` take no part in equality


class BrokenSigner:
    """A KSK whose HSM returns garbage: the re-verification must stop everything."""

    def __init__(self) -> None:
        self.inner = SoftwareKeySigner.generate(13)
        self.algorithm = 13
        self.dnskey_public_key = self.inner.dnskey_public_key

    def sign(self, data: bytes) -> bytes:
        good = self.inner.sign(data)
        return good[:-1] + bytes([good[-1] ^ 1])


def test_a_bad_signature_from_the_signer_stops_signing() -> None:
    with pytest.raises(SigningError, match="did not verify"):
        sign_request(_knot_doc(), ZonePolicy("example."), [Ksk(BrokenSigner(), "bad")], now=START)


# --- CLI ---------------------------------------------------------------------------------


@pytest.fixture
def lab(tmp_path: Path) -> dict[str, Path]:
    ksk = SoftwareKeySigner.generate(13)
    pem = tmp_path / "ksk.pem"
    pem.write_bytes(ksk.to_pem())
    zones = tmp_path / "zones.toml"
    zones.write_text(
        '[zone."example."]\nksk = ["ksk1"]\nalgorithms = [13]\n'
        '[zone."example.net."]\nksk = ["ksk1"]\nalgorithms = [13]\n'
    )
    zsks = [SoftwareKeySigner.generate(13) for _ in range(4)]
    a = tmp_path / "example.ksr"
    a.write_bytes(synthetic_ksr("example.", zsks, rollover_slots(START, 60, 30)))
    b = tmp_path / "example.net.ksr"
    b.write_bytes(synthetic_ksr("example.net.", zsks, rollover_slots(START, 60, 30)))
    out = tmp_path / "out"
    return {"pem": pem, "zones": zones, "a": a, "b": b, "out": out}


def _sign_args(lab: dict[str, Path], *files: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        "ksr",
        "sign",
        "--zones",
        str(lab["zones"]),
        "--out",
        str(lab["out"]),
        "--software-ksk",
        f"ksk1={lab['pem']}",
        "--now",
        START.isoformat(),
        *extra,
        *map(str, files),
    ]


def test_cli_signs_many_zones_in_one_run(
    lab: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_sign_args(lab, lab["a"], lab["b"])) == 0
    written = sorted(p.name for p in lab["out"].iterdir())
    assert written == ["example.net.skr", "example.skr"]
    for name in written:
        doc, _ = formats.load_document(lab["out"] / name)
        assert doc.kind == "response" and _verify_all(doc) == len(doc.bundles)
    text = capsys.readouterr().out
    assert "SHA-256" in text and text.count("SKR written") == 2


@pytest.mark.parametrize(
    "mutation",
    [
        (b"DNSKEY 256 3 13", b"DNSKEY 257 3 13"),  # flags 257 in a request
        (b"example.\t", b"evil.example.\t"),  # wrong owner
        (
            b"\n;; KeySigningRequest 1.0 generated",
            b"\nexample.\t3600 TXT x\n;; KeySigningRequest 1.0 generated",
        ),
    ],
    ids=["flags-257", "wrong-owner", "non-dnskey"],
)
def test_cli_refuses_bad_ksrs_and_writes_nothing(
    lab: dict[str, Path], mutation: tuple[bytes, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    data = lab["a"].read_bytes()
    assert mutation[0] in data
    lab["a"].write_bytes(data.replace(mutation[0], mutation[1], 1))
    assert main(_sign_args(lab, lab["b"], lab["a"])) == 1
    assert not lab["out"].exists() or not list(lab["out"].iterdir())
    err = capsys.readouterr().err
    assert "KSR-" in err and "Traceback" not in err


def test_cli_override_is_recorded_and_lets_the_signature_through(
    lab: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    lab["zones"].write_text(
        '[zone."example."]\nksk = ["ksk1"]\nalgorithms = [13]\nmax_keys_per_bundle = 1\n'
    )
    assert main(_sign_args(lab, lab["a"])) == 1
    assert (
        main(
            _sign_args(
                lab,
                lab["a"],
                extra=(
                    "--override",
                    "KSR-POLICY-KEYS=rollover slots hold two ZSKs",
                    "--witness",
                    "IW",
                    "--json",
                ),
            )
        )
        == 0
    )
    out = capsys.readouterr().out
    assert '"requirement": "KSR-POLICY-KEYS"' in out and "rollover slots" in out
    assert (lab["out"] / "example.skr").exists()


def test_cli_truncated_and_huge_inputs_fail_cleanly(
    lab: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    data = lab["a"].read_bytes()
    lab["a"].write_bytes(data[: data.rindex(b";; KeySigningRequest")])
    assert main(_sign_args(lab, lab["a"])) == 1
    assert "truncated" in capsys.readouterr().err
    lab["a"].write_bytes(data)
    assert main(_sign_args(lab, lab["a"], extra=("--max-bytes", "1000"))) == 1
    assert "limit" in capsys.readouterr().err
    assert not lab["out"].exists()


def test_cli_inspect_and_check(lab: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ksr", "inspect", str(lab["a"]), str(IANA / "skr-root-2017-q1-0.xml")]) == 0
    out = capsys.readouterr().out
    assert "knot request for example." in out and "iana response for ." in out
    assert (
        main(
            [
                "ksr",
                "check",
                "--zones",
                str(lab["zones"]),
                "--now",
                START.isoformat(),
                str(lab["a"]),
            ]
        )
        == 0
    )
    root_ksr = str(IANA / "ksr-root-2017-q2-0.xml")
    assert main(["ksr", "check", "--zones", str(lab["zones"]), root_ksr]) == 1
    assert "KSR-DOMAIN" in capsys.readouterr().out


# --- the pipeline (signing thread + verifier process) -----------------------------------


def _many_slots_doc() -> Document:
    zsks = [SoftwareKeySigner.generate(13) for _ in range(3)]
    data = synthetic_ksr("example.", zsks, rollover_slots(START, 40, 30))
    return formats.parse_bytes(data, "many.ksr")


HOURLY = ZonePolicy("example.", rrsig_lifetime=timedelta(hours=3), rrsig_refresh=timedelta(hours=1))


def test_pipelined_signing_equals_sequential_and_verifies() -> None:
    from appliance.dnssec.sign import PIPELINE_MIN

    doc = _many_slots_doc()
    ksk = Ksk(SoftwareKeySigner.generate(8), "k")  # RSA: deterministic, so comparable
    fast_stats, slow_stats = SignStats(), SignStats()
    fast = sign_request(doc, HOURLY, [ksk], now=START, stats=fast_stats, pipeline=True)
    slow = sign_request(doc, HOURLY, [ksk], now=START, stats=slow_stats, pipeline=False)
    assert fast_stats.rrsigs == slow_stats.rrsigs > PIPELINE_MIN
    assert fast == slow
    assert _verify_all(fast) == len(fast.bundles)


def test_a_bad_signature_stops_the_pipeline_too() -> None:
    with pytest.raises(SigningError, match="did not verify"):
        sign_request(
            _many_slots_doc(), HOURLY, [Ksk(BrokenSigner(), "bad")], now=START, pipeline=True
        )


def test_verifier_frames_round_trip() -> None:
    from appliance.dnssec.verifier import decode_batch, encode_batch

    items = [(b"data-1", b"sig-1"), (b"", b"s" * 300)]
    assert decode_batch(encode_batch(13, b"k" * 64, items)) == (13, b"k" * 64, items)


class SometimesBrokenSigner(BrokenSigner):
    """Good signatures, except every 50th: only the verifier process can catch those."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def sign(self, data: bytes) -> bytes:
        self.count += 1
        good = self.inner.sign(data)
        return good if self.count % 50 else good[:-1] + bytes([good[-1] ^ 1])


def test_the_verifier_process_catches_a_bad_signature_deep_in_the_run() -> None:
    with pytest.raises(SigningError, match="bad signature"):
        sign_request(
            _many_slots_doc(),
            HOURLY,
            [Ksk(SometimesBrokenSigner(), "bad")],
            now=START,
            pipeline=True,
        )


def test_cli_names_a_missing_ksk_label(
    lab: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    lab["zones"].write_text('[zone."example."]\nksk = ["ksk-typo"]\nalgorithms = [13]\n')
    assert main(_sign_args(lab, lab["a"])) == 1
    assert "ksk-typo" in capsys.readouterr().err
    assert not lab["out"].exists()


def test_cli_never_overwrites_an_skr(
    lab: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_sign_args(lab, lab["a"])) == 0
    before = (lab["out"] / "example.skr").read_bytes()
    assert main(_sign_args(lab, lab["a"], lab["b"])) == 2
    assert "already exist" in capsys.readouterr().err
    assert (lab["out"] / "example.skr").read_bytes() == before
    assert not (lab["out"] / "example.net.skr").exists()


# --- KSK rollovers: our SKRs take the shape of IANA's ------------------------------------

OLD = SoftwareKeySigner.generate(8)
NEW = SoftwareKeySigner.generate(8)


def _shape(doc: Document) -> list[tuple[list[tuple[str, int]], list[str]]]:
    return [
        (
            sorted((k.key_identifier, k.flags) for k in b.keys if k.is_ksk),
            sorted(s.key_identifier for s in b.signatures),
        )
        for b in doc.bundles
    ]


def test_rollover_2017_q3_successor_published_before_it_signs() -> None:
    import dataclasses

    iana = formats.parse_bytes((IANA / "skr-root-2017-q3-0-c_to_d.xml").read_bytes(), "q3")
    request = dataclasses.replace(
        iana,
        kind="request",
        ksk_policy=None,
        bundles=tuple(dataclasses.replace(b, keys=b.zsks, signatures=()) for b in iana.bundles),
    )
    publish_new = datetime(2017, 7, 11, tzinfo=UTC)
    ksks = [Ksk(OLD, "Kjqmt7v"), Ksk(NEW, "Klajeyz", publish_only=True, publish_from=publish_new)]
    ours = sign_request(request, ZonePolicy.root(), ksks, now=START)
    assert _shape(ours) == _shape(iana)
    assert _verify_all(ours) == len(ours.bundles)


def test_rollover_2018_q1_successor_takes_over_signing() -> None:
    ksr = formats.parse_bytes((IANA / "ksr-root-2018-q1-0-d_to_e.xml").read_bytes(), "q1")
    iana = formats.parse_bytes((IANA / "skr-root-2018-q1-0-d_to_e.xml").read_bytes(), "skr")
    switch = datetime(2018, 1, 11, tzinfo=UTC)
    ksks = [Ksk(OLD, "Kjqmt7v", sign_until=switch), Ksk(NEW, "Klajeyz", sign_from=switch)]
    ours = sign_request(ksr, ZonePolicy.root(), ksks, now=START)
    assert _shape(ours) == _shape(iana)
    assert _verify_all(ours) == len(ours.bundles)
    from appliance.dnssec.policy import check_request

    report = check_request(
        ksr, ZonePolicy.root(), ksks=[k.info() for k in ksks], now=datetime(2017, 12, 1, tzinfo=UTC)
    )
    assert report.ok
    gap = [
        Ksk(OLD, "Kjqmt7v", sign_until=switch),
        Ksk(NEW, "Klajeyz", sign_from=switch + timedelta(days=15)),
    ]
    report = check_request(
        ksr, ZonePolicy.root(), ksks=[k.info() for k in gap], now=datetime(2017, 12, 1, tzinfo=UTC)
    )
    assert "KSR-KSK-ACTIVE" in {v.requirement for v in report.violations}
    with pytest.raises(SigningError, match="No KSK is scheduled"):
        sign_request(ksr, ZonePolicy.root(), gap, now=START)


def test_cli_signs_a_rollover_from_the_zones_schedule(tmp_path: Path) -> None:
    old, new = tmp_path / "old.pem", tmp_path / "new.pem"
    old.write_bytes(OLD.to_pem())
    new.write_bytes(NEW.to_pem())
    zones = tmp_path / "zones.toml"
    zones.write_text(
        '[zone."."]\npreset = "root"\nksk_schedule = [\n'
        '  {label = "Kjqmt7v", sign_until = 2018-01-11T00:00:00Z},\n'
        '  {label = "Klajeyz", sign_from = 2018-01-11T00:00:00Z},\n]\n'
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "ksr",
                "sign",
                "--zones",
                str(zones),
                "--out",
                str(out),
                "--now",
                "2017-12-01T00:00:00Z",
                "--software-ksk",
                f"Kjqmt7v={old}",
                "--software-ksk",
                f"Klajeyz={new}",
                str(IANA / "ksr-root-2018-q1-0-d_to_e.xml"),
            ]
        )
        == 0
    )
    ours, _ = formats.load_document(out / "skr-root-2018-q1-0-d_to_e.xml")
    iana = formats.parse_bytes((IANA / "skr-root-2018-q1-0-d_to_e.xml").read_bytes(), "skr")
    assert _shape(ours) == _shape(iana)


def test_cli_publish_prints_dnskey_ds_and_writes_a_trust_anchor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pem = tmp_path / "k.pem"
    signer = SoftwareKeySigner.generate(13)
    pem.write_bytes(signer.to_pem())
    anchor = tmp_path / "anchor.xml"
    assert (
        main(
            [
                "ksr",
                "publish",
                "--zone",
                "example.",
                "--label",
                "k",
                "--software-ksk",
                f"k={pem}",
                "--trust-anchor",
                str(anchor),
                "--valid-from",
                "2027-01-01T00:00:00Z",
                "--json",
            ]
        )
        == 0
    )
    import json

    item = json.loads(capsys.readouterr().out)
    pub = publish("example.", signer)
    assert item["key_tag"] == pub.key_tag and item["ds"] == pub.ds_text()
    assert f"<KeyTag>{pub.key_tag}</KeyTag>" in anchor.read_text()
    assert 'validFrom="2027-01-01T00:00:00+00:00"' in anchor.read_text()
    assert (
        main(
            [
                "ksr",
                "publish",
                "--zone",
                "example.",
                "--label",
                "other",
                "--software-ksk",
                f"k={pem}",
            ]
        )
        == 1
    )


class FirstBadSigner(SometimesBrokenSigner):
    def sign(self, data: bytes) -> bytes:
        self.count += 1
        good = self.inner.sign(data)
        return good if self.count > 1 else good[:-1] + bytes([good[-1] ^ 1])


def test_a_failed_pipeline_stops_the_signing_thread() -> None:
    signer = FirstBadSigner()
    doc = _many_slots_doc()
    with pytest.raises(SigningError, match="did not verify"):
        sign_request(doc, HOURLY, [Ksk(signer, "bad")], now=START, pipeline=True)
    done = signer.count
    total = len(
        sign_request(
            doc, HOURLY, [Ksk(SoftwareKeySigner.generate(13), "k")], now=START, pipeline=False
        ).bundles
    )
    assert done < total  # it stopped early, and it stays stopped:
    import time

    time.sleep(0.05)
    assert signer.count == done


def test_cli_check_with_the_previous_skr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    zones = tmp_path / "zones.toml"
    zones.write_text('[zone."."]\npreset = "root"\nksk = ["Kjqmt7v"]\nksk_algorithm = 8\n')
    ksr = str(IANA / "ksr-root-2017-q2-0.xml")
    args = ["ksr", "check", "--zones", str(zones), "--now", "2017-03-01T00:00:00Z"]
    assert main([*args, "--previous", str(IANA / "skr-root-2017-q1-0.xml"), ksr]) == 0
    assert main([*args, "--previous", str(IANA / "skr-root-2018-q1-0-d_to_e.xml"), ksr]) == 1
    assert "KSR-CHAIN-KEYS" in capsys.readouterr().out
    assert (
        main(
            [
                *args,
                "--previous",
                str(IANA / "skr-root-2017-q1-0.xml"),
                "--previous",
                str(IANA / "skr-root-2017-q2-0.xml"),
                ksr,
            ]
        )
        == 2
    )
    assert "Two previous SKRs" in capsys.readouterr().err


def test_iana_signer_elements_choose_the_signing_ksk() -> None:
    data = (IANA / "ksr-root-2017-q2-0.xml").read_bytes()
    asked = data.replace(
        b"<Expiration>2017-04-22T00:00:00</Expiration>",
        b'<Expiration>2017-04-22T00:00:00</Expiration>\n<Signer keyIdentifier="Klajeyz"/>',
        1,
    )
    ksr = formats.parse_bytes(asked, "ksr")
    assert ksr.bundles[0].signers == ("Klajeyz",) and ksr.bundles[1].signers == ()
    both = [Ksk(OLD, "Kjqmt7v"), Ksk(NEW, "Klajeyz")]
    skr = sign_request(ksr, ZonePolicy.root(), both, now=START)
    assert _shape(skr)[0][1] == ["Klajeyz"] and _shape(skr)[1][1] == ["Kjqmt7v", "Klajeyz"]
    from appliance.dnssec.policy import check_request

    only_old = [Ksk(OLD, "Kjqmt7v")]
    report = check_request(
        ksr,
        ZonePolicy.root(),
        ksks=[k.info() for k in only_old],
        now=datetime(2017, 3, 1, tzinfo=UTC),
    )
    assert [v.requirement for v in report.violations] == ["KSR-KSK-ACTIVE"]
    with pytest.raises(SigningError, match="asks for signer"):
        sign_request(ksr, ZonePolicy.root(), only_old, now=START)


def test_a_dead_verifier_process_is_a_clean_signing_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from appliance.dnssec import verifier

    real = verifier.VerifierProcess.__init__

    def start_then_die(self: verifier.VerifierProcess) -> None:
        real(self)
        self.kill()

    monkeypatch.setattr(verifier.VerifierProcess, "__init__", start_then_die)
    with pytest.raises(SigningError, match="verification worker failed"):
        sign_request(
            _many_slots_doc(),
            HOURLY,
            [Ksk(SoftwareKeySigner.generate(13), "k")],
            now=START,
            pipeline=True,
        )


@pytest.mark.parametrize("algorithm", [8, 10, 13, 14, 15, 16])
def test_the_workers_verifier_agrees_with_dnspython(algorithm: int) -> None:
    """The worker checks signatures with cryptography alone (it starts faster without
    dnspython): for every algorithm it must accept and refuse exactly what dnspython does."""
    import dns.dnssecalgs

    from appliance.dnssec.verifier import public_verifier

    cls = dns.dnssecalgs.get_algorithm_cls(algorithm)
    private = cls.generate(2048) if algorithm in (8, 10) else cls.generate()  # type: ignore[call-arg]
    dnskey = private.public_key().to_dnskey()
    check = public_verifier(algorithm, dnskey.key)
    data = b"RRSIG header, signer name and RRset wire" * 10
    good = private.sign(data)
    flipped = good[:-1] + bytes([good[-1] ^ 1])
    for signature, payload in (
        (good, data),
        (flipped, data),
        (good, data + b"x"),
        (good[:-1], data),
        (b"", data),
    ):
        try:
            private.public_key().verify(signature, payload)
            theirs = True
        except Exception:
            theirs = False
        assert check(payload, signature) is theirs
    assert check(data, good)


def test_two_ksks_and_a_lagging_worker_still_verify_every_rrsig(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batches are per key, and whatever the workers have not taken is verified here: with a
    worker that answers slowly, the run still checks every signature and equals the
    sequential one (RSA: deterministic)."""
    import time

    from appliance.dnssec import verifier

    slow_collect = verifier.VerifierProcess.collect

    def lagging(self: verifier.VerifierProcess, *, wait: bool) -> list[list[int]]:
        time.sleep(0.002)
        return slow_collect(self, wait=wait)

    monkeypatch.setattr(verifier.VerifierProcess, "collect", lagging)
    doc = _many_slots_doc()
    ksks = [Ksk(SoftwareKeySigner.generate(8), "a"), Ksk(SoftwareKeySigner.generate(8), "b")]
    fast = sign_request(doc, HOURLY, ksks, now=START, pipeline=True)
    slow = sign_request(doc, HOURLY, ksks, now=START, pipeline=False)
    assert fast == slow
    assert _verify_all(fast) == 2 * len(fast.bundles)  # both keys sign every bundle


class LateBadSigner(BrokenSigner):
    """Good signatures, except the very last: found wherever its batch is verified."""

    def __init__(self, total: int) -> None:
        super().__init__()
        self.count = 0
        self.total = total

    def sign(self, data: bytes) -> bytes:
        self.count += 1
        good = self.inner.sign(data)
        return good if self.count < self.total else good[:-1] + bytes([good[-1] ^ 1])


def test_the_last_signature_is_checked_too() -> None:
    doc = _many_slots_doc()
    stats = SignStats()
    sign_request(
        doc,
        HOURLY,
        [Ksk(SoftwareKeySigner.generate(13), "k")],
        now=START,
        stats=stats,
        pipeline=False,
    )
    with pytest.raises(SigningError, match=f"RRSIG #{stats.rrsigs - 1}"):
        sign_request(
            doc, HOURLY, [Ksk(LateBadSigner(stats.rrsigs), "bad")], now=START, pipeline=True
        )
