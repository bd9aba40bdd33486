"""The reaction window: OpenDNSSEC kasp.xml, Knot policies, signed zones, malformed input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from appliance.analysis import durations, reaction
from appliance.analysis.errors import InputFormatError, ModelError
from appliance.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "analysis"
H, D = timedelta(hours=1), timedelta(days=1)


def test_iso8601_durations_as_opendnssec_reads_them() -> None:
    assert durations.parse_iso8601("PT2H") == 2 * H
    assert durations.parse_iso8601("P3D") == 3 * D
    assert durations.parse_iso8601("PT3600S") == H
    assert durations.parse_iso8601("P1W") == 7 * D
    assert durations.parse_iso8601("P1M") == 31 * D  # OpenDNSSEC's approximation
    assert durations.parse_iso8601("P1Y2M3DT4H5M6S") == (
        (365 + 62 + 3) * D + 4 * H + timedelta(minutes=5, seconds=6)
    )
    for bad in ("P", "PT", "3D", "P3", "PT2H3D", "bad_text", "P-1D"):
        assert durations.parse_iso8601(bad) is None, bad


def test_knot_times() -> None:
    assert durations.parse_knot_time("3600") == H
    assert durations.parse_knot_time("90m") == timedelta(minutes=90)
    assert durations.parse_knot_time("14d") == 14 * D
    assert durations.parse_knot_time("1w") == 7 * D
    assert durations.parse_knot_time("14 d") is None


def test_opendnssec_default_policy() -> None:
    policy = reaction.kasp_policy(DATA / "kasp-default.xml")
    assert (policy.name, policy.resign, policy.refresh) == ("default", 2 * H, 3 * D)
    assert (policy.validity_default, policy.validity_denial, policy.jitter) == (
        14 * D,
        14 * D,
        12 * H,
    )
    assert policy.inception_offset == H
    w = reaction.window(policy)
    # Refresh - Resign = 3d - 2h; validity - jitter (13.5d) is longer, so refresh bounds it.
    assert w.nominal == w.worst == 3 * D - 2 * H
    assert w.best == 3 * D
    assert w.limited_by == "refresh"
    assert not w.ok  # 70 hours is below the 7-day target
    assert any("WARNING: below the target of 7d" in line for line in w.lines())


def test_validity_minus_jitter_can_be_the_real_bound() -> None:
    policy = reaction.kasp_policy(DATA / "kasp-two-policies.xml", "registry")
    w = reaction.window(policy)
    assert w.nominal == 10 * D - H  # the rule of thumb promises ten days ...
    assert w.worst == 7 * D - D - H  # ... but NSEC signatures may live only 7d - 1d jitter
    assert w.limited_by == "validity - jitter"
    assert not w.ok
    comfortable = reaction.window(
        reaction.kasp_policy(DATA / "kasp-two-policies.xml", "comfortable")
    )
    assert comfortable.worst == 7 * D - 2 * H and not comfortable.ok
    assert reaction.window(
        reaction.kasp_policy(DATA / "kasp-two-policies.xml", "comfortable"), target=5 * D
    ).ok


def test_the_window_is_what_a_simulated_signer_leaves() -> None:
    """Simulate the signer (runs every Resign, keep if expiry >= now + Refresh, else re-sign
    with random jitter), lose the keys at many moments, and measure the shortest time to the
    first expiry: never below the exact worst case, and close to it."""
    import random

    policy = reaction.kasp_policy(DATA / "kasp-two-policies.xml", "registry")
    w = reaction.window(policy)
    rng = random.Random(3)
    resign, refresh = policy.resign.total_seconds(), policy.refresh.total_seconds()
    jitter = policy.jitter.total_seconds()
    validities = [policy.validity_default.total_seconds(), policy.validity_denial.total_seconds()]
    expiries = [0.0] * 40
    kinds = [i % 2 for i in range(40)]
    shortest = float("inf")
    t = 0.0
    for run in range(2000):
        t = run * resign
        for i, e in enumerate(expiries):
            if e < t + refresh:
                expiries[i] = t + validities[kinds[i]] + rng.uniform(-jitter, jitter)
        lost_at = t + resign * 0.999  # just before the next run
        if run > 500:
            shortest = min(shortest, min(expiries) - lost_at)
    assert shortest >= w.worst.total_seconds() - 1
    assert shortest < w.worst.total_seconds() + 6 * 3600


def test_knot_policy_with_explicit_refresh() -> None:
    policy = reaction.knot_policy(DATA / "knot.conf", "registry")
    assert (policy.refresh, policy.validity_default, policy.pre_refresh) == (9 * D, 21 * D, 2 * H)
    w = reaction.window(policy)
    assert w.worst == w.nominal == 9 * D and w.ok  # event-driven: no resign period
    assert w.limited_by == "rrsig-refresh"
    assert "window (rrsig-refresh): 9d" in "\n".join(w.lines())


def test_knot_lifetime_shorter_than_refresh_bounds_the_window(tmp_path: Path) -> None:
    conf = tmp_path / "knot.conf"
    conf.write_text("policy:\n  - id: odd\n    rrsig-lifetime: 2d\n    rrsig-refresh: 3d\n")
    w = reaction.window(reaction.knot_policy(conf))
    assert (w.worst, w.limited_by) == (2 * D, "rrsig-lifetime")


def test_knot_default_refresh_is_propagation_delay_plus_max_ttl() -> None:
    policy = reaction.knot_policy(DATA / "knot.conf", "defaults")
    assert policy.refresh == 2 * H + D
    assert policy.validity_default == 14 * D  # Knot's default rrsig-lifetime
    w = reaction.window(policy)
    assert w.worst == 26 * H and not w.ok


def test_knot_default_refresh_needs_the_max_ttl(tmp_path: Path) -> None:
    conf = tmp_path / "knot.conf"
    conf.write_text("policy:\n  - id: p\n    rrsig-lifetime: 7d\n")
    with pytest.raises(ModelError, match="zone-max-ttl"):
        reaction.knot_policy(conf)
    assert reaction.knot_policy(conf, zone_max_ttl=H).refresh == 2 * H
    conf.write_text("policy:\n  - id: p\n    rrsig-refresh: soon\n")
    with pytest.raises(InputFormatError, match=r"line 3: policy 'p': rrsig-refresh is 'soon'"):
        reaction.knot_policy(conf)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            "<KASP><Policy name='p'><Signatures><Resign>PT2H</Resign></Signatures></Policy></KASP>",
            "policy 'p' has no <Refresh> element (KASP/Policy[@name='p']/Signatures/Refresh)",
        ),
        (
            "<KASP><Policy name='p'><Signatures><Resign>PT2H</Resign><Refresh>P3D</Refresh>"
            "<Validity><Default>P7D</Default><Denial>P14D</Denial></Validity>"
            "<Jitter>bad_text</Jitter><InceptionOffset>PT300S</InceptionOffset></Signatures>"
            "</Policy></KASP>",
            "KASP/Policy[@name='p']/Signatures/Jitter is 'bad_text', not an ISO 8601 duration",
        ),
        (
            "<KASP><Policy name='p'><Signatures>\n<Resign>PT2H</Resign>\n</Policy></KASP>",
            "line 3, column 2: not well-formed XML",
        ),
        ("<Policies/>", "root element is <Policies>, expected <KASP>"),
        ("<KASP/>", "<KASP> holds no <Policy> element"),
        ("<KASP><Policy><Signatures/></Policy></KASP>", "a <Policy> element has no name"),
        (
            '<?xml version="1.0"?><!DOCTYPE KASP [<!ENTITY a "aaaa">]><KASP>&a;</KASP>',
            "refused XML",
        ),
    ],
)
def test_malformed_kasp_names_the_element(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "kasp.xml"
    path.write_text(text)
    with pytest.raises(InputFormatError) as err:
        reaction.kasp_policies(path)
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_cli_reaction_window_on_kasp(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["reaction-window", "--kasp", str(DATA / "kasp-default.xml"), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1  # below the 7-day target
    assert out["worst_seconds"] == 70 * 3600 and out["limited_by"] == "refresh"
    assert (
        main(["reaction-window", "--kasp", str(DATA / "kasp-default.xml"), "--target", "2d"]) == 0
    )
    assert "OK: at least the target of 2d" in capsys.readouterr().out
    assert main(["reaction-window", "--kasp", str(DATA / "kasp-two-policies.xml")]) == 1
    assert "say which one" in capsys.readouterr().err


# --- signed zones -------------------------------------------------------------------------

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def signed_zone(tmp_path: Path, expirations: dict[str, datetime]) -> Path:
    """A zone signed with a software ECDSA key, each RRset with its own expiration."""
    import dns.dnssec
    import dns.name
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset
    import dns.zone
    from cryptography.hazmat.primitives.asymmetric import ec

    origin = dns.name.from_text("example.")
    key = ec.generate_private_key(ec.SECP256R1())
    dnskey = dns.dnssec.make_dnskey(
        key.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256, flags=257
    )
    zone = dns.zone.from_text(
        "$ORIGIN example.\n$TTL 3600\n"
        "@ SOA ns1 hostmaster 1 7200 3600 1209600 3600\n@ NS ns1\nns1 A 192.0.2.1\n"
        "www A 192.0.2.2\n",
        relativize=False,
    )
    with zone.writer() as txn:
        txn.add(origin, 3600, dnskey)
    for owner, rdtype, _ttl, rdset in [
        (n, rds.rdtype, rds.ttl, rds) for n, node in zone.items() for rds in node.rdatasets
    ]:
        label = f"{owner.to_text()} {dns.rdatatype.to_text(rdtype)}"
        expiration = expirations.get(label, NOW + timedelta(days=30))
        rrset = dns.rrset.from_rdata_list(owner, rdset.ttl, list(rdset))
        sig = dns.dnssec.sign(
            rrset, key, origin, dnskey, inception=NOW - timedelta(days=1), expiration=expiration
        )
        with zone.writer() as txn:
            txn.add(owner, rdset.ttl, sig)
    path = tmp_path / "example.zone"
    zone.to_file(str(path), relativize=False)
    return path


def test_signed_zone_deadline(tmp_path: Path) -> None:
    earliest = NOW + timedelta(days=5, hours=3)
    path = signed_zone(
        tmp_path, {"www.example. A": earliest, "example. NS": NOW + timedelta(days=9)}
    )
    dl = reaction.zone_deadline(path, now=NOW)
    assert dl.earliest == earliest
    assert (dl.owner, dl.covered) == ("www.example.", "A")
    assert dl.signatures == 5  # SOA, NS, DNSKEY, ns1 A, www A
    assert dl.remaining == timedelta(days=5, hours=3) and not dl.ok
    text = "\n".join(dl.lines())
    assert (
        "If the keys were lost now (2026-12-04 12:00:00 UTC), validation fails at "
        "2026-12-09 15:00:00 UTC (in 5d 3h)."
    ) in text
    assert reaction.zone_deadline(path, now=NOW, target=timedelta(days=5)).ok


def test_cli_zone_deadline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = signed_zone(tmp_path, {"example. SOA": NOW + timedelta(days=20)})
    code = main(["reaction-window", "--zone", str(path), "--now", "2026-12-04T12:00:00Z", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["earliest_expiration"] == "2026-12-24T12:00:00+00:00"
    assert out["owner"] == "example." and out["remaining_seconds"] == 20 * 86400
    code = main(["reaction-window", "--zone", str(path), "--now", "2027-01-04T00:00:00Z"])
    assert code == 1 and "EXPIRED" in capsys.readouterr().out


def test_zone_without_signatures(tmp_path: Path) -> None:
    path = tmp_path / "plain.zone"
    path.write_text("$ORIGIN example.\n@ 3600 SOA ns1 h 1 2 3 4 5\n@ 3600 NS ns1\n")
    with pytest.raises(InputFormatError, match="no RRSIG records"):
        reaction.zone_deadline(path)
    path.write_text("@ 3600 SOA ns1 h 1 2 3 4 5\n")
    with pytest.raises(InputFormatError, match="no \\$ORIGIN"):
        reaction.zone_deadline(path)
