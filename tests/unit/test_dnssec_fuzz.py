"""Random damage to real KSR/SKR files: the parsers either accept or raise DnssecInputError."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.dnssec import formats
from appliance.dnssec.errors import DnssecInputError
from appliance.dnssec.signer import SoftwareKeySigner
from tests.support.knot import rollover_slots, synthetic_ksr

IANA = Path(__file__).resolve().parents[1] / "data" / "iana-root"
SAMPLES = [
    (IANA / "ksr-root-2017-q2-0.xml").read_bytes(),
    (IANA / "skr-root-2017-q3-0-c_to_d.xml").read_bytes(),
    synthetic_ksr(
        "example.",
        [SoftwareKeySigner.generate(13) for _ in range(3)],
        rollover_slots(datetime(2027, 1, 1, tzinfo=UTC), 60, 30),
    ),
]

edits = st.lists(
    st.tuples(
        st.sampled_from(["flip", "cut", "insert", "delete"]),
        st.floats(0, 1),
        st.binary(min_size=1, max_size=8),
    ),
    min_size=1,
    max_size=4,
)


def damage(data: bytes, plan: list[tuple[str, float, bytes]]) -> bytes:
    for op, where, blob in plan:
        at = int(where * (len(data) - 1)) if data else 0
        if op == "flip" and data:
            data = data[:at] + bytes([data[at] ^ blob[0]]) + data[at + 1 :]
        elif op == "cut":
            data = data[:at]
        elif op == "insert":
            data = data[:at] + blob + data[at:]
        else:
            data = data[:at] + data[at + len(blob) :]
    return data


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample=st.sampled_from(range(len(SAMPLES))), plan=edits)
def test_damaged_files_parse_or_fail_cleanly(
    sample: int, plan: list[tuple[str, float, bytes]]
) -> None:
    data = damage(SAMPLES[sample], plan)
    try:
        doc = formats.parse_bytes(data, "damaged")
    except DnssecInputError as exc:
        assert exc.where is not None and str(exc).startswith("damaged")
    else:
        assert doc.bundles
