"""Parsers on real files: every IANA KSR/SKR, Knot text; SKR signatures verify."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dns.dnssec
import dns.rdataclass
import dns.rdataset
import dns.rdatatype
import pytest

from appliance.dnssec import formats, iana, knot
from appliance.dnssec.errors import DnssecInputError
from appliance.dnssec.model import Document
from appliance.dnssec.policy import KskInfo, ZonePolicy, check_request

IANA = Path(__file__).resolve().parents[1] / "data" / "iana-root"
KSRS = sorted(IANA.glob("ksr-*.xml"))
SKRS = sorted(IANA.glob("skr-*.xml"))


def load(path: Path) -> Document:
    return formats.parse_bytes(path.read_bytes(), path.name)


@pytest.mark.parametrize("path", KSRS, ids=lambda p: p.name)
def test_every_real_ksr_parses(path: Path) -> None:
    doc = load(path)
    assert doc.kind == "request" and doc.format == "iana" and doc.domain == "."
    assert doc.zsk_policy is not None and doc.bundles
    assert all(k.flags == 256 for b in doc.bundles for k in b.keys)


#: Policies of the root's eras: 2010-2016 ZSKs were RSA-1024 with 15-16 day bundles (the 2010
#: KSRs declare e=3 for keys with e=65537); from Q4 2016 the DPS values in ZonePolicy.root().
ERA_2010 = ZonePolicy.root(
    rsa_sizes=(1024, 2048),
    rsa_exponents=(3, 65537),
    check_declared_exponent=False,
    min_signature_validity=timedelta(days=14, hours=23),
    max_signature_validity=timedelta(days=16),
    min_validity_overlap=timedelta(days=4, hours=23),
    max_validity_overlap=timedelta(days=6),
)
SIGNED_BY_IANA = {
    "ksr-root-2010-q1-0.xml": ERA_2010,
    "ksr-root-2010-q2-0.xml": ERA_2010,
    "ksr-root-2016-q3-0.xml": ERA_2010,
    "ksr-root-2017-q2-0.xml": ZonePolicy.root(),
    "ksr-root-2018-q1-0-d_to_e.xml": ZonePolicy.root(),
}


@pytest.mark.parametrize("name", sorted(SIGNED_BY_IANA))
def test_ksrs_iana_signed_pass_a_root_policy(name: str) -> None:
    doc = load(IANA / name)
    report = check_request(
        doc,
        SIGNED_BY_IANA[name],
        ksks=[KskInfo(8, 19036)],
        now=doc.bundles[0].inception - timedelta(days=30),
    )
    assert [v.message for v in report.violations] == []


def test_the_2009_test_ksr_fails_the_modern_root_policy() -> None:
    doc = load(IANA / "ksr-root-2009-q4-2.xml")
    report = check_request(
        doc, ZonePolicy.root(), ksks=[KskInfo(8, 19036)], now=doc.bundles[0].inception
    )
    ids = {v.requirement for v in report.violations}
    assert {"KSR-KEY-SIZE", "KSR-BUNDLE-COUNT", "KSR-POLICY-SIG-VALIDITY"} <= ids


@pytest.mark.parametrize("path", SKRS, ids=lambda p: p.name)
def test_every_real_skr_parses_and_its_signatures_verify(path: Path) -> None:
    doc = load(path)
    assert doc.kind == "response" and doc.ksk_policy is not None
    verified = 0
    for b in doc.bundles:
        keys = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.DNSKEY)
        for k in b.keys:
            keys.add(k.dnskey(), k.ttl)
        assert any(k.is_ksk for k in b.keys)
        for s in b.signatures:
            dns.dnssec.validate_rrsig(
                (doc.zone, keys), s.rrsig, {doc.zone: keys}, now=s.rrsig.inception + 1
            )
            verified += 1
    assert verified >= len(doc.bundles)


def test_a_flipped_bit_in_a_real_skr_fails_verification() -> None:
    doc = load(IANA / "skr-root-2017-q1-0.xml")
    b = doc.bundles[0]
    keys = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.DNSKEY)
    for k in b.keys:
        keys.add(k.dnskey(), k.ttl)
    sig = b.signatures[0].rrsig
    bad = sig.replace(signature=bytes([sig.signature[0] ^ 1]) + sig.signature[1:])
    with pytest.raises(dns.dnssec.ValidationFailure):
        dns.dnssec.validate_rrsig((doc.zone, keys), bad, {doc.zone: keys}, now=sig.inception)


def test_2017_q2_ksr_chains_to_the_2017_q1_skr() -> None:
    ksr = load(IANA / "ksr-root-2017-q2-0.xml")
    previous = load(IANA / "skr-root-2017-q1-0.xml")
    report = check_request(
        ksr,
        ZonePolicy.root(),
        ksks=[KskInfo(8, 19036)],
        now=ksr.bundles[0].inception - timedelta(days=30),
        previous=previous,
    )
    assert report.violations == ()
    assert report.ok


def test_a_ksr_checked_against_the_wrong_previous_skr_breaks_the_chain() -> None:
    ksr = load(IANA / "ksr-root-2017-q2-0.xml")
    previous = load(IANA / "skr-root-2018-q1-0-d_to_e.xml")
    report = check_request(
        ksr,
        ZonePolicy.root(),
        ksks=[KskInfo(8, 19036)],
        now=ksr.bundles[0].inception - timedelta(days=30),
        previous=previous,
    )
    assert {"KSR-CHAIN-KEYS", "KSR-CHAIN-OVERLAP"} <= {v.requirement for v in report.violations}


def test_knot_ksr_text_parses_with_stated_tags(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from appliance.dnssec.signer import SoftwareKeySigner
    from tests.support.knot import rollover_slots, synthetic_ksr

    zsks = [SoftwareKeySigner.generate(13) for _ in range(3)]
    data = synthetic_ksr("example.", zsks, rollover_slots(datetime(2027, 1, 1, tzinfo=UTC), 60, 30))
    doc = knot.parse(data, "ksr")
    assert doc.format == "knot" and doc.domain == "example." and len(doc.bundles) == 5
    assert [len(b.keys) for b in doc.bundles] == [1, 2, 2, 1, 1]
    tags = {k.key_tag for b in doc.bundles for k in b.keys}
    assert tags == {dns.dnssec.key_id(k.dnskey()) for b in doc.bundles for k in b.keys}


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            ";; KeySigningRequest 1.0 100 (1970-01-01T00:01:40Z) =====\n"
            "example. 3600 DNSKEY 256 3 13 (\n AAAA\n",
            "line 2",
        ),
        (";; KeySigningRequest 1.0 100 (1970-01-01T00:01:41Z) =====\n", "line 1"),
        ("example. 3600 DNSKEY 256 3 13 AAAA\n", "line 1"),
        (
            ";; KeySigningRequest 1.0 100 (1970-01-01T00:01:40Z) =====\n"
            "example. 3600 DNSKEY 256 3 13 !!notbase64\n",
            "line 2",
        ),
        (
            ";; KeySigningRequest 1.0 100 (1970-01-01T00:01:40Z) =====\n"
            "example. x DNSKEY 256 3 13 AAAA\n",
            "line 2",
        ),
        (
            ";; KeySigningRequest 1.0 100 (1970-01-01T00:01:40Z) =====\n; a stray comment\n",
            "line 2",
        ),
    ],
)
def test_knot_parser_names_the_line(text: str, where: str) -> None:
    with pytest.raises(DnssecInputError) as err:
        knot.parse(text.encode(), "bad.ksr")
    assert err.value.where == where
    assert "bad.ksr, " + where in str(err.value)


def test_iana_parser_names_the_element() -> None:
    data = (IANA / "ksr-root-2017-q2-0.xml").read_bytes()
    broken = data.replace(b"<Protocol>3</Protocol>", b"<Protocol>4</Protocol>", 1)
    with pytest.raises(DnssecInputError) as err:
        iana.parse(broken, "k.xml")
    assert err.value.where == "element KSR/Request/RequestBundle[1]/Key[1]/Protocol"
    extra = data.replace(b"<TTL>172800</TTL>", b"<TTL>172800</TTL><Colour/>", 1)
    with pytest.raises(DnssecInputError) as err:
        iana.parse(extra, "k.xml")
    assert "Colour" in err.value.where
