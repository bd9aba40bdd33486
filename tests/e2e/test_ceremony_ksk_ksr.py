"""Library scripts headless on SoftHSM and virtual OpenPGP cards: ksk-generate then ksr-sign,
hsm-init, backup, restore, rksh-enroll, credential-retest, credential-rekey, holder-replace,
location-hint.

The world is what earlier ceremonies leave behind (built here with the layers' own APIs):
a SoftHSM token whose user PIN is split 3-of-3 among crypto officers' cards, its ceremony
key, a 3-of-4 backup key set on the recovery shareholders' cards, and the signed roster on
the media. Then the engine runs the library scripts unchanged: ksk-generate (activation by
card quorum, KSK, DS and trust anchor, backup by shareholders' quorum, coverage, signed
bundle, sheet) and ksr-sign on a KSR made by Knot's keymgr, whose SKR Knot validates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from appliance.ceremony import journal
from appliance.ceremony.answers import Answers, AnswersOperator, CardAnswer
from appliance.ceremony.context import Services
from appliance.ceremony.engine import Engine
from appliance.ceremony.loader import load_script
from appliance.ceremony.registry import default_registry
from appliance.ceremony.virtual_cards import VirtualCardRoom
from appliance.config import load_config
from tests.support.softhsm import SO_PIN, SoftHsm

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ceremony-e2e"
ZONE = "interop.example."


def user_pin(serial: str) -> str:
    return f"pin-{serial}"


@dataclass
class World:
    folder: Path
    config: Path
    cards: Path
    media: Path
    ceremony_key: bytes
    token: str
    seats: dict[str, str]  # seat -> card name
    serials: dict[str, str]  # card name -> serial


def _holder(cards: Path, name: str, serial: str) -> Any:
    from vcard.card import VirtualCard
    from vcard.direct import DirectTransport

    from appliance.cards.openpgp import OpenPgpSession
    from appliance.sharing.openpgp_card import OpenPgpHolderCard

    card = VirtualCard.open(cards / f"{name}.json", serial)
    return OpenPgpHolderCard(OpenPgpSession(DirectTransport(card)))


def build_world(
    softhsm: SoftHsm, folder: Path, token: str = TOKEN, *, backup_set: bool = True
) -> World:
    """The world earlier ceremonies leave (token `token`, unique per test: the SoftHSM
    fixture is shared by the session)."""
    from appliance.hsm import keygen, token_init
    from appliance.hsm.backup import create_backup
    from appliance.hsm.pkcs11_adapter import Token
    from appliance.sharing import roster as rosters
    from appliance.sharing.issue import (
        HolderPins,
        HolderSpec,
        issue_activation_set,
        issue_backup_set,
    )
    from appliance.sharing.quorum import QuorumSession, activate_hsm
    from appliance.sharing.roster import Roster

    cards = folder / "cards"
    media = folder / "media"
    seats = {f"CO{i}": f"co{i}" for i in range(1, 4)}
    seats |= {f"RKSH{i}": f"rksh{i}" for i in range(1, 5)}
    serials = {name: f"E2E0{i:04X}" for i, name in enumerate(seats.values(), start=1)}
    cards.mkdir(parents=True)
    holders = {name: _holder(cards, name, serials[name]) for name in seats.values()}

    def pins(spec: HolderSpec) -> HolderPins:
        s = spec.card.serial
        return HolderPins(bytearray(user_pin(s).encode()), bytearray(f"admin-{s}".encode()))

    def init_token(pin: bytearray) -> None:
        token_init.init_softhsm_token(softhsm.module, token, so_pin=bytearray(SO_PIN), user_pin=pin)

    issued = issue_activation_set(
        Roster(),
        token_label=token,
        threshold=3,
        holders=[
            HolderSpec(seat, f"Officer {seat}", holders[name], login=seat)
            for seat, name in seats.items()
            if seat.startswith("CO")
        ],
        choose_pins=pins,
        set_user_pin=init_token,
    )
    roster = issued.roster
    qs = QuorumSession(roster, issued.set_id)
    for i in range(1, 4):
        card = holders[f"co{i}"]
        qs.present(card, bytearray(user_pin(card.serial).encode()))
    session = activate_hsm(qs, lambda pin: Token(softhsm.module, label=token).open(pin))
    qs.close()
    try:
        ceremony = keygen.generate_ceremony_key(session)
        if backup_set:
            backed = issue_backup_set(
                roster,
                backup_name=token,
                threshold=3,
                holders=[
                    HolderSpec(seat, f"Holder {seat}", holders[name], login=seat)
                    for seat, name in seats.items()
                    if seat.startswith("RKSH")
                ],
                choose_pins=pins,
                make_backup=lambda key: create_backup(session, key, media / "backups") and None,
            )
            roster = backed.roster
        media.mkdir(parents=True, exist_ok=True)
        rosters.save(media / "roster.json", roster, ceremony)
        public = ceremony.public_key_der()
    finally:
        session.close()
    config = folder / "appliance.toml"
    config.write_text(
        f'[hsm]\nmodule = "{softhsm.module}"\ntoken = "{token}"\n\n'
        f'[paths]\nmedia = "{media}"\nworkspace = "{folder / "ws"}"\n\n'
        "[airgap]\nrequired = true\n",
        encoding="utf-8",
    )
    (folder / "root/sys/class/net/lo").mkdir(parents=True)
    return World(folder, config, cards, media, public, token, seats, serials)


PEOPLE = {
    "CA": "Alice Admin",
    "IW": "Ian Witness",
    "SSC1": "Sam Controller",
    "SSC2": "Sue Controller",
    "CO1": "Carol",
    "CO2": "Chris",
    "CO3": "Cleo",
    "RKSH1": "Rita",
    "RKSH2": "Rob",
    "RKSH3": "Ruth",
    "RKSH4": "Rene",
}


def run_script(
    world: World,
    script: str,
    inputs: dict[str, str],
    ws: Path,
    wrong_first: str | None = None,
    cards_override: dict[str, CardAnswer] | None = None,
    people: dict[str, str] | None = None,
) -> tuple[Any, AnswersOperator]:
    registry = default_registry()
    loaded = load_script(ROOT / "scripts" / f"{script}.toml", registry)
    room = VirtualCardRoom(world.cards)
    cards = {}
    for seat, name in world.seats.items():
        pin = user_pin(world.serials[name])
        pins = ("000000", pin) if seat == wrong_first else (pin,)
        cards[seat] = CardAnswer(name, pins)
    cards.update(cards_override or {})
    answers = Answers(attendance=people or PEOPLE, inputs=inputs, cards=cards)
    operator = AnswersOperator(answers, card_slots=room)
    engine = Engine(
        loaded,
        registry,
        operator,
        ws,
        config=load_config(world.config),
        services=Services(cards=room, card_slots=room, airgap_root=world.folder / "root"),
        inputs=inputs,
    )
    return engine.run(), operator


@pytest.fixture
def world(softhsm: SoftHsm, tmp_path: Path) -> World:
    return build_world(softhsm, tmp_path)


def test_ksk_generate_then_ksr_sign_on_softhsm_and_virtual_cards(world: World) -> None:
    from appliance.dnssec import formats
    from tests.support.knot import KnotZsk

    roster = str(world.media / "roster.json")
    ws1 = world.folder / "ws-ksk"
    outcome, op = run_script(world, "ksk-generate", {"roster": roster}, ws1, wrong_first="CO2")
    assert outcome.status == "ended", "\n".join(op.transcript[-15:])
    v = journal.verify(outcome.journal, world.ceremony_key)
    assert v.state.outcome == "ended" and v.unsigned_tail == 0 and v.signatures
    results = {e.step: e.data for e in v.state.entries if e.kind == "action"}
    ksk = results["generate-ksk"]["result"]
    assert ksk["algorithm"] == 8 and ksk["label"].startswith("root-ksk-a8-")
    assert results["publish"]["result"]["key_tag"] == ksk["key_tag"]
    assert set(results["backup"]["result"]["keys"]) >= {ksk["label"], "appliance-ceremony-key"}
    assert results["coverage"]["result"]["ok"] is True
    presented = results["activate"]["result"]["presented"]
    assert [p["seat"] for p in presented] == ["CO1", "CO2", "CO3"]
    # CO2's first PIN was wrong: reported with the tries left, then CO2 tried again
    wrong = "  ERROR: PIN wrong for card E2E00002: 2 tries left before the card locks."
    assert any(line.startswith(wrong) for line in op.transcript)
    assert "  CO2 types the user PIN **** (card E2E00002, 2 tries left)" in op.transcript
    bundle = results["bundle"]["result"]
    assert (Path(bundle["folder"]) / "manifest.json").exists()
    assert (Path(bundle["folder"]) / "sheet.pdf").exists()
    assert (ws1 / "outputs/ksk" / f"{ksk['label']}.ds").read_text().count(" DS ") == 2
    # the journal never holds a PIN
    text = outcome.journal.read_text()
    assert all(user_pin(s) not in text for s in world.serials.values())

    # ---- ksr-sign on a Knot KSR with the KSK just generated
    knot = KnotZsk(
        world.folder / "zsk", ZONE, 8, zsk_lifetime="40d", rrsig_lifetime="30d", rrsig_refresh="10d"
    )
    start = (int(time.time()) // 3600) * 3600
    ksr = world.folder / "interop.ksr"
    ksr.write_bytes(knot.make_ksr(start, 60))
    zones = world.folder / "zones.toml"
    zones.write_text(
        f'[zone."{ZONE}"]\nksk = ["{ksk["label"]}"]\nalgorithms = [8]\n'
        'rrsig_lifetime = "30d"\nrrsig_refresh = "10d"\ncds_cdnskey = true\n'
        'max_bundle_interval = "180d"\n'
    )
    ws2 = world.folder / "ws-ksr"
    inputs = {"roster": roster, "ksr": str(ksr), "zones": str(zones)}
    outcome2, op2 = run_script(world, "ksr-sign", inputs, ws2)
    assert outcome2.status == "ended", "\n".join(op2.transcript[-15:])
    v2 = journal.verify(outcome2.journal, world.ceremony_key)
    results2 = {e.step: e.data for e in v2.state.entries if e.kind == "action"}
    signed = results2["sign-ksr"]["result"]
    skr_path = ws2 / "outputs" / signed["skr"]
    skr, _ = formats.load_document(skr_path)
    assert skr.kind == "response" and len(skr.bundles) >= results2["load-ksr"]["result"]["bundles"]
    check = knot.validate_skr(skr_path)
    assert check.stderr == "", check.stderr


def test_a_second_ksk_ceremony_the_same_day_does_not_pass_off_the_first_key(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    """Generation is idempotent within one ceremony (power cuts), never across ceremonies: a
    KSK with this step's label made by an earlier ceremony is refused, not reported as new."""
    world = build_world(softhsm, tmp_path, token="e2e-ksk-twice")
    roster = str(world.media / "roster.json")
    first, op = run_script(world, "ksk-generate", {"roster": roster}, world.folder / "ws-a")
    assert first.status == "ended", "\n".join(op.transcript[-15:])
    second, op2 = run_script(world, "ksk-generate", {"roster": roster}, world.folder / "ws-b")
    assert second.status != "ended"
    text = "\n".join(op2.transcript)
    assert "is already on the token, and this ceremony did not generate it" in text
    v = journal.verify(second.journal, world.ceremony_key)
    assert "generate-ksk" not in {
        e.step for e in v.state.entries if e.kind == "action" and e.data.get("ok")
    }


def test_credential_retest_records_every_holder_in_the_signed_roster(
    softhsm: SoftHsm, tmp_path: Path
) -> None:
    from appliance.sharing import roster as rosters

    world = build_world(softhsm, tmp_path, token="ceremony-retest")
    roster_path = world.media / "roster.json"
    before = rosters.load(roster_path, trusted_public_key=world.ceremony_key)
    outcome, op = run_script(
        world,
        "credential-retest",
        {"roster": str(roster_path)},
        tmp_path / "ws",
        wrong_first="RKSH3",
    )
    assert outcome.status == "ended", "\n".join(op.transcript[-15:])
    v = journal.verify(outcome.journal, world.ceremony_key)
    results = {e.step: e.data for e in v.state.entries if e.kind == "action"}
    found = results["retest"]["result"]["results"]
    assert [(r["seat"], r["outcome"]) for r in found] == [(f"RKSH{i}", "ok") for i in range(1, 5)]
    after = rosters.load(roster_path, trusted_public_key=world.ceremony_key)
    assert after.serial == before.serial + 1
    members = [m for s in after.sets for m in s.members if m.role.startswith("RKSH")]
    assert len(members) == 4 and all(m.last_retest for m in members)
    assert any(line.startswith("  ERROR: PIN wrong for card") for line in op.transcript)


def test_backup_ceremony_covers_every_key(softhsm: SoftHsm, tmp_path: Path) -> None:
    world = build_world(softhsm, tmp_path, token="ceremony-backup")
    roster = str(world.media / "roster.json")
    outcome, op = run_script(world, "backup", {"roster": roster}, tmp_path / "ws")
    assert outcome.status == "ended", "\n".join(op.transcript[-15:])
    v = journal.verify(outcome.journal, world.ceremony_key)
    assert v.unsigned_tail == 0
    results = {e.step: e.data["result"] for e in v.state.entries if e.kind == "action"}
    assert results["coverage-before"]["ok"] is True  # the world's backup held every key
    assert results["backup"]["keys"] == ["appliance-ceremony-key"]
    assert [p["seat"] for p in results["backup"]["presented"]] == ["RKSH1", "RKSH2", "RKSH3"]
    assert results["coverage-after"]["ok"] is True
    assert results["coverage-after"]["backup"] == results["backup"]["backup"]
    assert len(list((world.media / "backups").iterdir())) == 2


def test_restore_onto_a_fresh_token(softhsm: SoftHsm, tmp_path: Path) -> None:
    """The HSM is lost: a new token is initialised for the same officers' cards, and a
    quorum of shareholders restores the last backup onto it."""
    from appliance.hsm import module as hsm_module

    world = build_world(softhsm, tmp_path, token="ceremony-restore")
    softhsm.delete_token("ceremony-restore")
    hsm_module.reload(softhsm.module)
    manifest = next((world.media / "backups").iterdir()) / "manifest.json"
    inputs = {"roster": str(world.media / "roster.json"), "backup": str(manifest)}
    outcome, op = run_script(world, "restore", inputs, tmp_path / "ws")
    assert outcome.status == "ended", "\n".join(op.transcript[-15:])
    v = journal.verify(outcome.journal, world.ceremony_key)
    assert v.signatures and v.unsigned_tail == 0
    results = {e.step: e.data["result"] for e in v.state.entries if e.kind == "action"}
    assert results["init-token"]["replaced"] is None
    assert results["restore"]["keys"] == ["appliance-ceremony-key"]
    assert results["coverage"]["ok"] is True
    assert any("types 'INIT-TOKEN'" in line for line in op.transcript)  # destructive step


def test_credential_rekey_replaces_the_backup_key_set(softhsm: SoftHsm, tmp_path: Path) -> None:
    from appliance.sharing import roster as rosters
    from appliance.sharing.envelope import Purpose

    world = build_world(softhsm, tmp_path, token="ceremony-rekey")
    roster_path = world.media / "roster.json"
    old = rosters.load(roster_path, trusted_public_key=world.ceremony_key)
    old_set = old.set_for(Purpose.BACKUP_KEY, "ceremony-rekey").set_id
    outcome, op = run_script(
        world, "credential-rekey", {"roster": str(roster_path)}, tmp_path / "ws"
    )
    assert outcome.status == "ended", "\n".join(op.transcript[-15:])
    v = journal.verify(outcome.journal, world.ceremony_key)
    results = {e.step: e.data["result"] for e in v.state.entries if e.kind == "action"}
    rekeyed = results["rekey"]
    assert rekeyed["old_set"] == old_set and rekeyed["new_set"] != old_set
    new = rosters.load(roster_path, trusted_public_key=world.ceremony_key)
    assert new.get_set(old_set).status == "retired"
    assert new.set_for(Purpose.BACKUP_KEY, "ceremony-rekey").set_id == rekeyed["new_set"]
    assert (world.media / "backups" / rekeyed["backup"] / "manifest.json").exists()


def test_holder_replace_reissues_one_share_with_a_quorum(softhsm: SoftHsm, tmp_path: Path) -> None:
    from appliance.sharing import roster as rosters
    from appliance.sharing.envelope import Purpose

    world = build_world(softhsm, tmp_path, token="ceremony-replace")
    _holder(world.cards, "rksh4-new", "E2E0FFFF")  # the new holder's blank card
    new_card = CardAnswer("rksh4-new", ("new-pin-4",), admin_pin="new-admin-4")
    roster_path = world.media / "roster.json"
    outcome, op = run_script(
        world,
        "holder-replace",
        {"roster": str(roster_path)},
        tmp_path / "ws",
        cards_override={"RKSH4": new_card},
    )
    assert outcome.status == "ended", "\n".join(op.transcript[-15:])
    v = journal.verify(outcome.journal, world.ceremony_key)
    results = {e.step: e.data["result"] for e in v.state.entries if e.kind == "action"}
    replaced = results["replace"]
    assert replaced["revoked"] == world.serials["rksh4"] and replaced["new_card"] == "E2E0FFFF"
    assert [p["seat"] for p in replaced["presented"]] == ["RKSH1", "RKSH2", "RKSH3"]
    after = rosters.load(roster_path, trusted_public_key=world.ceremony_key)
    cset = after.set_for(Purpose.BACKUP_KEY, "ceremony-replace")
    gone, fresh = cset.member_by_serial(world.serials["rksh4"]), cset.member_by_serial("E2E0FFFF")
    assert gone is not None and gone.revoked
    assert fresh is not None and not fresh.revoked
    assert "new-pin-4" not in outcome.journal.read_text()


@pytest.mark.parametrize("half_reset", [False, True], ids=["blank", "one-card-left-half-reset"])
def test_rksh_enroll_issues_a_backup_key_set_to_new_cards(
    softhsm: SoftHsm, tmp_path: Path, half_reset: bool
) -> None:
    """With `half_reset`, RKSH2's card was pulled during a factory reset in an earlier
    ceremony (TERMINATE DF done, ACTIVATE FILE not): enrolment finishes the reset, says so,
    and the card is issued its share like the others."""
    from vcard.card import VirtualCard

    from appliance.ceremony.operator import completed_reset_text
    from appliance.sharing import roster as rosters
    from appliance.sharing.envelope import Purpose

    world = build_world(softhsm, tmp_path, token=f"enrol-{half_reset:d}", backup_set=False)
    new_cards = {}
    for i in range(1, 6):
        serial = f"E2E1{i:04X}"
        _holder(world.cards, f"blank{i}", serial)
        new_cards[f"RKSH{i}"] = CardAnswer(
            f"blank{i}", (f"pin-{serial}",), admin_pin=f"admin-pin-{serial}"
        )
    if half_reset:
        torn = VirtualCard.open(world.cards / "blank2.json")
        torn.state.terminated = True
        torn.save()
    people = {**PEOPLE, "RKSH5": "Rosa"}
    roster_path = world.media / "roster.json"
    outcome, op = run_script(
        world,
        "rksh-enroll",
        {"roster": str(roster_path)},
        tmp_path / "ws",
        cards_override=new_cards,
        people=people,
    )
    assert outcome.status == "ended", "\n".join(op.transcript[-15:])
    warned = [line for line in op.transcript if completed_reset_text("RKSH2", "E2E10002") in line]
    assert len(warned) == (1 if half_reset else 0), op.transcript
    v = journal.verify(outcome.journal, world.ceremony_key)
    results = {e.step: e.data["result"] for e in v.state.entries if e.kind == "action"}
    assert results["enroll-rksh"]["cards"] == {f"RKSH{i}": f"E2E1{i:04X}" for i in range(1, 6)}
    issued = results["issue"]
    after = rosters.load(roster_path, trusted_public_key=world.ceremony_key)
    cset = after.set_for(Purpose.BACKUP_KEY, f"enrol-{half_reset:d}")
    assert cset.set_id == issued["set_id"] and cset.threshold == 3 and len(cset.members) == 5
    assert (world.media / "backups" / issued["backup"] / "manifest.json").exists()
    text = outcome.journal.read_text()
    assert not any(f"pin-E2E1{i:04X}" in text for i in range(1, 6))


def test_hsm_init_on_a_new_appliance(softhsm: SoftHsm, tmp_path: Path) -> None:
    """No token, no roster: the officers' blank cards are enrolled, the token initialised
    with their set, the ceremony key generated and the roster signed; then activation by
    the same cards works."""
    from appliance.sharing import roster as rosters
    from appliance.sharing.envelope import Purpose

    token = "ceremony-new"
    cards, media = tmp_path / "cards", tmp_path / "media"
    cards.mkdir()
    media.mkdir()
    (tmp_path / "root/sys/class/net/lo").mkdir(parents=True)
    config = tmp_path / "appliance.toml"
    config.write_text(
        f'[hsm]\nmodule = "{softhsm.module}"\ntoken = "{token}"\n\n'
        f'[paths]\nmedia = "{media}"\nworkspace = "{tmp_path / "ws"}"\n',
        encoding="utf-8",
    )
    seats = {f"CO{i}": f"blank-co{i}" for i in range(1, 4)}
    serials = {name: f"E2E2{i:04X}" for i, name in enumerate(seats.values(), start=1)}
    for name, serial in serials.items():
        _holder(cards, name, serial)
    world = World(tmp_path, config, cards, media, b"", token, seats, serials)
    answers = {
        seat: CardAnswer(name, (f"pin-{serials[name]}",), admin_pin=f"admin-{serials[name]}")
        for seat, name in seats.items()
    }
    outcome, op = run_script(world, "hsm-init", {}, tmp_path / "ws", cards_override=answers)
    assert outcome.status == "ended", "\n".join(op.transcript[-15:])
    entries = journal.read(outcome.journal).entries
    results = {e.step: e.data["result"] for e in entries if e.kind == "action"}
    fingerprint = results["init-token"]["ceremony_key"]
    assert results["ceremony-key"]["fingerprint"] == fingerprint
    assert [p["seat"] for p in results["activate"]["presented"]] == ["CO1", "CO2", "CO3"]
    roster = rosters.load(media / "roster.json", trusted_fingerprint=fingerprint)
    cset = roster.set_for(Purpose.HSM_ACTIVATION, token)
    assert cset.threshold == 3 and len(cset.members) == 3
    signatures = [e for e in entries if e.kind == "signature"]
    assert signatures and signatures[-1].data["key"] == fingerprint
    assert any("types 'INIT-TOKEN'" in line for line in op.transcript)


def test_location_hint_sealed_then_opened_by_a_quorum(softhsm: SoftHsm, tmp_path: Path) -> None:
    from appliance.sharing import roster as rosters

    world = build_world(softhsm, tmp_path, token="ceremony-hint")
    hint = "Safe-deposit box 1207, First Bank, Main Street branch"
    roster_path = world.media / "roster.json"
    registry = default_registry()
    loaded = load_script(ROOT / "scripts/location-hint.toml", registry)
    room = VirtualCardRoom(world.cards)
    cards = {
        seat: CardAnswer(name, (user_pin(world.serials[name]),))
        for seat, name in world.seats.items()
    }
    answers = Answers(
        attendance=PEOPLE,
        inputs={"roster": str(roster_path)},
        cards=cards,
        steps={"seal-hint": {"text": hint}},
    )
    op = AnswersOperator(answers, card_slots=room)
    engine = Engine(
        loaded,
        registry,
        op,
        tmp_path / "ws",
        config=load_config(world.config),
        services=Services(cards=room, card_slots=room, airgap_root=world.folder / "root"),
        inputs=answers.inputs,
    )
    outcome = engine.run()
    assert outcome.status == "ended", "\n".join(op.transcript[-15:])
    v = journal.verify(outcome.journal, world.ceremony_key)
    results = {e.step: e.data["result"] for e in v.state.entries if e.kind == "action"}
    note_id = results["seal-hint"]["note_id"]
    assert results["open-hint"]["note_id"] == note_id
    assert [p["seat"] for p in results["open-hint"]["presented"]] == ["RKSH2", "RKSH3", "RKSH4"]
    # the room saw the hint, after the opening was journaled; the journal never holds it
    shown = [line for line in op.transcript if hint in line]
    assert shown == [f"  Location hint of RKSH1: {hint}"]
    assert op.transcript.index(shown[0]) > next(
        i for i, line in enumerate(op.transcript) if "opened by RKSH2, RKSH3, RKSH4" in line
    )
    assert "Safe-deposit" not in outcome.journal.read_text()
    roster = rosters.load(roster_path, trusted_public_key=world.ceremony_key)
    assert roster.get_note(note_id).about == world.serials["rksh1"]
    assert b"Safe-deposit" not in roster_path.read_bytes()
