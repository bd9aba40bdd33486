"""Issue a set, then HSM activation and backup key quorums: every test runs twice, on the
in-memory fake card and on vcard's virtual OpenPGP card through DirectTransport (real APDUs
via the cards layer's session and our adapter)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from vcard import CardState, DirectTransport, VirtualCard

from appliance.cards.openpgp import KeySlot, OpenPgpSession
from appliance.cards.provision import parse_cardholder_name
from appliance.sharing import envelope
from appliance.sharing.envelope import Purpose
from appliance.sharing.errors import CardRemoved, QuorumError, WrongPin
from appliance.sharing.fake_card import FakeCard
from appliance.sharing.issue import HolderPins, HolderSpec, issue_activation_set, issue_set
from appliance.sharing.openpgp_card import OpenPgpHolderCard
from appliance.sharing.ports import HolderCard, ProvisionableCard
from appliance.sharing.quorum import QuorumSession, activate_hsm, with_backup_key
from appliance.sharing.roster import Roster

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class World:
    """Makes holder cards of one kind and pulls them out / puts them back."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._transports: dict[str, DirectTransport] = {}
        self._fakes: dict[str, FakeCard] = {}
        self.sessions: dict[str, OpenPgpSession] = {}

    def card(self, serial: str) -> ProvisionableCard:
        if self.kind == "fake":
            self._fakes[serial] = FakeCard(serial)
            return self._fakes[serial]
        transport = DirectTransport(VirtualCard(CardState.factory(serial)))
        self._transports[serial] = transport
        self.sessions[serial] = OpenPgpSession(transport)
        return OpenPgpHolderCard(self.sessions[serial])

    def remove(self, card: HolderCard) -> None:
        if self.kind == "fake":
            self._fakes[card.serial].remove()
        else:
            self._transports[card.serial].remove()

    def insert(self, card: HolderCard) -> None:
        if self.kind == "fake":
            self._fakes[card.serial].insert()
        else:
            self._transports[card.serial].insert()

    def cards(self, prefix: str, n: int) -> list[ProvisionableCard]:
        return [self.card(f"{prefix}{i:06X}") for i in range(1, n + 1)]


@pytest.fixture(params=["fake", "vcard"])
def world(request: pytest.FixtureRequest) -> World:
    return World(str(request.param))


def pin_of(serial: str) -> bytearray:
    return bytearray(f"pin-{serial}".encode())


def pins(spec: HolderSpec) -> HolderPins:
    return HolderPins(pin_of(spec.card.serial), bytearray(f"admin-{spec.card.serial}".encode()))


def officers(
    roster: Roster, token_pins: list[bytearray], world: World | None = None
) -> tuple[Roster, str, list[ProvisionableCard]]:
    cs = (world or World("fake")).cards("C0", 7)
    issued = issue_activation_set(
        roster,
        token_label="ksk-token",
        threshold=3,
        holders=[HolderSpec("CO", f"Officer {i + 1}", c) for i, c in enumerate(cs)],
        choose_pins=pins,
        set_user_pin=lambda p: token_pins.append(bytearray(p)),
        now=NOW,
    )
    return issued.roster, issued.set_id, cs


def test_issue_provisions_every_card_and_records_members(world: World) -> None:
    token_pins: list[bytearray] = []
    roster, set_id, cs = officers(Roster(), token_pins, world)
    cset = roster.get_set(set_id)
    assert (cset.threshold, len(cset.members), cset.purpose) == (3, 7, Purpose.HSM_ACTIVATION)
    assert len(token_pins) == 1 and len(token_pins[0]) == 48
    for card, m in zip(cs, cset.members, strict=True):
        assert card.read_private_do().hex() == m.envelope and m.envelope_on_card
        assert len(card.read_private_do()) == 100 + len(card.serial) <= 254
        assert envelope.parse(card.read_private_do()).header.card_serial == card.serial
        assert m.ecdh_public_key == card.ecdh_public_key().hex()
        with pytest.raises(WrongPin):  # the holder's PIN replaced the factory one
            card.verify_pin(bytearray(b"123456"))
        card.verify_pin(pin_of(card.serial))
        if world.kind == "vcard":  # the cards layer's profile, as gpg --card-status shows it
            session = world.sessions[card.serial]
            assert parse_cardholder_name(session.name()) == ("CO", m.holder)
            assert session.login_data() == "CO"
            assert (
                m.fingerprints.signing == session.status().fingerprints[KeySlot.SIG].hex().upper()
            )


def test_any_three_officers_in_any_order_log_in_and_two_do_not(world: World) -> None:
    token_pins: list[bytearray] = []
    roster, set_id, cs = officers(Roster(), token_pins, world)
    logins: list[bytes] = []
    for combo in [(0, 1, 2), (6, 3, 0), (4, 6, 5), (2, 5, 1)]:
        with QuorumSession(roster, set_id) as s:
            for i in combo:
                s.present(cs[i], pin_of(cs[i].serial))
            activate_hsm(s, lambda p: logins.append(bytes(p)))
    assert logins == [bytes(token_pins[0])] * 4
    with QuorumSession(roster, set_id) as s:
        for i in (3, 1):
            s.present(cs[i], pin_of(cs[i].serial))
        with pytest.raises(QuorumError, match="2 of 3 cards .* 1 more needed"):
            activate_hsm(s, lambda p: None)


def test_every_three_of_seven_combine(world: World) -> None:
    token_pins: list[bytearray] = []
    roster, set_id, cs = officers(Roster(), token_pins, world)
    seen = set()
    for combo in itertools.combinations(range(7), 3):
        with QuorumSession(roster, set_id) as s:
            for i in reversed(combo):
                s.present(cs[i], pin_of(cs[i].serial))
            seen.add(activate_hsm(s, bytes))
    assert seen == {bytes(token_pins[0])}


def test_refuses_repeat_other_set_and_revoked_before_asking_the_pin(world: World) -> None:
    roster, set_id, cs = officers(Roster(), [], world)
    others = world.cards("A0", 4)
    roster = issue_set(
        roster,
        purpose=Purpose.BACKUP_KEY,
        subject="backup-1",
        threshold=2,
        holders=[HolderSpec("RKSH", f"R{i}", c) for i, c in enumerate(others)],
        choose_pins=pins,
        now=NOW,
    ).roster
    stranger = world.card("EE000099")
    with QuorumSession(roster, set_id) as s:
        s.present(cs[0], pin_of(cs[0].serial))
        wrong = bytearray(b"not-checked")
        with pytest.raises(QuorumError, match="already presented"):
            s.present(cs[0], wrong)
        assert wrong == bytearray(len(wrong))  # the PIN was wiped even on refusal
        with pytest.raises(QuorumError, match=r"not a member of set .* belongs to set .*backup-1"):
            s.present(others[0], pin_of(others[0].serial))
        with pytest.raises(QuorumError, match="not in this roster"):
            s.present(stranger, bytearray(b"123456"))
        assert others[0].pin_tries_left() == 3  # no retry spent on a refused card
        assert s.have == 1


def test_removed_card_is_tolerated_and_wrong_pin_reports_tries(world: World) -> None:
    roster, set_id, cs = officers(Roster(), [], world)
    with QuorumSession(roster, set_id) as s:
        world.remove(cs[2])
        with pytest.raises(CardRemoved):
            s.present(cs[2], pin_of(cs[2].serial))
        assert s.have == 0
        world.insert(cs[2])
        with pytest.raises(WrongPin, match="2 tries left"):
            s.present(cs[2], bytearray(b"wrong-pin"))
        s.present(cs[2], pin_of(cs[2].serial))
        s.present(cs[4], pin_of(cs[4].serial))
        s.present(cs[5], pin_of(cs[5].serial))
        assert s.complete


def test_activation_and_backup_sets_are_not_interchangeable(world: World) -> None:
    roster, set_id, cs = officers(Roster(), [], world)
    with QuorumSession(roster, set_id) as s:
        for i in range(3):
            s.present(cs[i], pin_of(cs[i].serial))
        with pytest.raises(QuorumError, match="not backup-key"):
            with_backup_key(s, bytes)


def test_close_wipes_the_shares(world: World) -> None:
    roster, set_id, cs = officers(Roster(), [], world)
    s = QuorumSession(roster, set_id)
    s.present(cs[0], pin_of(cs[0].serial))
    held = list(s._shares.values())
    s.close()
    assert all(b == bytearray(len(b)) for b in held)
    with pytest.raises(QuorumError, match="closed"):
        s.present(cs[1], pin_of(cs[1].serial))


def test_pin_and_key_handed_out_are_wiped_afterwards(world: World) -> None:
    roster, set_id, cs = officers(Roster(), [], world)
    held: list[bytearray] = []
    with QuorumSession(roster, set_id) as s:
        for c in cs[:3]:
            s.present(c, pin_of(c.serial))
        assert activate_hsm(s, lambda p: (held.append(p), bytes(p))[1]) != bytes(48)
    assert held and held[0] == bytearray(48)  # the derived token PIN was wiped after login
    pin = pin_of(cs[3].serial)
    with QuorumSession(roster, set_id) as s:
        s.present(cs[3], pin)
    assert pin == bytearray(len(pin))  # the holder's PIN was wiped after use
