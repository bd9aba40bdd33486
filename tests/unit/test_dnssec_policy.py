"""The negative corpus: for each requirement id, a mutated KSR rejected with that id."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance.dnssec import errors as E
from appliance.dnssec import formats
from appliance.dnssec.model import Document
from appliance.dnssec.policy import KskInfo, Override, ZonePolicy, check_request
from appliance.dnssec.signer import SoftwareKeySigner
from appliance.errors import DnssecError
from tests.support.knot import rollover_slots, synthetic_ksr

IANA = Path(__file__).resolve().parents[1] / "data" / "iana-root"
START = datetime(2027, 1, 1, tzinfo=UTC)
ZSKS = [SoftwareKeySigner.generate(13) for _ in range(4)]
KNOT_KSR = synthetic_ksr("example.", ZSKS, rollover_slots(START, 90, 30))
KNOT_POLICY = ZonePolicy("example.", algorithms=(13,))
ROOT_KSR = (IANA / "ksr-root-2017-q2-0.xml").read_bytes()
ROOT_NOW = datetime(2017, 3, 1, tzinfo=UTC)


def ids(
    data: bytes,
    policy: ZonePolicy,
    *,
    now: datetime,
    ksk_alg: int,
    previous: Document | None = None,
    ksks: list[KskInfo] | None = None,
) -> set[str]:
    doc = formats.parse_bytes(data, "mutated")
    report = check_request(
        doc,
        policy,
        ksks=[KskInfo(ksk_alg, 1)] if ksks is None else ksks,
        now=now,
        previous=previous,
    )
    for v in report.violations:
        assert isinstance(v, E.REQUIREMENTS[v.requirement])
    return {v.requirement for v in report.violations}


def knot(data: bytes = KNOT_KSR, **changes: object) -> set[str]:
    policy = dataclasses.replace(KNOT_POLICY, **changes)  # type: ignore[arg-type]
    return ids(data, policy, now=START, ksk_alg=13)


def root(data: bytes = ROOT_KSR, previous: str = "", **changes: object) -> set[str]:
    prev = formats.parse_bytes((IANA / previous).read_bytes(), previous) if previous else None
    return ids(data, ZonePolicy.root(**changes), now=ROOT_NOW, ksk_alg=8, previous=prev)


def test_the_unmutated_inputs_pass() -> None:
    assert knot() == set()
    assert root() == set()


def _alg5_record() -> bytes:
    rsa = SoftwareKeySigner.generate(8)
    import dns.rdataclass
    import dns.rdatatype
    from dns.rdtypes.ANY.DNSKEY import DNSKEY

    from appliance.dnssec import knot as knot_format

    key = DNSKEY(dns.rdataclass.IN, dns.rdatatype.DNSKEY, 256, 3, 5, rsa.dnskey_public_key)
    return knot_format.format_record("example.", 3600, key).encode()


def _rsa1024_record() -> bytes:
    import dns.rdataclass
    import dns.rdatatype
    from cryptography.hazmat.primitives.asymmetric import rsa
    from dns.rdtypes.ANY.DNSKEY import DNSKEY

    from appliance.dnssec import knot as knot_format

    small = SoftwareKeySigner(rsa.generate_private_key(public_exponent=65537, key_size=1024), 8)  # noqa: S505
    key = DNSKEY(dns.rdataclass.IN, dns.rdatatype.DNSKEY, 256, 3, 8, small.dnskey_public_key)
    return knot_format.format_record("example.", 3600, key).encode()


def _first_record_end() -> int:
    return KNOT_KSR.index(b"\n;; KeySigningRequest", 10) + 1


def _insert(record: bytes) -> bytes:
    at = _first_record_end()
    return KNOT_KSR[: at - 1] + b"\n" + record + KNOT_KSR[at - 1 :]


def _two_in_slot() -> bytes:
    return KNOT_KSR


CASES: dict[str, Callable[[], set[str]]] = {
    "KSR-DOMAIN": lambda: knot(zone="other."),
    "KSR-OWNER": lambda: knot(KNOT_KSR.replace(b"example.\t", b"www.example.\t", 1)),
    "KSR-RECORD-TYPE": lambda: knot(_insert(b"example.\t3600 A 192.0.2.1")),
    "KSR-FLAGS": lambda: knot(KNOT_KSR.replace(b"DNSKEY 256 3 13", b"DNSKEY 257 3 13", 1)),
    "KSR-KEY-TAG": lambda: knot(KNOT_KSR.replace(b"id = ", b"id = 1", 1)),
    "KSR-ALG-DEPRECATED": lambda: knot(_insert(_alg5_record())),
    "KSR-POLICY-ALG": lambda: knot(algorithms=(8,)),
    "KSR-KEY-SIZE": lambda: knot(_insert(_rsa1024_record()), algorithms=(8, 13)),
    "KSR-BUNDLE-UNIQUE": lambda: root(
        ROOT_KSR.replace(
            b'<RequestBundle id="dc1bc68c-b1c1-46f8-817f-ec893549f2be">',
            ROOT_KSR.split(b"<RequestBundle ")[2].split(b">")[0].join([b"<RequestBundle ", b">"]),
        )
    ),
    "KSR-BUNDLE-KEYS": lambda: root(
        ROOT_KSR.replace(
            b'<RSA size="2048" exponent="65537"/>', b'<RSA size="4096" exponent="65537"/>'
        ),
        rsa_sizes=(2048, 4096),
    ),
    "KSR-BUNDLE-POP": lambda: root(
        ROOT_KSR.replace(b"<SignatureData>kRfw", b"<SignatureData>kRfx")
    ),
    "KSR-BUNDLE-COUNT": lambda: root(min_bundles=10, max_bundles=10),
    "KSR-BUNDLE-CYCLE-DURATION": lambda: knot(max_cycle=timedelta(days=30)),
    "KSR-POLICY-KEYS": lambda: knot(max_keys_per_bundle=1),
    "KSR-POLICY-SIG-OVERLAP": lambda: root(min_validity_overlap=timedelta(days=12)),
    "KSR-POLICY-SIG-VALIDITY": lambda: root(
        ROOT_KSR.replace(
            b"<Expiration>2017-04-22T00:00:00</Expiration>",
            b"<Expiration>2017-04-26T00:00:00</Expiration>",
        )
    ),
    "KSR-POLICY-SIG-HORIZON": lambda: root(horizon=timedelta(days=60)),
    "KSR-POLICY-BUNDLE-INTERVALS": lambda: knot(max_bundle_interval=timedelta(days=1)),
    "KSR-POLICY-SAFETY": lambda: root(
        ROOT_KSR.replace(b"<PublishSafety>P10D", b"<PublishSafety>P30D")
    ),
    "KSR-CHAIN-KEYS": lambda: root(previous="skr-root-2018-q1-0-d_to_e.xml"),
    "KSR-CHAIN-OVERLAP": lambda: root(
        previous="skr-root-2017-q1-0.xml",
        min_validity_overlap=timedelta(days=9),
        max_validity_overlap=timedelta(days=9, hours=12),
    ),
    "KSR-CHAIN-ID": lambda: root(previous="skr-root-2017-q2-0.xml"),
    "KSR-KSK-ACTIVE": lambda: knot(ksk_active_until=START + timedelta(days=40)),
    "KSR-KSK-ALG": lambda: ids(KNOT_KSR, KNOT_POLICY, now=START, ksk_alg=8),
}


def test_the_corpus_covers_every_requirement_id() -> None:
    assert set(CASES) == set(E.REQUIREMENTS)


@pytest.mark.parametrize("requirement", sorted(CASES))
def test_mutated_ksr_is_rejected_with_its_requirement_id(requirement: str) -> None:
    assert requirement in CASES[requirement]()


def test_expired_bundles_are_a_horizon_violation() -> None:
    late = ids(ROOT_KSR, ZonePolicy.root(), now=datetime(2018, 1, 1, tzinfo=UTC), ksk_alg=8)
    assert "KSR-POLICY-SIG-HORIZON" in late


def test_no_ksk_at_all_is_a_ksk_active_violation() -> None:
    assert "KSR-KSK-ACTIVE" in ids(KNOT_KSR, KNOT_POLICY, now=START, ksk_alg=13, ksks=[])


def test_all_violations_are_reported_at_once() -> None:
    data = KNOT_KSR.replace(b"DNSKEY 256 3 13", b"DNSKEY 257 3 13", 1)
    data = data.replace(b"example.\t", b"www.example.\t", 1)
    found = knot(data, max_keys_per_bundle=1, max_cycle=timedelta(days=10))
    assert {"KSR-FLAGS", "KSR-OWNER", "KSR-POLICY-KEYS", "KSR-BUNDLE-CYCLE-DURATION"} <= found


def test_overrides_waive_only_their_requirement_and_are_reported() -> None:
    doc = formats.parse_bytes(KNOT_KSR, "k")
    policy = dataclasses.replace(KNOT_POLICY, max_keys_per_bundle=1, max_cycle=timedelta(days=10))
    over = Override("KSR-POLICY-KEYS", "rollover slots hold two keys", "IW Alice")
    report = check_request(doc, policy, ksks=[KskInfo(13, 1)], now=START, overrides=[over])
    assert not report.ok
    assert {v.requirement for v in report.blocking} == {"KSR-BUNDLE-CYCLE-DURATION"}
    with pytest.raises(E.PolicyViolations) as err:
        report.raise_if_blocking()
    assert err.value.requirements == ["KSR-BUNDLE-CYCLE-DURATION"]
    both = [over, Override("KSR-BUNDLE-CYCLE-DURATION", "short test period", "IW Alice")]
    report = check_request(doc, policy, ksks=[KskInfo(13, 1)], now=START, overrides=both)
    assert report.ok
    record = report.as_dict()
    assert [o["requirement"] for o in record["overrides_used"]] == [  # type: ignore[index]
        "KSR-POLICY-KEYS",
        "KSR-BUNDLE-CYCLE-DURATION",
    ]


def test_deprecated_algorithms_cannot_be_overridden_and_overrides_need_reasons() -> None:
    with pytest.raises(DnssecError):
        Override("KSR-ALG-DEPRECATED", "please")
    with pytest.raises(DnssecError):
        Override("KSR-POLICY-KEYS", "  ")
    with pytest.raises(DnssecError):
        Override("KSR-NOPE", "typo")


def test_knot_chain_with_our_previous_skr() -> None:
    from appliance.dnssec import writer
    from appliance.dnssec.sign import Ksk, sign_request

    ksk = Ksk(SoftwareKeySigner.generate(13), "k")
    first = formats.parse_bytes(
        synthetic_ksr("example.", ZSKS, [(START, [0]), (START + timedelta(days=30), [0])]), "q1"
    )
    previous = formats.parse_bytes(
        writer.render(sign_request(first, KNOT_POLICY, [ksk], now=START)), "q1.skr"
    )
    follow = START + timedelta(days=30)

    def chain(slots: list[tuple[datetime, list[int]]]) -> set[str]:
        data = synthetic_ksr("example.", ZSKS, slots)
        return ids(data, KNOT_POLICY, now=START, ksk_alg=13, previous=previous)

    assert chain([(follow, [0]), (follow + timedelta(days=30), [0, 1])]) == set()
    assert "KSR-CHAIN-KEYS" in chain([(follow, [1]), (follow + timedelta(days=30), [1])])
    late = follow + timedelta(days=20)  # the previous signatures expired after 14 days
    assert "KSR-CHAIN-OVERLAP" in chain([(late, [0]), (late + timedelta(days=30), [0])])


def test_the_agreed_ksk_algorithm_is_checked_against_the_real_key() -> None:
    assert "KSR-KSK-ALG" in knot(ksk_algorithm=14)
    assert "KSR-KSK-ALG" not in knot(ksk_algorithm=13)
