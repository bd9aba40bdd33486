"""The zones file: closed, line-accurate errors, durations, times, the root preset; PIN input."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from appliance import tomlfile
from appliance.dnssec import times
from appliance.dnssec.cli import read_pin
from appliance.dnssec.policy import ZonePolicy
from appliance.dnssec.zones import parse_zones
from appliance.errors import ConfigError, UsageError


def zones(text: str) -> dict[str, object]:
    return dict(parse_zones(tomlfile.loads(text, "zones.toml")))


def test_zone_entries_with_durations_times_and_preset() -> None:
    found = parse_zones(
        tomlfile.loads(
            '[zone."Example.COM"]\nksk = ["ksk-a", "ksk-b"]\nalgorithms = [13, 8]\n'
            'rrsig_lifetime = "P21D"\nrrsig_refresh = "7d"\nmax_validity_overlap = 3600\n'
            "ksk_active_until = 2027-06-01T00:00:00Z\ncds_cdnskey = true\n"
            '[zone."."]\npreset = "root"\nhorizon = "90d"\n',
            "zones.toml",
        )
    )
    entry = found["example.com."]
    assert entry.ksk_labels == ("ksk-a", "ksk-b")
    p = entry.policy
    assert p.algorithms == (13, 8) and p.rrsig_lifetime == timedelta(days=21)
    assert p.max_validity_overlap == timedelta(hours=1) and p.cds_cdnskey
    assert p.ksk_active_until == datetime(2027, 6, 1, tzinfo=UTC)
    root = found["."].policy
    assert root == ZonePolicy.root(horizon=timedelta(days=90))


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('[zone."a."]\nrrsig_lifetme = "14d"\n', 2, "did you mean 'rrsig_lifetime'"),
        ('[zone."a."]\nrrsig_lifetime = "fortnight"\n', 2, "not a duration"),
        ('[zone."a."]\nalgorithms = ["13"]\n', 2, "list of whole numbers"),
        ('[zone."a."]\ncds_cdnskey = "yes"\n', 2, "true or false"),
        ('[zone."a."]\nksk = "one"\n', 2, "list of HSM key labels"),
        ('[zone."a."]\npreset = "tld"\n', 2, "preset"),
        ('[zones."a."]\n', 1, "unknown table"),
    ],
)
def test_zone_file_errors_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as err:
        zones(text)
    assert f"zones.toml, line {line}" in str(err.value)
    assert words in str(err.value)


def test_durations_both_ways() -> None:
    for text, value in (
        ("P21D", timedelta(days=21)),
        ("PT0S", timedelta(0)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("90m", timedelta(minutes=90)),
    ):
        assert times.parse_duration(text) == value
    assert times.format_duration(timedelta(days=1, hours=2)) == "P1DT2H"
    assert times.format_duration(timedelta(0)) == "PT0S"
    with pytest.raises(ValueError):
        times.parse_duration("P")


def test_pin_from_a_file_descriptor_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b"123456\n")
    os.close(write_end)
    try:
        assert read_pin(read_end) == bytearray(b"123456")
    finally:
        os.close(read_end)
    monkeypatch.setenv("APPLIANCE_HSM_PIN", "654321")
    assert read_pin(None) == bytearray(b"654321")
    assert "APPLIANCE_HSM_PIN" not in os.environ  # read once, not inherited by children
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    with pytest.raises(UsageError, match="No HSM PIN"):
        read_pin(None)


def test_ksk_schedule_for_a_rollover() -> None:
    found = parse_zones(
        tomlfile.loads(
            '[zone."."]\npreset = "root"\nksk_schedule = [\n'
            '  {label = "old", sign_until = 2018-01-11T00:00:00Z},\n'
            '  {label = "new", sign_from = 2018-01-11T00:00:00Z},\n'
            '  {label = "next", publish_only = true, publish_from = 2018-03-01T00:00:00Z},\n]\n',
            "zones.toml",
        )
    )
    entry = found["."]
    assert entry.ksk_labels == ("old", "new", "next")
    assert entry.ksks[0].sign_until == datetime(2018, 1, 11, tzinfo=UTC)
    assert entry.ksks[2].publish_only
    with pytest.raises(ConfigError, match="did you mean 'sign_until'"):
        zones('[zone."."]\nksk_schedule = [{label = "a", sign_untl = 2018-01-11T00:00:00Z}]\n')
    with pytest.raises(ConfigError, match="either ksk or ksk_schedule"):
        zones('[zone."."]\nksk = ["a"]\nksk_schedule = [{label = "a"}]\n')


def test_bind_gives_ksks_with_their_roles_for_available_labels() -> None:
    from appliance.dnssec.signer import SoftwareKeySigner

    entry = parse_zones(
        tomlfile.loads(
            '[zone."."]\nksk_schedule = [\n'
            '  {label = "old", sign_until = 2018-01-11T00:00:00Z, revoked = true},\n'
            '  {label = "new", sign_from = 2018-01-11T00:00:00Z},\n  {label = "gone"},\n]\n',
            "zones.toml",
        )
    )["."]
    keys = {"old": SoftwareKeySigner.generate(13), "new": SoftwareKeySigner.generate(13)}
    bound = entry.bind(keys.get)
    assert [k.identifier for k in bound] == ["old", "new"]
    assert bound[0].revoked and bound[0].sign_until == datetime(2018, 1, 11, tzinfo=UTC)
    assert bound[1].signer is keys["new"]
