"""Multi-site sets (SLIP-39 group thresholds): 2-of-3 cards at each of 3 sites, any 2 sites."""

from __future__ import annotations

import pytest

from appliance.errors import SharingError
from appliance.sharing import reports
from appliance.sharing.envelope import Purpose
from appliance.sharing.errors import QuorumError
from appliance.sharing.issue import HolderSpec, issue_set
from appliance.sharing.membership import add_holder, revoke
from appliance.sharing.quorum import QuorumSession
from appliance.sharing.rekey import rekey
from appliance.sharing.roster import Roster
from tests.unit.test_sharing_quorum import NOW, World, pin_of, pins


@pytest.fixture(params=["fake", "vcard"])
def world(request: pytest.FixtureRequest) -> World:
    return World(str(request.param))


def _issue(world: World) -> tuple[Roster, str, list[list], list[bytes]]:  # type: ignore[type-arg]
    sites = [world.cards(f"5{g}", 3) for g in range(3)]
    seen: list[bytes] = []
    issued = issue_set(
        Roster(),
        purpose=Purpose.BACKUP_KEY,
        subject="three-sites",
        threshold=2,
        group_threshold=2,
        holders=[
            HolderSpec("RKSH", f"Site{g} Holder{i}", c, group=g)
            for g, site in enumerate(sites)
            for i, c in enumerate(site)
        ],
        choose_pins=pins,
        use_secret=lambda s: seen.append(bytes(s)),
        now=NOW,
    )
    return issued.roster, issued.set_id, sites, seen


def _open(roster: Roster, set_id: str, cards: list) -> bytes:  # type: ignore[type-arg]
    with QuorumSession(roster, set_id) as s:
        for c in cards:
            s.present(c, pin_of(c.serial))
        return s.use_secret(bytes)


def test_two_complete_sites_open_and_scattered_cards_do_not(world: World) -> None:
    roster, set_id, sites, seen = _issue(world)
    cset = roster.get_set(set_id)
    assert (cset.group_count, cset.group_threshold, cset.threshold) == (3, 2, 2)
    assert _open(roster, set_id, [sites[2][1], sites[0][0], sites[2][0], sites[0][2]]) == seen[0]
    with QuorumSession(roster, set_id) as s:
        for c in (sites[0][0], sites[0][1], sites[1][0]):
            s.present(c, pin_of(c.serial))
        assert (s.have, s.missing, s.need) == (3, 1, 4)
        with pytest.raises(QuorumError, match="1 more needed"):
            s.use_secret(bytes)
        s.present(sites[1][2], pin_of(sites[1][2].serial))
        assert s.use_secret(bytes) == seen[0]


def test_site_holder_replaced_with_that_sites_quorum_then_rekeyed(world: World) -> None:
    roster, set_id, sites, seen = _issue(world)
    newcomer = world.card("5F000001")
    with QuorumSession(roster, set_id) as s:
        s.present(sites[1][0], pin_of(sites[1][0].serial))
        s.present(sites[2][0], pin_of(sites[2][0].serial))
        s.present(sites[2][1], pin_of(sites[2][1].serial))
        with pytest.raises(QuorumError, match="1 of 2 cards of group 1"):
            add_holder(roster, s, HolderSpec("RKSH", "New One", newcomer, group=1), pins)
        s.present(sites[1][1], pin_of(sites[1][1].serial))
        roster = add_holder(
            roster,
            s,
            HolderSpec("RKSH", "New One", newcomer, group=1),
            pins,
            replaces=sites[1][2].serial,
            now=NOW,
        )
    member = roster.get_set(set_id).member_by_serial(newcomer.serial)
    assert member is not None and (member.group_index, member.index) == (1, 3)
    assert _open(roster, set_id, [newcomer, sites[1][0], sites[0][1], sites[0][2]]) == seen[0]

    new_secrets: list[bytes] = []
    with QuorumSession(roster, set_id) as s:
        for c in (sites[0][0], sites[0][1], newcomer, sites[1][1]):
            s.present(c, pin_of(c.serial))
        done = rekey(roster, s, lambda old, new: new_secrets.append(bytes(new)), now=NOW)
    new = done.roster.get_set(done.new_set_id)
    assert (new.group_count, new.group_threshold) == (3, 2)
    assert [new.live_in_group(g) for g in range(3)] == [3, 3, 3]
    assert (
        _open(done.roster, new.set_id, [sites[2][2], newcomer, sites[2][0], sites[1][0]])
        == (new_secrets[0])
    )


def test_reports_count_margin_per_site(world: World) -> None:
    roster, set_id, sites, _ = _issue(world)
    # Each site survives 1 loss (3 cards, k=2); the set dies with 2 dead sites: 4 losses.
    assert roster.get_set(set_id).spare() == 3
    roster = revoke(roster, set_id, sites[0][0].serial, reason="left", now=NOW)
    assert roster.get_set(set_id).spare() == 2
    assert not [f for f in reports.report(roster, now=NOW) if f.kind.startswith("set")]
    roster = revoke(roster, set_id, sites[1][0].serial, reason="left", now=NOW)
    thin = [f for f in reports.report(roster, now=NOW) if f.kind.startswith("set")]
    assert [f.kind for f in thin] == ["set-thin"] and "2 of 3 groups" in thin[0].message
    roster = revoke(roster, set_id, sites[0][1].serial, reason="left", now=NOW)
    assert roster.get_set(set_id).spare() == 0
    roster = revoke(roster, set_id, sites[1][1].serial, reason="left", now=NOW)
    assert roster.get_set(set_id).spare() == -1
    assert any(f.kind == "set-dead" for f in reports.report(roster, now=NOW))


def test_groups_must_be_filled_and_large_enough() -> None:
    world = World("fake")
    cards = world.cards("5A", 3)
    with pytest.raises(SharingError, match="without gaps"):
        issue_set(
            Roster(),
            purpose=Purpose.BACKUP_KEY,
            subject="x",
            threshold=2,
            holders=[
                HolderSpec("R", "A B", cards[0], group=0),
                HolderSpec("R", "C D", cards[1], group=2),
            ],
            choose_pins=pins,
        )
    with pytest.raises(SharingError, match="2-of-1 group"):
        issue_set(
            Roster(),
            purpose=Purpose.BACKUP_KEY,
            subject="x",
            threshold=2,
            group_threshold=1,
            holders=[
                HolderSpec("R", "A B", cards[0], group=0),
                HolderSpec("R", "C D", cards[1], group=0),
                HolderSpec("R", "E F", cards[2], group=1),
            ],
            choose_pins=pins,
        )
