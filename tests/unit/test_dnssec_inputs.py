"""Hostile and broken files: truncations, XML bombs, huge files; clean errors, no output."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from appliance.dnssec import formats, iana
from appliance.dnssec.errors import DnssecInputError, InputLimitError
from appliance.dnssec.limits import InputLimits
from appliance.dnssec.signer import SoftwareKeySigner
from tests.support.knot import rollover_slots, synthetic_ksr

DATA = Path(__file__).resolve().parents[1] / "data"
ROOT_KSR = (DATA / "iana-root" / "ksr-root-2017-q2-0.xml").read_bytes()
KNOT_KSR = synthetic_ksr(
    "example.",
    [SoftwareKeySigner.generate(13) for _ in range(4)],
    rollover_slots(datetime(2027, 1, 1, tzinfo=UTC), 90, 30),
)


def parse(data: bytes, limits: InputLimits | None = None) -> None:
    formats.parse_bytes(data, "input", limits)


def test_knot_truncated_mid_record() -> None:
    cut = KNOT_KSR[: KNOT_KSR.index(b"==\n") + 60]
    with pytest.raises(DnssecInputError, match="cut short"):
        parse(cut)


def test_knot_truncated_exactly_at_a_slot_boundary() -> None:
    last = KNOT_KSR.rindex(b";; KeySigningRequest 1.0 ")
    boundary = KNOT_KSR.rindex(b";; KeySigningRequest 1.0 ", 0, last)
    for cut in (KNOT_KSR[:last], KNOT_KSR[:boundary]):
        with pytest.raises(DnssecInputError, match="truncated"):
            parse(cut)


def test_iana_truncated_mid_element_and_at_a_bundle_boundary() -> None:
    boundary = ROOT_KSR.index(b"</RequestBundle>") + len(b"</RequestBundle>\n")
    for cut in (ROOT_KSR[:5000], ROOT_KSR[:boundary]):
        with pytest.raises(DnssecInputError, match="not well formed") as err:
            parse(cut)
        assert err.value.where.startswith("line ")


@pytest.mark.parametrize("name", ["billion-laughs.xml", "external-entity.xml"])
def test_xml_entities_are_refused(name: str) -> None:
    with pytest.raises(DnssecInputError, match="forbidden XML"):
        parse((DATA / "dnssec" / name).read_bytes())


def test_depth_limit_is_enforced_and_configurable() -> None:
    deep = (DATA / "dnssec" / "deep.xml").read_bytes()
    with pytest.raises(InputLimitError, match="nesting deeper"):
        parse(deep)
    with pytest.raises(DnssecInputError) as err:  # deeper limit: now the schema complains
        parse(deep, InputLimits(max_depth=100))
    assert not isinstance(err.value, InputLimitError)


def test_a_50_mb_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    big = tmp_path / "huge.xml"
    with big.open("wb") as handle:
        handle.write(b'<KSR id="x" domain="." serial="1">')
        handle.truncate(50 * 1024 * 1024)
    with pytest.raises(InputLimitError, match="larger than the limit"):
        formats.load_document(big)


def test_no_fixed_one_mib_refusal() -> None:
    body = ROOT_KSR.split(b"<RequestBundle ")
    bundles = [b"<RequestBundle " + part for part in body[1:]]
    bundles[-1] = bundles[-1].split(b"</Request>")[0]
    copies = []
    for i in range(120):
        for j, b in enumerate(bundles):
            copies.append(b.replace(b'id="', f'id="{i}-{j}-'.encode(), 1))
    big = body[0] + b"".join(copies) + b"</Request>\n</KSR>\n"
    assert len(big) > 2 * 1024 * 1024
    doc = iana.parse(big, "big.xml")
    assert len(doc.bundles) == 120 * len(bundles)
    with pytest.raises(InputLimitError):
        iana.parse(big, "big.xml", InputLimits(max_bytes=1024 * 1024))


def test_neither_format_is_refused() -> None:
    with pytest.raises(DnssecInputError, match="neither"):
        parse(b"hello\n")


def test_binary_garbage_in_knot_text_names_the_line() -> None:
    data = KNOT_KSR.replace(b"DNSKEY", b"DNSK\xffEY", 1)
    with pytest.raises(DnssecInputError) as err:
        parse(data)
    assert err.value.where == "line 2"


def test_read_limited_reports_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DnssecInputError, match="absent.xml: is missing"):
        formats.load_document(tmp_path / "absent.xml")
    assert not os.listdir(tmp_path)


def test_cli_refuses_bomb_and_huge_files_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from appliance.cli import main

    pem = tmp_path / "ksk.pem"
    pem.write_bytes(SoftwareKeySigner.generate(8).to_pem())
    zones = tmp_path / "zones.toml"
    zones.write_text('[zone."."]\npreset = "root"\nksk = ["k"]\n')
    huge = tmp_path / "huge-ksr.xml"
    with huge.open("wb") as handle:
        handle.write(b'<KSR id="x" domain="." serial="1">')
        handle.truncate(50 * 1024 * 1024)
    out = tmp_path / "out"
    for bad in (DATA / "dnssec" / "billion-laughs.xml", huge):
        code = main(
            [
                "ksr",
                "sign",
                "--zones",
                str(zones),
                "--out",
                str(out),
                "--software-ksk",
                f"k={pem}",
                str(bad),
            ]
        )
        err = capsys.readouterr().err
        assert code == 1 and "Traceback" not in err
        assert ("forbidden XML" in err) or ("limit" in err)
        assert not out.exists()


def test_cli_depth_limit_is_configurable(capsys: pytest.CaptureFixture[str]) -> None:
    from appliance.cli import main

    ksr = str(DATA / "iana-root" / "ksr-root-2017-q2-0.xml")
    assert main(["ksr", "inspect", "--max-depth", "3", ksr]) == 1
    assert "nesting deeper than 3" in capsys.readouterr().err
    assert main(["ksr", "inspect", "--max-depth", "6", ksr]) == 0
