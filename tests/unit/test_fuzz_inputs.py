"""Fuzzing every reader of outside input: only the project's own errors may come out.

Targets: both KSR formats (IANA XML, Knot text), both SKR formats, the ceremony script
loader, the journal verifier, the QR frame parser and reassembly, the roster (as stored and
re-signed, so the body parser is reached), attestations (JSON and QR text), the signed
bundle manifest and HSM backup files. Each target starts from a valid document and applies
random edits (byte flips, cuts, insertions, duplicated spans, swapped lines), plus wholly
random input, so the parser is driven both deep and wide.

Budget: FUZZ_EXAMPLES examples per target (default 150 in CI: the whole fuzz tier, card
fuzzing included, runs in well under 2 minutes on 2 cores). `APPLIANCE_FUZZ_EXAMPLES=5000`
runs longer on demand. Any exception that is not an ApplianceError fails the test and is
turned into a reproducer under tests/data/regressions/ (see test_fuzz_regressions.py).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance import canonical, signing
from appliance.errors import ApplianceError

ROOT = Path(__file__).resolve().parents[2]
IANA = ROOT / "tests/data/iana-root"
EXAMPLES = int(os.environ.get("APPLIANCE_FUZZ_EXAMPLES", "150"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("APPLIANCE_FUZZ_RANDOM") is None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)


# --- mutations ---------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, seed: bytes, max_edits: int = 4, lines: bool = True) -> bytes:
    """`seed` with a few random edits; sometimes wholly random bytes. `lines=False` leaves
    out the line swap, whose draws depend on the content (random card answers)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=512))
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, max_edits))):
        n = len(data)
        kinds = ["flip", "set", "cut", "insert", "dup", "truncate"] + (["swap"] if lines else [])
        kind = draw(st.sampled_from(kinds))
        at = draw(st.integers(0, max(0, n - 1)))
        if kind == "flip" and n:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and n:
            data[at] = draw(st.sampled_from(b"\x00\xff\"'<>&;{}[]()=:,\n\r\\0 9-+.eE\x80\xc3"))
        elif kind == "cut" and n:
            data[at : at + draw(st.integers(1, 64))] = b""
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "dup" and n:
            span = bytes(data[at : at + draw(st.integers(1, 256))])
            data[at:at] = span
        elif kind == "truncate":
            del data[at:]
        elif kind == "swap":
            lines = bytes(data).split(b"\n")
            if len(lines) > 2:
                i = draw(st.integers(0, len(lines) - 2))
                lines[i], lines[i + 1] = lines[i + 1], lines[i]
                data = bytearray(b"\n".join(lines))
    return bytes(data)


def only_our_errors(call: Callable[[], object]) -> None:
    """Run `call`; an ApplianceError is an answer, anything else is a crash."""
    try:
        call()
    except ApplianceError as exc:
        assert exc.message  # every error tells the operator something
        assert "Traceback" not in str(exc)


# --- seeds -------------------------------------------------------------------------------


@cache
def knot_ksr() -> bytes:
    from appliance.dnssec.signer import SoftwareKeySigner
    from tests.support.knot import rollover_slots, synthetic_ksr

    zsks = [SoftwareKeySigner.generate(13) for _ in range(2)]
    return synthetic_ksr("example.", zsks, rollover_slots(datetime(2027, 1, 1, tzinfo=UTC), 20, 10))


@cache
def knot_skr() -> bytes:
    from appliance.dnssec import formats, writer
    from appliance.dnssec.policy import ZonePolicy
    from appliance.dnssec.sign import Ksk, sign_request
    from appliance.dnssec.signer import SoftwareKeySigner

    doc = formats.parse_bytes(knot_ksr(), "ksr")
    policy = ZonePolicy(
        "example.", rrsig_lifetime=timedelta(days=14), rrsig_refresh=timedelta(days=7)
    )
    skr = sign_request(
        doc,
        policy,
        [Ksk(SoftwareKeySigner.generate(13), "k")],
        now=datetime(2027, 1, 1, tzinfo=UTC) - timedelta(days=1),
    )
    return writer.render(skr)


@cache
def iana_ksr() -> bytes:
    return (IANA / "ksr-root-2010-q1-0.xml").read_bytes()


@cache
def iana_skr() -> bytes:
    return (IANA / "skr-root-2017-q2-0.xml").read_bytes()


@cache
def signer() -> signing.SoftwareSigner:
    return signing.SoftwareSigner()


@cache
def roster_world() -> tuple[bytes, Any, bytes]:
    """A signed roster of 7 officers (fake cards) and one attestation from it."""
    from appliance.sharing import attest
    from appliance.sharing import roster as rosters
    from appliance.sharing.roster import Roster
    from tests.unit.test_sharing_quorum import NOW, officers, pin_of

    roster, _, cards = officers(Roster(), [])
    data, saved = rosters.dumps(roster, signer(), when=NOW)
    att = attest.make_attestation(saved, cards[1], pin_of(cards[1].serial), now=NOW)
    return data, saved, att.to_json()


def _journal_bytes() -> bytes:
    from appliance.ceremony import journal

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.jsonl"
        w = journal.JournalWriter.create(path, clock=lambda: "2026-12-04T10:00:00Z")
        w.append("start", {"script": "mini", "seats": {"CA": "Alice"}})
        w.append("step_start", step="airgap", actor="CA")
        w.append("action", {"ok": True, "result": {"ok": True}}, step="airgap")
        w.append("step_done", step="airgap", actor="CA")
        w.sign_head(signer())
        w.append("end", {"outputs": {}})
        w.sign_head(signer())
        w.close()
        return path.read_bytes()


@cache
def journal_bytes() -> bytes:
    return _journal_bytes()


@cache
def bundle_files() -> tuple[bytes, list[str]]:
    """A signed manifest and the QR frame texts of its bundle."""
    from appliance.outputs import bundle as bundle_mod
    from appliance.outputs import frames

    bundle = bundle_mod.build_bundle(
        ceremony_id="fuzz",
        artifacts=[
            bundle_mod.Artifact("skr.xml", b"<SignedKeyResponse/>" * 20, "application/xml"),
            bundle_mod.Artifact("ds.txt", b". IN DS 20326 8 2 abcdef\n", "text/plain"),
        ],
        signer=signer(),
        script_sha256="0" * 64,
        journal_head="1" * 64,
        created="2026-12-04T10:00:00Z",
        appliance_version="0",
        image_sha256="2" * 64,
    )
    texts: list[str] = []
    for number, _name, payload in bundle.payloads():
        texts += [f.text() for f in frames.split(payload, bundle.manifest.set_id, number, 300)]
    return bundle.signed.encode(), texts


# --- targets -----------------------------------------------------------------------------


@FUZZ
@given(st.data())
@pytest.mark.parametrize(
    "seed",
    [iana_ksr, iana_skr, knot_ksr, knot_skr],
    ids=["iana-ksr", "iana-skr", "knot-ksr", "knot-skr"],
)
def test_ksr_and_skr_readers(seed: Callable[[], bytes], data: st.DataObject) -> None:
    from appliance.dnssec import formats

    blob = data.draw(mutated(seed()))
    only_our_errors(lambda: formats.parse_bytes(blob, "fuzz"))


@cache
def library_scripts() -> list[bytes]:
    return [p.read_bytes() for p in sorted((ROOT / "scripts").glob("*.toml"))]


@FUZZ
@given(st.data())
def test_script_loader(data: st.DataObject) -> None:
    from appliance.ceremony.loader import loads_script
    from appliance.ceremony.registry import default_registry

    seed = data.draw(st.sampled_from(library_scripts()))
    blob = data.draw(mutated(seed))
    only_our_errors(lambda: loads_script(blob, "fuzz.toml", default_registry()))


@FUZZ
@given(st.data())
def test_journal_verifier(data: st.DataObject) -> None:
    from appliance.ceremony import journal

    blob = data.draw(mutated(journal_bytes()))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.jsonl"
        path.write_bytes(blob)
        only_our_errors(lambda: journal.verify(path, signer().public_key_der()))


@FUZZ
@given(st.data())
def test_qr_frames_and_reassembly(data: st.DataObject) -> None:
    from appliance.outputs import decode, frames

    _, texts = bundle_files()
    chosen = data.draw(st.lists(st.sampled_from(texts), min_size=1, max_size=len(texts) + 2))
    edited = [
        data.draw(mutated(t.encode("ascii"), 2)).decode("latin-1")
        if data.draw(st.booleans())
        else t
        for t in chosen
    ]
    for text in edited:
        only_our_errors(lambda text=text: frames.parse(text))  # type: ignore[misc]
    collector = frames.Collector()
    collector.add_texts(edited, "scan")
    only_our_errors(lambda: decode.assemble(collector, signer().public_key_der()))


@FUZZ
@given(st.data())
def test_signed_manifest(data: st.DataObject) -> None:
    from appliance.outputs import bundle as bundle_mod

    manifest, _ = bundle_files()
    blob = data.draw(mutated(manifest))
    only_our_errors(lambda: bundle_mod.parse_signed_manifest(blob, signer().public_key_der()))


@FUZZ
@given(st.data())
def test_roster_as_stored(data: st.DataObject) -> None:
    from appliance.sharing import roster as rosters

    stored, _, _ = roster_world()
    blob = data.draw(mutated(stored))
    only_our_errors(lambda: rosters.loads(blob, trusted_public_key=signer().public_key_der()))


@FUZZ
@given(st.data())
def test_roster_body_resigned(data: st.DataObject) -> None:
    """Edits inside the body, then a valid signature: the strict body parser is reached."""
    from appliance.sharing import roster as rosters

    stored, _, _ = roster_world()
    doc = json.loads(stored)
    body_text = json.dumps(doc["body"], indent=1, sort_keys=True).encode()
    edited = data.draw(mutated(body_text, 2))
    try:
        body = json.loads(edited)
    except (ValueError, UnicodeDecodeError):
        return
    try:
        raw = canonical.dumps(body)
    except (TypeError, ValueError):
        return
    doc["body"] = body
    doc["signature"]["value"] = signer().sign(raw).hex()
    blob = json.dumps(doc).encode()
    only_our_errors(lambda: rosters.loads(blob, trusted_public_key=signer().public_key_der()))


@FUZZ
@given(st.data())
def test_attestation_reader(data: st.DataObject) -> None:
    from appliance.sharing import attest

    _, roster, att_json = roster_world()
    qr = attest.parse(att_json).qr_text().encode()
    seed = data.draw(st.sampled_from([att_json, qr]))
    blob = data.draw(mutated(seed))

    def go() -> None:
        parsed = attest.parse(blob)
        attest.verify(roster, parsed, now=datetime(2026, 3, 2, tzinfo=UTC))

    only_our_errors(go)


@FUZZ
@given(st.data())
def test_attestation_statement_resigned(data: st.DataObject) -> None:
    """Edited statement fields behind a structurally valid signature reach verify()."""
    from appliance.sharing import attest

    _, roster, att_json = roster_world()
    doc = json.loads(att_json)
    key = data.draw(st.sampled_from(sorted(doc["attestation"])))
    value = data.draw(
        st.one_of(st.text(max_size=40), st.integers(-(2**70), 2**70), st.none(), st.booleans())
    )
    doc["attestation"][key] = value
    blob = json.dumps(doc).encode()
    only_our_errors(
        lambda: attest.verify(roster, attest.parse(blob), now=datetime(2026, 3, 2, tzinfo=UTC))
    )


def test_b64_helpers_are_stdlib() -> None:
    """Sanity: the QR text of an attestation is base32 of its JSON (the seed above)."""
    from appliance.sharing import attest

    _, _, att_json = roster_world()
    qr = attest.parse(att_json).qr_text()
    assert base64.b32decode(qr.split(":", 1)[1] + "=" * (-len(qr.split(":", 1)[1]) % 8))
