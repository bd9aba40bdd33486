"""Card pulled at every APDU boundary of the HSM activation, restore, enrolment and retest
flows: a clear error each time, then a successful retry, no PIN try spent, a whole card.

In process (every flow, every boundary): a transport in front of a real virtual card pulls
the card at the Nth command, either *before* the card sees it or *after* the card acted on
it with the answer lost (what pcscd does when a card leaves during a command). The flow
must raise the credentials layer's CardRemoved (an ApplianceError: the operator sees a
message, never a traceback); the card is put back, a new session opened (as the room does)
and the same flow, retried once, must succeed. The holder's PIN (PW1) retry counter must
never fall (the operator only ever typed the right PIN) and every PIN-bearing command that
reached the card must carry a PIN the operator or the profile meant.

Through pyscard -> pcscd -> vpcd (the production path) the retest and quorum flows are
pulled at every boundary with the card server's control interface (the reader really goes
empty and PcscTransport sees it).

Each test prints the number of points tried; docs/reliability.md records them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from appliance.cards.errors import CardRemoved as CardsCardRemoved
from appliance.errors import ApplianceError
from appliance.sharing import quorum as quorum_mod
from appliance.sharing.envelope import Purpose
from appliance.sharing.errors import CardRemoved
from appliance.sharing.issue import (
    HolderPins,
    HolderSpec,
    issue_activation_set,
    issue_backup_set,
    provision_card,
    seal_member,
)
from appliance.sharing.openpgp_card import OpenPgpHolderCard
from appliance.sharing.quorum import QuorumSession
from appliance.sharing.retest import retest
from appliance.sharing.roster import Roster

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
PIN_INS = (0x20, 0x24, 0x2C)


def pin_of(serial: str) -> bytes:
    return f"pin-{serial}".encode()


def admin_of(serial: str) -> bytes:
    return f"admin-{serial}".encode()


def pins(spec: HolderSpec) -> HolderPins:
    s = spec.card.serial
    return HolderPins(bytearray(pin_of(s)), bytearray(admin_of(s)))


@dataclass
class PullingTransport:
    """vcard's card behind a transport that can pull it at the Nth command."""

    card: Any
    pull_at: int = 0  # 0: never
    phase: str = "before"  # or "after": the card acts, the answer is lost
    sent: int = 0
    present: bool = True
    pins_seen: list[tuple[int, int, bytes]] = field(default_factory=list)

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        if not self.present:
            raise CardsCardRemoved("test reader")
        self.sent += 1
        if self.sent == self.pull_at and self.phase == "before":
            self.present = False
            raise CardsCardRemoved("test reader")
        if apdu[1] in PIN_INS and len(apdu) > 5:
            self.pins_seen.append((apdu[1], apdu[3], bytes(apdu[5 : 5 + apdu[4]])))
        response = self.card.process(bytes(apdu))
        if self.sent == self.pull_at:
            self.present = False
            raise CardsCardRemoved("test reader")
        return response[:-2], int.from_bytes(response[-2:], "big")

    def reinsert(self) -> None:
        self.card.reset()
        self.present = True
        self.pull_at = 0


def new_card(serial: str) -> Any:
    from vcard.card import VirtualCard
    from vcard.state import CardState

    return VirtualCard(CardState.factory(serial))


def holder(transport: PullingTransport, *, enrolment: bool = False) -> OpenPgpHolderCard:
    from appliance.cards.openpgp import OpenPgpSession

    return OpenPgpHolderCard(OpenPgpSession(transport, finish_reset=enrolment))


def clone(card: Any) -> Any:
    from vcard.card import VirtualCard
    from vcard.state import CardState

    return VirtualCard(CardState.from_json(card.state.to_json()))


@dataclass
class Issued:
    roster: Roster
    set_id: str
    cards: dict[str, Any]  # serial -> VirtualCard (state to clone per point)
    secret_check: bytes  # what the flow's secret use must produce


def issue(purpose: Purpose, prefix: str) -> Issued:
    cards = {f"{prefix}{i:04X}": new_card(f"{prefix}{i:04X}") for i in range(1, 4)}
    specs = [
        HolderSpec(
            "CO" if purpose is Purpose.HSM_ACTIVATION else "RKSH",
            f"H{i}",
            holder(PullingTransport(c)),
            login=f"X{i}",
        )
        for i, c in enumerate(cards.values(), start=1)
    ]
    seen: list[bytes] = []
    if purpose is Purpose.HSM_ACTIVATION:
        done = issue_activation_set(
            Roster(),
            token_label="tok",
            threshold=2,
            holders=specs,
            choose_pins=pins,
            set_user_pin=lambda p: seen.append(bytes(p)),
            now=NOW,
        )
    else:
        done = issue_backup_set(
            Roster(),
            backup_name="tok",
            threshold=2,
            holders=specs,
            choose_pins=pins,
            make_backup=lambda k: seen.append(bytes(k)),
            now=NOW,
        )
    return Issued(done.roster, done.set_id, cards, seen[0])


def points(run: Callable[[PullingTransport], object], card: Any) -> int:
    """APDUs one clean run of `run` sends to a clone of `card`."""
    t = PullingTransport(clone(card))
    run(t)
    return t.sent


@dataclass
class Tally:
    tried: int = 0
    errors: set[str] = field(default_factory=set)


def pull_everywhere(
    name: str,
    card: Any,
    attempt: Callable[[PullingTransport], object],
    check: Callable[[PullingTransport, object], None],
    meant_pins: set[bytes],
) -> Tally:
    """For every boundary and phase: pull, see a clean CardRemoved, retry once, check."""
    total = points(attempt, card)
    tally = Tally()
    for n in range(1, total + 1):
        for phase in ("before", "after"):
            t = PullingTransport(clone(card), pull_at=n, phase=phase)
            tries0 = t.card.state.tries_pw1
            try:
                attempt(t)
            except ApplianceError as exc:
                assert isinstance(exc, CardRemoved | CardsCardRemoved), (name, n, phase, exc)
                assert exc.hint, "a removed card tells the operator what to do"
                tally.errors.add(type(exc).__name__)
            else:
                # only the last answer lost can go unnoticed: the flow was already done
                assert n == total and phase == "after", (name, n, phase, "no error")
            assert t.card.state.tries_pw1 >= min(tries0, 3), (name, n, phase, "PIN try spent")
            t.reinsert()
            result = attempt(t)
            check(t, result)
            assert t.card.state.tries_pw1 == 3, (name, n, phase, "PIN try spent")
            for ins, ref, value in t.pins_seen:
                assert value in meant_pins, (name, n, phase, f"INS {ins:02X} P2 {ref:02X}")
            tally.tried += 1
    print(
        f"\n{name}: {tally.tried} pull points ({total} APDU boundaries x before/after), "
        f"errors seen: {sorted(tally.errors)}"
    )
    return tally


def test_activation_quorum_survives_a_pull_at_every_apdu() -> None:
    world = issue(Purpose.HSM_ACTIVATION, "AC00")
    serials = list(world.cards)
    first, second = world.cards[serials[0]], world.cards[serials[1]]

    def attempt(t: PullingTransport) -> object:
        session = QuorumSession(world.roster, world.set_id)
        try:
            session.present(holder(t), bytearray(pin_of(serials[0])))
            # the second officer's card is fine; the first one's is the one pulled
            session.present(holder(PullingTransport(clone(second))), bytearray(pin_of(serials[1])))
            return quorum_mod.activate_hsm(session, lambda pin: bytes(pin))
        finally:
            session.close()

    def check(t: PullingTransport, result: object) -> None:
        assert result == world.secret_check

    tally = pull_everywhere(
        "HSM activation (pin-quorum)", first, attempt, check, {pin_of(serials[0])}
    )
    assert tally.tried >= 10


def test_a_retry_within_the_same_quorum_session_is_accepted() -> None:
    """The room keeps one quorum session while a card is re-seated: after a pull at any
    boundary of `present`, presenting the same card again must work (not 'already
    presented'), and the session must count it once."""
    world = issue(Purpose.HSM_ACTIVATION, "AD00")
    serials = list(world.cards)
    first, second = world.cards[serials[0]], world.cards[serials[1]]
    total = points(
        lambda t: QuorumSession(world.roster, world.set_id).present(
            holder(t), bytearray(pin_of(serials[0]))
        ),
        first,
    )
    tried = 0
    for n in range(1, total + 1):
        for phase in ("before", "after"):
            t = PullingTransport(clone(first), pull_at=n, phase=phase)
            with QuorumSession(world.roster, world.set_id) as session:
                try:
                    session.present(holder(t), bytearray(pin_of(serials[0])))
                except (CardRemoved, CardsCardRemoved):
                    # the operator was told to re-seat the card and repeat: nothing kept
                    assert session.have == 0, (n, phase, "a share was kept after an error")
                t.reinsert()
                session.present(holder(t), bytearray(pin_of(serials[0])))
                assert session.have == 1, (n, phase)
                session.present(
                    holder(PullingTransport(clone(second))), bytearray(pin_of(serials[1]))
                )
                assert quorum_mod.activate_hsm(session, bytes) == world.secret_check
            tried += 1
    print(f"\nquorum session re-seat: {tried} pull points")


def test_restore_key_quorum_survives_a_pull_at_every_apdu() -> None:
    world = issue(Purpose.BACKUP_KEY, "BA00")
    serials = list(world.cards)
    third, second = world.cards[serials[2]], world.cards[serials[1]]

    def attempt(t: PullingTransport) -> object:
        with QuorumSession(world.roster, world.set_id) as session:
            session.present(holder(PullingTransport(clone(second))), bytearray(pin_of(serials[1])))
            session.present(holder(t), bytearray(pin_of(serials[2])))
            return quorum_mod.with_backup_key(session, lambda key: bytes(key))

    def check(t: PullingTransport, result: object) -> None:
        assert result == world.secret_check

    tally = pull_everywhere(
        "restore (backup-key quorum)", third, attempt, check, {pin_of(serials[2])}
    )
    assert tally.tried >= 10


def test_retest_survives_a_pull_at_every_apdu() -> None:
    world = issue(Purpose.BACKUP_KEY, "BB00")
    serial = list(world.cards)[0]

    def attempt(t: PullingTransport) -> object:
        return retest(world.roster, world.set_id, holder(t), bytearray(pin_of(serial)), now=NOW)

    def check(t: PullingTransport, result: object) -> None:
        res, updated = result  # type: ignore[misc]
        assert res.ok, res
        assert updated.get_set(world.set_id).member_by_serial(serial).last_retest

    tally = pull_everywhere("retest", world.cards[serial], attempt, check, {pin_of(serial)})
    assert tally.tried >= 10


def test_enrolment_survives_a_pull_at_every_apdu() -> None:
    """Provisioning a holder's card and sealing the share to it. A retry starts from a
    factory reset; when the pull came after the admin PIN was changed, the reset blocks the
    admin PIN on purpose (the only way to reset a card whose admin PIN is not the default)."""
    from appliance.sharing import envelope, slip39
    from appliance.sharing.ports import FACTORY_ADMIN_PIN, FACTORY_USER_PIN

    serial = "E0000001"
    blank = new_card(serial)
    share = slip39.split(bytearray(range(32)), 2, 3)[0]

    def attempt(t: PullingTransport) -> object:
        card = holder(t, enrolment=True)  # the room opens a card to enrol this way
        spec = HolderSpec("RKSH", "Rita", card, login="RKSH1")
        provision_card(spec, pins(spec))
        return seal_member(
            card=card,
            share=bytearray(share),
            purpose=Purpose.BACKUP_KEY,
            role="RKSH",
            holder="Rita",
            when=NOW,
            write_to_card=True,
        )

    def check(t: PullingTransport, member: object) -> None:
        card = holder(t)
        card.verify_pin(bytearray(pin_of(serial)))
        on_card = card.read_private_do()
        assert on_card.hex() == member.envelope  # type: ignore[attr-defined]
        assert bytes(envelope.open_with_card(card, on_card)) == share
        assert t.card.state.pw3 == admin_of(serial).hex()
        assert t.card.state.tries_pw3 == 3

    meant = {
        pin_of(serial),
        admin_of(serial),
        FACTORY_USER_PIN,
        FACTORY_ADMIN_PIN,
        FACTORY_USER_PIN + pin_of(serial),
        FACTORY_ADMIN_PIN + admin_of(serial),
        b"\xff" * 8,
    }
    tally = pull_everywhere("enrolment (provision + seal)", blank, attempt, check, meant)
    assert tally.tried >= 40


# --- the production path: pyscard -> pcscd -> vpcd ---------------------------------------


@pytest.mark.usefixtures("card_world")
def test_retest_and_quorum_through_pcscd_with_the_card_pulled_at_every_apdu(
    card_room: Any,
) -> None:
    from vcard.card import VirtualCard
    from vcard.direct import DirectTransport

    from appliance.cards.openpgp import OpenPgpSession

    made = [card_room.new_card(f"rel-{i}") for i in range(2)]
    specs = []
    for i, c in enumerate(made):
        vc = VirtualCard.open(card_room.state_file(c.name))
        specs.append(
            HolderSpec(
                "RKSH",
                f"H{i}",
                OpenPgpHolderCard(OpenPgpSession(DirectTransport(vc))),
                login=f"R{i}",
            )
        )
    keys: list[bytes] = []
    done = issue_backup_set(
        Roster(),
        backup_name="tok",
        threshold=2,
        holders=specs,
        choose_pins=pins,
        make_backup=lambda k: keys.append(bytes(k)),
        now=NOW,
    )
    for spec in specs:
        spec.card._s._transport.card.save()  # type: ignore[attr-defined]
    roster, set_id = done.roster, done.set_id
    a, b = made
    card_room.insert(b.name, 1)
    other = OpenPgpHolderCard(card_room.session(1))

    class Puller:
        """PcscTransport whose card the card server pulls just before the Nth command."""

        def __init__(self, pull_at: int) -> None:
            self.inner = card_room.transport(0)
            self.pull_at, self.sent = pull_at, 0

        def transmit(self, apdu: bytes) -> tuple[bytes, int]:
            self.sent += 1
            if self.sent == self.pull_at:
                card_room.remove(0)
            return self.inner.transmit(apdu)  # PcscTransport raises CardRemoved

    def flows(t: Puller) -> object:
        card = OpenPgpHolderCard(OpenPgpSession(t))
        res, _ = retest(roster, set_id, card, bytearray(pin_of(a.serial)), now=NOW)
        assert res.ok
        with QuorumSession(roster, set_id) as session:
            session.present(card, bytearray(pin_of(a.serial)))
            session.present(other, bytearray(pin_of(b.serial)))
            return quorum_mod.with_backup_key(session, bytes)

    card_room.insert(a.name, 0)
    clean = Puller(0)
    assert flows(clean) == keys[0]
    total = clean.sent
    tried = 0
    for n in range(1, total + 1):
        t = Puller(n)
        with pytest.raises((CardRemoved, CardsCardRemoved)) as err:
            flows(t)
        assert err.value.hint
        card_room.insert(a.name, 0)
        assert flows(Puller(0)) == keys[0]
        assert VirtualCard.open(card_room.state_file(a.name)).state.tries_pw1 == 3
        tried += 1
    print(f"\npcscd path (retest + quorum): {tried} pull points of {total} APDU boundaries")
    assert tried >= 10


# --- the engine: hsm.activate with a card pulled at every APDU of one officer's turn --------

ACTIVATE_SCRIPT = """
[ceremony]
id = "activate-only"
title = "Activation under card faults"
version = "1.0"
kind = "exercise"

[roles]
CA = 1
IW = 1
CO = 3

[[act]]
id = "a"
title = "Act 1"

[[act.step]]
id = "activate"
title = "Activate the HSM"
roles = ["CO"]
say = "Officers, one at a time."
action = "hsm.activate"
params = { quorum = 3 }

[[act.step]]
id = "close"
title = "Close"
roles = ["CA"]
say = "Done."
"""


def _run_activation(world: Any, tmp_path: Path, ws: Path) -> tuple[Any, Any]:
    """ACTIVATE_SCRIPT, headless: CO1..CO3 present their cards through the virtual room."""
    from appliance.ceremony.answers import Answers, AnswersOperator, CardAnswer
    from appliance.ceremony.context import Services
    from appliance.ceremony.engine import Engine
    from appliance.ceremony.loader import loads_script
    from appliance.ceremony.registry import default_registry
    from appliance.ceremony.virtual_cards import VirtualCardRoom
    from appliance.config import load_config
    from tests.e2e import test_ceremony_ksk_ksr as e2e

    registry = default_registry()
    script_path = tmp_path / "activate-only.toml"
    script_path.write_text(ACTIVATE_SCRIPT)
    roster = str(world.media / "roster.json")
    room = VirtualCardRoom(world.cards)
    cards = {
        seat: CardAnswer(name, (e2e.user_pin(world.serials[name]),))
        for seat, name in world.seats.items()
        if seat.startswith("CO")
    }
    people = {k: v for k, v in e2e.PEOPLE.items() if k in ("CA", "IW", "CO1", "CO2", "CO3")}
    answers = Answers(
        attendance=people,
        inputs={"roster": roster},
        cards=cards,
        action_failed="retry",
        max_retries=2,
    )
    op = AnswersOperator(answers, card_slots=room)
    engine = Engine(
        loads_script(script_path.read_bytes(), str(script_path), registry),
        registry,
        op,
        ws,
        config=load_config(world.config),
        services=Services(cards=room, card_slots=room, airgap_root=world.folder / "root"),
        inputs={"roster": roster},
    )
    return engine.run(), op


def test_engine_activation_rides_out_a_pull_at_every_apdu_of_an_officers_turn(
    softhsm: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The room as the ceremony sees it: the headless operator presents CO1..CO3 through
    the virtual card room; CO2's card is pulled at its Nth command. The step must end with
    the HSM active, the removal told to the operator, CO2 asked again (not struck off), and
    CO2's PIN counter untouched."""
    from vcard.card import VirtualCard
    from vcard.direct import DirectTransport

    from appliance.ceremony import journal
    from tests.integration.test_reliability_powercut import build_world

    world = build_world(softhsm, tmp_path / "world", "reliability-cards")
    victim = world.serials["co2"]
    plan = {"pull_at": 0, "sent": 0}
    original = DirectTransport.transmit

    def transmit(self: Any, apdu: bytes) -> tuple[bytes, int]:
        if self.present and self.card.state.serial == victim and plan["pull_at"]:
            plan["sent"] += 1
            if plan["sent"] == plan["pull_at"]:
                self.present = False
        return original(self, apdu)

    monkeypatch.setattr(DirectTransport, "transmit", transmit)

    def run(ws: Path) -> tuple[Any, Any]:
        return _run_activation(world, tmp_path, ws)

    clean_ws = tmp_path / "clean"
    plan.update(pull_at=10**9, sent=0)
    outcome, _ = run(clean_ws)
    assert outcome.status == "ended"
    total = plan["sent"]  # CO2's commands in one clean activation
    tried = 0
    for n in range(1, total + 1):
        plan.update(pull_at=n, sent=0)
        ws = tmp_path / f"pull-{n}"
        outcome, op = run(ws)
        text = "\n".join(op.transcript)
        assert outcome.status == "ended", (n, text[-1500:])
        assert "removed" in text, (n, "the operator was not told")
        # only CO2 repeats its turn: the cards already accepted stay accepted
        assert text.count("CO1 types the user PIN") == 1, (n, text[-1500:])
        assert "chooses retry" not in text, (n, text[-1500:])
        assert "Traceback" not in text
        state = journal.read(ws / "journal.jsonl")
        acts = [e for e in state.entries if e.kind == "action" and e.data.get("ok")]
        assert [e.step for e in acts] == ["activate"]
        seats = [p["seat"] for p in acts[0].data["result"]["presented"]]
        assert sorted(seats) == ["CO1", "CO2", "CO3"], (n, seats)
        card = VirtualCard.open(world.cards / "co2.json")
        assert card.state.tries_pw1 == 3, (n, "a PIN try was spent")
        tried += 1
        if os.environ.get("RELIABILITY_SHOW"):
            print(f"--- pull at {n}\n{text}")
    print(f"\nengine hsm.activate: {tried} pull points (every command of CO2's turn)")
    assert tried >= 8


def test_a_half_reset_card_in_an_activation_quorum_is_refused_and_left_as_found(
    softhsm: Any, tmp_path: Path
) -> None:
    """Only flows that reset a card finish a reset a pull left half done. In a quorum such a
    card is refused by name (what it is, what to do), the others are not struck off, and
    the card stays terminated for the room to look at: nothing erases evidence."""
    from vcard.card import VirtualCard

    from tests.integration.test_reliability_powercut import build_world

    world = build_world(softhsm, tmp_path / "world", "reliability-half-reset")
    torn = VirtualCard.open(world.cards / "co2.json")
    torn.state.terminated = True
    torn.save()
    outcome, op = _run_activation(world, tmp_path, tmp_path / "ws")
    text = "\n".join(op.transcript)
    assert outcome.status != "ended", text[-1500:]
    refusal = [line for line in op.transcript if "terminated (factory reset pending)" in line]
    assert refusal and all("the card in the reader" in line for line in refusal), text[-1500:]
    assert "was pulled during a factory reset" in text, "the hint says what to do"
    assert "Traceback" not in text
    assert text.count("CO1 types the user PIN") == 1 + 2, "CO1 presented once per try only"
    assert VirtualCard.open(world.cards / "co2.json").state.terminated


def test_restore_into_softhsm_after_a_pull_at_every_apdu_of_a_shareholders_turn(
    softhsm: Any, tmp_path: Path
) -> None:
    """The whole restore: keys backed up under a key split among shareholders' cards, the
    token lost, a fresh token with the same label, then the shareholders' quorum with one
    card pulled at each of its commands, a retry, and the restore through SoftHSM. Every
    point ends with the same keys restored."""
    from appliance.hsm import keygen
    from appliance.hsm.backup import create_backup
    from appliance.hsm.restore import restore_backup

    label = "reliability-restore"
    softhsm.init_token(label)
    made: list[Any] = []
    cards = {f"BE00000{i}": new_card(f"BE00000{i}") for i in range(1, 4)}
    with softhsm.open(label) as session:
        ceremony = keygen.generate_ceremony_key(session)
        keygen.generate_key(session, 13, role="zsk", zone="example.")
        wanted = sorted(o.label for o in session.key_objects())
        backups = tmp_path / "backups"
        done = issue_backup_set(
            Roster(),
            backup_name=label,
            threshold=2,
            holders=[
                HolderSpec("RKSH", f"H{i}", holder(PullingTransport(c)), login=f"R{i}")
                for i, c in enumerate(cards.values())
            ],
            choose_pins=pins,
            make_backup=lambda key: made.append(
                create_backup(session, key, backups, lock=False).backup.path
            ),
            now=NOW,
        )
    serials = list(cards)
    total = points(
        lambda t: QuorumSession(done.roster, done.set_id).present(
            holder(t), bytearray(pin_of(serials[0]))
        ),
        cards[serials[0]],
    )
    tried = 0
    for n in range(1, total + 1):
        softhsm.delete_token(label)
        softhsm.init_token(label)  # the lost token's replacement
        t = PullingTransport(clone(cards[serials[0]]), pull_at=n, phase="after")
        with QuorumSession(done.roster, done.set_id) as session:
            with pytest.raises((CardRemoved, CardsCardRemoved)):
                session.present(holder(t), bytearray(pin_of(serials[0])))
            t.reinsert()
            session.present(holder(t), bytearray(pin_of(serials[0])))
            session.present(
                holder(PullingTransport(clone(cards[serials[1]]))), bytearray(pin_of(serials[1]))
            )
            with softhsm.open(label) as fresh:
                result = quorum_mod.with_backup_key(
                    session,
                    lambda key, fresh=fresh: restore_backup(
                        fresh, made[0], key, expected_fingerprint=ceremony.fingerprint()
                    ),
                )
                assert result is not None
                assert sorted(o.label for o in fresh.key_objects()) == wanted, n
        assert t.card.state.tries_pw1 == 3
        tried += 1
    softhsm.delete_token(label)
    print(f"\nrestore into SoftHSM: {tried} pull points, the same {len(wanted)} keys each time")
    assert tried >= 8
