"""ksr-sign headless on SoftHSM and virtual cards with a KSR that violates the policy.

The KSR (Knot format, P-256 ZSKs) has a 100-day gap between two bundles, more than the
zone's 90-day `max_bundle_interval`: KSR-POLICY-BUNDLE-INTERVALS, an overridable
requirement. Without an override the check step fails naming it and no SKR is written;
with the CA's override and the IW's confirmation the KSR is signed, the SKR verifies with
the HSM's KSK, the journal (verified) records who overrode what and why, and a resume
after an interruption signs with exactly the journaled override. A KSR with a deprecated
algorithm (5) cannot be overridden even when the answers ask for it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from appliance.ceremony import journal
from appliance.ceremony.answers import OVERRIDE_TOPIC as ANSWERS_TOPIC
from appliance.ceremony.answers import Answers, AnswersOperator, CardAnswer
from appliance.ceremony.context import Services
from appliance.ceremony.engine import Engine
from appliance.ceremony.loader import load_script
from appliance.ceremony.operator import StepView
from appliance.ceremony.registry import default_registry
from appliance.ceremony.virtual_cards import VirtualCardRoom
from appliance.config import load_config
from tests.e2e.test_ceremony_ksk_ksr import PEOPLE, World, _holder, build_world, user_pin
from tests.support.softhsm import SoftHsm

ROOT = Path(__file__).resolve().parents[2]
ZONE = "override.example."
KSK_LABEL = "override-ksk-a13"
VIOLATED = "KSR-POLICY-BUNDLE-INTERVALS"
REASON = "Zone operator's 100-day gap agreed in change ticket 4711"


@dataclass
class Setup:
    world: World
    ksk: Any  # the HSM KSK's DNSKEY rdata
    ksr: Path
    deprecated_ksr: Path
    zones: Path


def _generate_ksk(softhsm: SoftHsm, world: World) -> Any:
    """What ksk-generate leaves: a P-256 KSK on the token (made with the layers' APIs)."""
    from appliance.dnssec.sign import ksk_dnskey
    from appliance.hsm import keygen, keys
    from appliance.hsm.pkcs11_adapter import Token
    from appliance.sharing import roster as rosters
    from appliance.sharing.envelope import Purpose
    from appliance.sharing.quorum import QuorumSession, activate_hsm

    roster = rosters.load(world.media / "roster.json", trusted_public_key=world.ceremony_key)
    qs = QuorumSession(roster, roster.set_for(Purpose.HSM_ACTIVATION, world.token).set_id)
    for i in range(1, 4):
        card = _holder(world.cards, f"co{i}", world.serials[f"co{i}"])
        qs.present(card, bytearray(user_pin(card.serial).encode()))
    session = activate_hsm(qs, lambda pin: Token(softhsm.module, label=world.token).open(pin))
    qs.close()
    try:
        keygen.generate_key(
            session, 13, role="ksk", zone=ZONE, label=KSK_LABEL, allow_uncoverable=True
        )
        return ksk_dnskey(keys.dnssec_key(session, KSK_LABEL))
    finally:
        session.close()


def _knot_ksr(gap_days: int, *, deprecated: bool = False) -> bytes:
    import dns.rdataclass
    import dns.rdatatype
    from dns.rdtypes.ANY.DNSKEY import DNSKEY

    from appliance.dnssec import knot as knot_format
    from appliance.dnssec.signer import SoftwareKeySigner
    from tests.support.knot import synthetic_ksr

    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    zsks = [SoftwareKeySigner.generate(13) for _ in range(2)]
    slots = [
        (start, [0]),
        (start + timedelta(days=20), [0, 1]),
        (start + timedelta(days=20 + gap_days), [1]),
    ]
    data = synthetic_ksr(ZONE, zsks, slots)
    if deprecated:  # an algorithm-5 ZSK added to the first slot
        rsa = SoftwareKeySigner.generate(8)
        key = DNSKEY(dns.rdataclass.IN, dns.rdatatype.DNSKEY, 256, 3, 5, rsa.dnskey_public_key)
        record = knot_format.format_record(ZONE, 3600, key).encode()
        at = data.index(b"\n;; KeySigningRequest", 10)
        data = data[:at] + b"\n" + record + data[at:]
    return data


@pytest.fixture(scope="module")
def setup(softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    folder = tmp_path_factory.mktemp("ksr-override")
    world = build_world(softhsm, folder, token="ceremony-override", backup_set=False)
    ksk = _generate_ksk(softhsm, world)
    ksr = folder / "gap.ksr"
    ksr.write_bytes(_knot_ksr(100))
    deprecated = folder / "alg5.ksr"
    deprecated.write_bytes(_knot_ksr(30, deprecated=True))
    zones = folder / "zones.toml"
    zones.write_text(f'[zone."{ZONE}"]\nksk = ["{KSK_LABEL}"]\nalgorithms = [13]\n')
    return Setup(world, ksk, ksr, deprecated, zones)


class _PowerCut(Exception):
    """Stands for the power going off as a step begins (nothing journaled after it)."""


class _CutAt(AnswersOperator):
    def __init__(self, answers: Answers, *, card_slots: Any, step: str) -> None:
        super().__init__(answers, card_slots=card_slots)
        self.cut_step = step

    def begin_step(self, view: StepView) -> None:
        if view.step_id == self.cut_step:
            raise _PowerCut(view.step_id)
        super().begin_step(view)


def _engine(
    s: Setup, ws: Path, ksr: Path, steps: dict[str, Any], cut_at: str = ""
) -> tuple[Engine, AnswersOperator]:
    registry = default_registry()
    loaded = load_script(ROOT / "scripts" / "ksr-sign.toml", registry)
    room = VirtualCardRoom(s.world.cards)
    cards = {
        seat: CardAnswer(name, (user_pin(s.world.serials[name]),))
        for seat, name in s.world.seats.items()
    }
    inputs = {"roster": str(s.world.media / "roster.json"), "ksr": str(ksr), "zones": str(s.zones)}
    answers = Answers(attendance=PEOPLE, inputs=inputs, cards=cards, steps=steps)
    op: AnswersOperator = (
        _CutAt(answers, card_slots=room, step=cut_at)
        if cut_at
        else AnswersOperator(answers, card_slots=room)
    )
    engine = Engine(
        loaded,
        registry,
        op,
        ws,
        config=load_config(s.world.config),
        services=Services(cards=room, card_slots=room, airgap_root=s.world.folder / "root"),
        inputs=inputs,
    )
    return engine, op


def _failed_actions(path: Path) -> list[Mapping[str, Any]]:
    return [e.data for e in journal.read(path).entries if e.kind == "action" and not e.data["ok"]]


def _verify_skr(skr_path: Path, ksk: Any) -> int:
    """Every DNSKEY RRSIG of the SKR validates with the HSM's KSK alone."""
    import dns.dnssec
    import dns.rdataclass
    import dns.rdataset
    import dns.rdatatype

    from appliance.dnssec import formats

    skr, _ = formats.load_document(skr_path)
    assert skr.kind == "response"
    only_ksk = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.DNSKEY)
    only_ksk.add(ksk, 3600)
    count = 0
    for b in skr.bundles:
        keys = dns.rdataset.Rdataset(dns.rdataclass.IN, dns.rdatatype.DNSKEY)
        for k in b.keys:
            keys.add(k.dnskey(), k.ttl)
        assert ksk in keys
        for sig in b.signatures:
            if sig.rrsig.type_covered == dns.rdatatype.DNSKEY:
                dns.dnssec.validate_rrsig(
                    (skr.zone, keys), sig.rrsig, {skr.zone: only_ksk}, now=sig.rrsig.inception + 1
                )
                count += 1
    return count


def test_the_answers_and_the_action_agree_on_the_override_topic() -> None:
    from appliance.ceremony.actions.dnssec import OVERRIDE_TOPIC

    assert OVERRIDE_TOPIC == ANSWERS_TOPIC


def test_a_violating_ksr_is_not_signed_without_an_override(setup: Setup, tmp_path: Path) -> None:
    engine, op = _engine(setup, tmp_path / "ws", setup.ksr, {})
    outcome = engine.run()
    assert outcome.status == "aborted"
    failed = _failed_actions(outcome.journal)
    assert [f["action"] for f in failed] == ["ksr.check"]
    assert VIOLATED in failed[0]["error"] and "nothing was signed" in failed[0]["error"]
    # the room heard the violation with its message, and the CA's refusal to override
    assert any(
        line.startswith(f"  ERROR: {VIOLATED}: ") and "100d" in line for line in op.transcript
    ), op.transcript
    assert any(line.startswith("  CA chooses refuse:") for line in op.transcript)
    assert any("overrides = {ID" in line for line in op.transcript)  # what to do
    assert not (tmp_path / "ws" / "outputs" / "skr").exists()
    assert journal.verify(outcome.journal, setup.world.ceremony_key).state.outcome == "aborted"


def test_an_override_without_the_witness_is_refused(setup: Setup, tmp_path: Path) -> None:
    steps = {"check-ksr": {"overrides": {VIOLATED: REASON}, "confirm": False}}
    engine, op = _engine(setup, tmp_path / "ws", setup.ksr, steps)
    outcome = engine.run()
    assert outcome.status == "aborted"
    assert [f["action"] for f in _failed_actions(outcome.journal)] == ["ksr.check"]
    assert (
        f"  IW REFUSES: Do you witness CA overriding {VIOLATED} for this reason: {REASON}?"
        in op.transcript
    )
    assert not (tmp_path / "ws" / "outputs" / "skr").exists()


def test_a_witnessed_override_signs_and_is_journaled(
    setup: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.hazmat.primitives import serialization

    from appliance.cli import main

    ws = tmp_path / "ws"
    steps = {"check-ksr": {"overrides": {VIOLATED: REASON, "KSR-KEY-SIZE": "not asked"}}}
    engine, op = _engine(setup, ws, setup.ksr, steps)
    outcome = engine.run()
    assert outcome.status == "ended", "\n".join(op.transcript[-20:])
    v = journal.verify(outcome.journal, setup.world.ceremony_key)
    assert v.state.outcome == "ended" and v.unsigned_tail == 0 and v.signatures
    results = {e.step: e.data["result"] for e in v.state.entries if e.kind == "action"}
    check = results["check-ksr"]
    assert check["violations"] == [VIOLATED]
    assert check["overrides"] == [
        {
            "requirement": VIOLATED,
            "reason": REASON,
            "requested_by": "CA",
            "requested_by_name": PEOPLE["CA"],
            "witnessed_by": "IW",
            "witnessed_by_name": PEOPLE["IW"],
        }
    ]
    report = check["report"]
    assert report["ok"] is True
    assert [x["requirement"] for x in report["violations"]] == [VIOLATED]
    assert report["overrides_used"] == [
        {"requirement": VIOLATED, "reason": REASON, "witness": f"IW ({PEOPLE['IW']})"}
    ]
    # only the violated requirement was asked about; the IW confirmed it
    assert f"  CA requests: override {VIOLATED}" in op.transcript
    assert not any("KSR-KEY-SIZE" in line for line in op.transcript)
    assert any(
        line.startswith(f"  IW confirms: Do you witness CA overriding {VIOLATED}")
        for line in op.transcript
    )
    signed = results["sign-ksr"]
    assert signed["overrides_used"] == [VIOLATED]
    assert _verify_skr(ws / "outputs" / signed["skr"], setup.ksk) >= 3
    # `appliance verify journal` with the ceremony key
    pem = tmp_path / "ceremony-key.pem"
    pem.write_bytes(
        serialization.load_der_public_key(setup.world.ceremony_key).public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    capsys.readouterr()
    assert main(["verify", "journal", str(outcome.journal), "--pubkey", str(pem)]) == 0
    out = capsys.readouterr().out
    assert "chain intact" in out and "ceremony ENDED" in out


def test_resume_signs_with_exactly_the_journaled_override(setup: Setup, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    steps = {"check-ksr": {"overrides": {VIOLATED: REASON}}}
    engine, _ = _engine(setup, ws, setup.ksr, steps, cut_at="sign-ksr")
    with pytest.raises(_PowerCut):
        engine.run()
    hsm = engine.session.pop("hsm", None)
    if hsm is not None:
        hsm.close()
    assert not (ws / "outputs" / "skr").exists()
    # the resumed run has no override answers: the override comes from the journal only
    engine2, op2 = _engine(setup, ws, setup.ksr, {})
    outcome = engine2.run()
    assert outcome.status == "ended" and outcome.resumed, "\n".join(op2.transcript[-20:])
    assert not any(" requests: override" in line for line in op2.transcript)
    v = journal.verify(outcome.journal, setup.world.ceremony_key)
    results = {e.step: e.data["result"] for e in v.state.entries if e.kind == "action"}
    assert results["sign-ksr"]["overrides_used"] == [VIOLATED]
    assert _verify_skr(ws / "outputs" / results["sign-ksr"]["skr"], setup.ksk) >= 3


def test_a_deprecated_algorithm_cannot_be_overridden(setup: Setup, tmp_path: Path) -> None:
    steps = {"check-ksr": {"overrides": {"KSR-ALG-DEPRECATED": "please", VIOLATED: REASON}}}
    engine, op = _engine(setup, tmp_path / "ws", setup.deprecated_ksr, steps)
    outcome = engine.run()
    assert outcome.status == "aborted"
    failed = _failed_actions(outcome.journal)
    assert [f["action"] for f in failed] == ["ksr.check"]
    assert "KSR-ALG-DEPRECATED" in failed[0]["error"]
    assert "KSR-ALG-DEPRECATED can never be overridden" in failed[0]["error"]
    assert (
        "  ERROR: KSR-ALG-DEPRECATED cannot be overridden: deprecated algorithms are "
        "refused in every case." in op.transcript
    )
    assert not any("override KSR-ALG-DEPRECATED" in line for line in op.transcript)
    assert not (tmp_path / "ws" / "outputs" / "skr").exists()


def test_the_zones_files_rollover_roles_are_honoured(setup: Setup, tmp_path: Path) -> None:
    """`ksk_schedule` reaches the signer through ZoneEntry.bind: a KSK marked revoked is
    published with the REVOKE flag (385) and signs; a plain Ksk per label would be 257."""
    import dns.rdatatype

    from appliance.dnssec import formats

    zones = tmp_path / "zones.toml"
    zones.write_text(
        f'[zone."{ZONE}"]\nalgorithms = [13]\n'
        f'ksk_schedule = [{{label = "{KSK_LABEL}", revoked = true}}]\n'
    )
    ksr = tmp_path / "plain.ksr"
    ksr.write_bytes(_knot_ksr(30))
    ws = tmp_path / "ws"
    engine, op = _engine(dataclasses.replace(setup, zones=zones), ws, ksr, {})
    outcome = engine.run()
    assert outcome.status == "ended", "\n".join(op.transcript[-20:])
    results = {
        e.step: e.data["result"]
        for e in journal.read(outcome.journal).entries
        if e.kind == "action"
    }
    assert results["check-ksr"]["violations"] == [] and results["check-ksr"]["overrides"] == []
    skr, _ = formats.load_document(ws / "outputs" / results["sign-ksr"]["skr"])
    for b in skr.bundles:
        assert sorted(k.flags for k in b.keys if k.flags & 1) == [385]
        assert any(s.rrsig.type_covered == dns.rdatatype.DNSKEY for s in b.signatures)


def test_each_requirement_needs_its_own_override(setup: Setup, tmp_path: Path) -> None:
    """A policy horizon of 100 days adds KSR-POLICY-SIG-HORIZON: overriding the interval
    alone does not let the KSR through."""
    zones = tmp_path / "zones.toml"
    zones.write_text(
        f'[zone."{ZONE}"]\nksk = ["{KSK_LABEL}"]\nalgorithms = [13]\nhorizon = "100d"\n'
    )
    steps = {"check-ksr": {"overrides": {VIOLATED: REASON}}}
    engine, op = _engine(dataclasses.replace(setup, zones=zones), tmp_path / "ws", setup.ksr, steps)
    outcome = engine.run()
    assert outcome.status == "aborted"
    failed = _failed_actions(outcome.journal)
    assert [f["action"] for f in failed] == ["ksr.check"]
    assert "KSR-POLICY-SIG-HORIZON" in failed[0]["error"]
    assert any(
        line.startswith("  CA chooses refuse:") and "KSR-POLICY-SIG-HORIZON" in line
        for line in op.transcript
    )
    assert not (tmp_path / "ws" / "outputs" / "skr").exists()
