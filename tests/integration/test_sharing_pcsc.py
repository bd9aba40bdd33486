"""Issue 5's acceptance on the production path: pyscard -> pcscd -> vpcd -> virtual card,
with SoftHSM.

Holders present their cards one after another, as in a room (tests/support/holder_turns):
each card is inserted into one of vpcd's two readers through the card server, found by
serial, opened, used for the holder's part, closed and removed, and pcscd must see the slot
empty before the next holder steps up.

One module fixture issues both sets once (PIN-based provisioning is the slow part):
a 3-of-7 crypto officers' set activating a SoftHSM token, and a 4-of-7 recovery set whose
key wraps a real backup of a second token. The tests then run the scenarios on them, in
file order: officers' login; the recovery lifecycle (restore, card destroyed, replacement,
rekey); the location hint; retest (last: it tampers with and blocks officers' cards); and
the scan of every file and log the module wrote for every PIN and share.
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from appliance.hsm import keygen
from appliance.hsm.backup import create_backup
from appliance.hsm.errors import PinError, RestoreError
from appliance.hsm.pkcs11_adapter import Session, Token
from appliance.hsm.restore import RestoreResult, restore_backup
from appliance.sharing import envelope, retest, slip39
from appliance.sharing import roster as rosters
from appliance.sharing.errors import PinBlocked, QuorumError, WrongPin
from appliance.sharing.issue import (
    HolderPins,
    HolderSpec,
    issue_activation_set,
    issue_backup_set,
)
from appliance.sharing.membership import add_holder
from appliance.sharing.notes import NoteOpening, open_note, seal_note, seats_from_roster
from appliance.sharing.quorum import QuorumSession, activate_hsm, with_backup_key
from appliance.sharing.rekey import rekey_backup
from appliance.sharing.roster import Roster
from tests.integration.test_sharing_hsm import scan
from tests.support.holder_turns import RoomCard, Turns
from tests.support.pcsc import CardRoom
from tests.support.softhsm import SO_PIN, SoftHsm
from tests.unit.test_sharing_quorum import NOW

if TYPE_CHECKING:
    from vcard.harness import World

OFFICERS_TOKEN = "pcsc-officers"
RECOVERY_TOKEN = "pcsc-recovery"
HINT_TEXT = "Safe-deposit box 4411, Banque Exemple, Rue du Lac 12, Geneva; ask for Ms Vidal"


def pin_of(serial: str) -> bytearray:
    return bytearray(f"pin-{serial}".encode())


def admin_of(serial: str) -> bytearray:
    return bytearray(f"admin-{serial}".encode())


@dataclass
class Ceremony:
    """What the module's tests share: the room, the cards, the roster, what to scan for."""

    turns: Turns
    softhsm: SoftHsm
    folder: Path
    officers: list[RoomCard]
    recovery: list[RoomCard]
    roster: Roster = field(default_factory=Roster)
    officers_set: str = ""
    recovery_set: str = ""
    live_serial: str = ""
    backups: list[Path] = field(default_factory=list)
    #: Every secret the scan looks for (PINs, derived token PINs, wrapping keys, shares).
    secrets: list[bytes] = field(default_factory=list)
    #: Card states kept in memory for the scan after a card is destroyed or blocked.
    states: dict[str, Any] = field(default_factory=dict)
    pins_asked: int = 0
    #: Log lines (root logger at DEBUG: the APDU trace included) and captured output.
    logs: list[str] = field(default_factory=list)

    def choose_pins(self, spec: HolderSpec) -> HolderPins:
        """The holder steps up (the previous one leaves) and types new PINs."""
        card = spec.card
        assert isinstance(card, RoomCard)
        self.turns.begin(card, enrolment=True)
        self.secrets += [bytes(pin_of(card.serial)), bytes(admin_of(card.serial))]
        return HolderPins(pin_of(card.serial), admin_of(card.serial))

    def ask_pin(self, card: RoomCard) -> bytearray:
        self.pins_asked += 1
        return pin_of(card.serial)

    def offer(self, session: QuorumSession, card: RoomCard) -> None:
        """A holder's turn in a quorum: checks without the PIN first, then the PIN."""
        with self.turns.turn(card):
            session.check_card(card)
            session.present(card, self.ask_pin(card))

    def collect(self, roster: Roster, set_id: str, cards: list[RoomCard]) -> QuorumSession:
        session = QuorumSession(roster, set_id)
        try:
            for card in cards:
                self.offer(session, card)
        except BaseException:
            session.close()
            raise
        return session

    def remember_state(self, card: RoomCard) -> None:
        from vcard.state import CardState

        self.states[card.serial] = CardState.load(self.turns.room.state_file(card.name))

    def harvest(self, roster: Roster, set_id: str, cards: list[RoomCard]) -> None:
        """The test's own look at the shares, to search for them: each card's state file is
        opened in memory (a copy: the card in the server is not touched)."""
        from vcard import DirectTransport, VirtualCard
        from vcard.state import CardState

        from appliance.cards.openpgp import OpenPgpSession
        from appliance.sharing.openpgp_card import OpenPgpHolderCard

        for card in cards:
            member = roster.get_set(set_id).member_by_serial(card.serial)
            if member is None:
                continue
            path = self.turns.room.state_file(card.name)
            state = self.states.get(card.serial) or CardState.load(path)
            copy = CardState.from_json(state.to_json())
            holder = OpenPgpHolderCard(OpenPgpSession(DirectTransport(VirtualCard(copy))))
            holder.verify_pin(pin_of(card.serial))
            share = envelope.open_with_card(holder, bytes.fromhex(member.envelope))
            self.secrets += [bytes(share), slip39.to_words(share).encode()]


class _Collect(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.lines = into

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def ceremony(
    card_world: World, softhsm: SoftHsm, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Ceremony]:
    room = CardRoom(card_world)
    turns = Turns(room)
    world = Ceremony(
        turns,
        softhsm,
        tmp_path_factory.mktemp("sharing-pcsc"),
        [turns.new_card(f"co{i}") for i in range(1, 8)],
        [turns.new_card(f"rksh{i}") for i in range(1, 8)],
    )
    handler = _Collect(world.logs)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        _issue_officers(world)
        _issue_recovery(world)
        yield world
    finally:
        turns.end()
        room.close()
        root.removeHandler(handler)
        root.setLevel(level)
        softhsm.delete_all(OFFICERS_TOKEN)
        softhsm.delete_all(RECOVERY_TOKEN)


def _issue_officers(world: Ceremony) -> None:
    def init_token(pin: bytearray) -> None:
        world.secrets.append(bytes(pin))
        from appliance.hsm import token_init

        world.softhsm.delete_all(OFFICERS_TOKEN)
        token_init.init_softhsm_token(
            world.softhsm.module, OFFICERS_TOKEN, so_pin=bytearray(SO_PIN), user_pin=pin
        )

    issued = issue_activation_set(
        world.roster,
        token_label=OFFICERS_TOKEN,
        threshold=3,
        holders=[
            HolderSpec("CO", f"Officer {i}", c, login=f"co{i}")
            for i, c in enumerate(world.officers, 1)
        ],
        choose_pins=world.choose_pins,
        set_user_pin=init_token,
        now=NOW,
    )
    world.turns.end()
    world.roster, world.officers_set = issued.roster, issued.set_id
    world.harvest(world.roster, world.officers_set, world.officers)


def _live(world: Ceremony) -> Session:
    # reopened each time: initialising a token resets the module
    return Token(world.softhsm.module, serial=world.live_serial).open(world.softhsm.pin())


def _issue_recovery(world: Ceremony) -> None:
    world.softhsm.delete_all(RECOVERY_TOKEN)
    world.live_serial = world.softhsm.init_token(RECOVERY_TOKEN)
    with _live(world) as session:
        keygen.generate_ceremony_key(session)
        keygen.generate_key(session, 13, role="zsk", zone="example.")

    def make_backup(key: bytearray) -> None:
        world.secrets.append(bytes(key))
        with _live(world) as session:
            made = create_backup(session, key, world.folder / "backups", lock=False)
            world.backups.append(made.backup.path)

    issued = issue_backup_set(
        world.roster,
        backup_name="backup-1",
        threshold=4,
        holders=[
            HolderSpec("RKSH", f"Holder {i}", c, login=f"rksh{i}")
            for i, c in enumerate(world.recovery, 1)
        ],
        choose_pins=world.choose_pins,
        make_backup=make_backup,
        now=NOW,
    )
    world.turns.end()
    world.roster, world.recovery_set = issued.roster, issued.set_id
    world.harvest(world.roster, world.recovery_set, world.recovery)


@pytest.fixture(autouse=True)
def _keep_output(
    request: pytest.FixtureRequest, capfd: pytest.CaptureFixture[str]
) -> Iterator[None]:
    yield
    if "ceremony" in request.fixturenames:
        world: Ceremony = request.getfixturevalue("ceremony")
        out, err = capfd.readouterr()
        world.logs += [out, err]


def test_the_sets_were_issued_card_by_card_through_both_readers(ceremony: Ceremony) -> None:
    turns = ceremony.turns.log
    serials = [c.serial for c in (*ceremony.officers, *ceremony.recovery)]
    assert [s for s, _ in turns[:14]] == serials  # one holder after another, in order
    assert {r for _, r in turns} == {0, 1}
    officers = ceremony.roster.get_set(ceremony.officers_set)
    assert (officers.threshold, len(officers.members)) == (3, 7)
    assert [m.card_serial for m in officers.members] == serials[:7]
    assert all(m.envelope_on_card and m.card_version == "3.4" for m in officers.members)
    # the sealed share really sits in each card's DO 0101, as read back through pcscd
    for card, member in zip(ceremony.officers[:2], officers.members, strict=False):
        with ceremony.turns.turn(card):
            assert card.read_private_do() == bytes.fromhex(member.envelope)
            assert card.pin_tries_left() == 3


def test_officers_log_in_with_any_three_cards_and_are_refused_otherwise(
    ceremony: Ceremony,
) -> None:
    world, cards = ceremony, ceremony.officers

    def login(pin: bytearray) -> str:
        with Token(world.softhsm.module, label=OFFICERS_TOKEN).open(pin) as session:
            return session.info.label

    rng = random.Random(5)  # noqa: S311 - shuffled orders, not a secret
    orders = [rng.sample(range(7), 3) for _ in range(2)]
    assert all(order != sorted(order) for order in orders)
    for order in orders:
        with world.collect(world.roster, world.officers_set, [cards[i] for i in order]) as s:
            assert activate_hsm(s, login) == OFFICERS_TOKEN

    with world.collect(world.roster, world.officers_set, [cards[3], cards[1]]) as s:
        with pytest.raises(QuorumError, match="2 of 3 cards .* 1 more needed"):
            activate_hsm(s, login)
        # The token really refuses what two cards could offer: a wrong user PIN.
        with pytest.raises(PinError):
            login(bytearray(b"not-the-derived-pin"))

        # A repeated card: refused before any PIN is asked or reaches the card.
        asked, verified = world.pins_asked, cards[1].verify_calls
        with world.turns.turn(cards[1]):
            with pytest.raises(QuorumError, match=f"card {cards[1].serial} .* already presented"):
                s.check_card(cards[1])
            with pytest.raises(QuorumError, match="already presented"):
                s.present(cards[1], pin_of(cards[1].serial))
            assert cards[1].pin_tries_left() == 3
        assert (world.pins_asked, cards[1].verify_calls) == (asked, verified)

        # A recovery shareholder's card: refused, naming the set it belongs to.
        other = world.recovery[0]
        verified = other.verify_calls
        refused = (
            f"card {other.serial} is not a member of set {world.officers_set} .*"
            f"it belongs to set {world.recovery_set}"
        )
        with pytest.raises(QuorumError, match=refused):
            world.offer(s, other)  # the room asks the PIN only after check_card
        with world.turns.turn(other):
            with pytest.raises(QuorumError, match=refused):
                s.present(other, pin_of(other.serial))
            assert other.pin_tries_left() == 3
        assert (world.pins_asked, other.verify_calls) == (asked, verified)
        assert s.have == 2

        # The quorum then completes with a third officer, in the same session.
        world.offer(s, cards[6])
        assert activate_hsm(s, login) == OFFICERS_TOKEN


def _restore_into_fresh_token(world: Ceremony, session: QuorumSession, path: Path) -> object:
    label = RECOVERY_TOKEN  # a backup restores into a token of its own label
    serial = world.softhsm.init_token(label)
    try:
        with Token(world.softhsm.module, serial=serial).open(world.softhsm.pin()) as target:
            return with_backup_key(session, lambda key: restore_backup(target, path, key))
    finally:
        world.softhsm.delete_token(label, serial=serial)


def test_recovery_set_restores_replaces_a_destroyed_card_and_rekeys(ceremony: Ceremony) -> None:
    world, cards = ceremony, ceremony.recovery
    set_id, as_issued = world.recovery_set, world.roster

    with world.collect(world.roster, set_id, [cards[6], cards[2], cards[0], cards[4]]) as s:
        result = _restore_into_fresh_token(world, s, world.backups[0])
    assert isinstance(result, RestoreResult) and len(result.keys) == 2  # ceremony key + ZSK

    # Holder 5's card is destroyed: gone from the card server, it cannot be inserted.
    world.remember_state(cards[4])
    world.turns.room.state_file(cards[4].name).unlink()
    with pytest.raises(Exception, match=cards[4].name):
        world.turns.room.insert(cards[4].name, 0)

    # A replacement issued with 4 others present.
    replacement = world.turns.new_card("rksh5b")
    with world.collect(world.roster, set_id, cards[:4]) as s:
        roster = add_holder(
            world.roster,
            s,
            HolderSpec("RKSH", "Holder 5b", replacement, login="rksh5"),
            world.choose_pins,
            replaces=cards[4].serial,
            reason="card destroyed",
            now=NOW,
        )
    world.turns.end()
    members = roster.get_set(set_id)
    assert members.member_by_serial(cards[4].serial).revoked  # type: ignore[union-attr]
    new_member = members.member_by_serial(replacement.serial)
    assert new_member is not None and new_member.index == 7 and not new_member.revoked
    world.harvest(roster, set_id, [replacement])
    with pytest.raises(QuorumError, match="revoked"), QuorumSession(roster, set_id) as s:
        s.check_card(cards[4])  # the roster alone refuses it: no card needed
    with world.collect(roster, set_id, [replacement, cards[5], cards[6], cards[0]]) as s:
        result = _restore_into_fresh_token(world, s, world.backups[0])
    assert isinstance(result, RestoreResult) and len(result.keys) == 2

    # Rekey: a new backup under a new key, the old set retired.
    def rewrap(old: bytearray, new: bytearray) -> None:
        world.secrets += [bytes(old), bytes(new)]
        with _live(world) as session:
            made = create_backup(session, new, world.folder / "backups-2", lock=False)
            world.backups.append(made.backup.path)

    with world.collect(roster, set_id, [cards[0], cards[1], cards[2], replacement]) as s:
        done = rekey_backup(roster, s, rewrap, now=NOW)
    roster = done.roster
    assert roster.get_set(set_id).status == "retired"
    assert roster.get_set(set_id).replaced_by == done.new_set_id
    live = [*cards[:4], replacement, *cards[5:]]
    world.harvest(roster, done.new_set_id, live)
    with world.collect(roster, done.new_set_id, [cards[3], cards[5], cards[6], replacement]) as s:
        result = _restore_into_fresh_token(world, s, world.backups[1])
    assert isinstance(result, RestoreResult) and len(result.keys) == 2
    # The old cards rebuild only the old key, which does not open the new backup ...
    with (
        world.collect(as_issued, set_id, cards[:4]) as s,
        pytest.raises(RestoreError, match="wrapping key is not the one"),
    ):
        _restore_into_fresh_token(world, s, world.backups[1])
    # ... and the current roster refuses the retired set outright.
    with pytest.raises(QuorumError, match=f"set {set_id} .* was retired"):
        QuorumSession(roster, set_id)
    world.roster = roster
    world.recovery_set = done.new_set_id


def test_location_hint_opens_with_k_of_its_quorum_and_not_with_k_minus_1(
    ceremony: Ceremony,
) -> None:
    world, officers = ceremony, ceremony.officers
    about = world.recovery[1].serial
    quorum = seats_from_roster(world.roster, [c.serial for c in officers[:5]])
    roster, note_id = seal_note(
        world.roster,
        kind="location-hint",
        about=about,
        text=HINT_TEXT,
        quorum=quorum,
        threshold=3,
        now=NOW,
    )
    note = roster.get_note(note_id)
    assert HINT_TEXT.encode() not in bytes.fromhex(note.ciphertext)
    openings: list[NoteOpening] = []

    with (
        world.collect(roster, note.quorum_set, [officers[4], officers[0]]) as s,
        pytest.raises(QuorumError, match="2 of 3 cards"),
    ):
        open_note(roster, note_id, s, openings.append, now=NOW)
    assert openings == []  # nothing journaled, nothing shown

    with world.collect(roster, note.quorum_set, [officers[4], officers[0], officers[2]]) as s:
        assert open_note(roster, note_id, s, openings.append, now=NOW) == HINT_TEXT
    assert [o.opened_by for o in openings] == [
        (officers[4].serial, officers[0].serial, officers[2].serial)
    ]
    world.harvest(roster, note.quorum_set, officers)
    world.secrets.append(HINT_TEXT.encode())
    world.roster = roster


def test_retest_passes_then_detects_tampered_envelopes_and_a_blocked_pin(
    ceremony: Ceremony,
) -> None:
    world, cards, set_id = ceremony, ceremony.officers, ceremony.officers_set
    roster = world.roster

    with world.turns.turn(cards[3]):
        ok, roster = retest.retest(roster, set_id, cards[3], pin_of(cards[3].serial), now=NOW)
    assert (ok.outcome, ok.pin_tries_left, ok.card_version) == (retest.OK, 3, "3.4")
    assert roster.get_set(set_id).member_by_serial(cards[3].serial).last_retest  # type: ignore[union-attr]

    # The envelope on card 1 is changed (one bit of its ciphertext flipped on the card).
    member = roster.get_set(set_id).member_by_serial(cards[0].serial)
    assert member is not None
    with world.turns.turn(cards[0]):
        cards[0].verify_pin(pin_of(cards[0].serial))
        sealed = bytearray(cards[0].read_private_do())
        sealed[-5] ^= 0x01
        cards[0].write_private_do(bytes(sealed))
    with world.turns.turn(cards[0]):
        bad, _ = retest.retest(roster, set_id, cards[0], pin_of(cards[0].serial), now=NOW)
    assert bad.outcome == retest.ENVELOPE_CHANGED and not bad.ok

    # Card 2 holds (on the card and in the roster) a validly sealed share that is not the
    # issued one: it opens, and the commitment does not match.
    member = roster.get_set(set_id).member_by_serial(cards[1].serial)
    assert member is not None
    other = slip39.split(bytearray(32), 3, 7, identifier=int(set_id, 16))[member.index]
    world.secrets.append(bytes(other))
    substituted = envelope.seal(
        other,
        card_public_key=bytes.fromhex(member.ecdh_public_key),
        card_serial=cards[1].serial,
        purpose=roster.get_set(set_id).purpose,
    )
    tampered = roster.with_member(set_id, dataclasses.replace(member, envelope=substituted.hex()))
    with world.turns.turn(cards[1]):
        cards[1].verify_pin(pin_of(cards[1].serial))
        cards[1].write_private_do(substituted)
    with world.turns.turn(cards[1]):
        bad, _ = retest.retest(tampered, set_id, cards[1], pin_of(cards[1].serial), now=NOW)
    assert bad.outcome == retest.COMMITMENT_MISMATCH and "quorum" in bad.action

    # Card 3's PIN is blocked by three wrong tries (taken out and back between them).
    errors: list[Exception] = []
    for _ in range(3):
        with world.turns.turn(cards[2]):
            try:
                cards[2].verify_pin(bytearray(b"wrong-pin-000"))
            except (WrongPin, PinBlocked) as exc:
                errors.append(exc)
    assert [type(e) for e in errors][:2] == [WrongPin, WrongPin] and len(errors) == 3
    with world.turns.turn(cards[2]):
        blocked, _ = retest.retest(roster, set_id, cards[2], pin_of(cards[2].serial), now=NOW)
        assert cards[2].pin_tries_left() == 0
    assert (blocked.outcome, blocked.pin_tries_left) == (retest.PIN_BLOCKED, 0)
    assert "Unblock" in blocked.action
    world.roster = roster


def test_no_pin_or_share_in_any_file_or_log(
    ceremony: Ceremony, capfd: pytest.CaptureFixture[str]
) -> None:
    from appliance import signing

    world = ceremony
    world.logs += list(capfd.readouterr())
    rosters.save(world.folder / "roster.json", world.roster, signing.SoftwareSigner())
    assert len(world.backups) == 2 and all(p.exists() for p in world.backups)
    # at least: 15 cards' two PINs, 2 token keys/PINs, 14 + 7 + 1 + 5 shares (raw + words)
    assert len(set(world.secrets)) > 60
    run = world.turns.room.world.run_dir
    folders = [world.folder, world.softhsm.tokens, run]
    files = [p for f in folders for p in f.rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" for p in files) and any(world.softhsm.tokens.rglob("*"))
    hits = scan(folders, world.logs, world.secrets)
    assert hits == []
    # The scan would see them: the APDU trace was captured and a planted PIN is found.
    assert any("redacted" in line for line in world.logs)
    (world.folder / "planted.txt").write_bytes(world.secrets[0])
    assert scan([world.folder], [], world.secrets[:1]) != []
