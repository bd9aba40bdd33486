"""Replacing or adding a holder with a quorum, and revoking a member.

k present holders rebuild the set's polynomial in memory (a complete `QuorumSession`); a
share at a *new* index of the same extendable SLIP-39 set goes to the new holder's card.
Indices are never reused: a departed holder's index stays theirs, marked revoked.

Revocation is bookkeeping until a rekey: a revoked member's card still opens its old share,
and with k-1 others that share still rebuilds the secret. Only `rekey` (a new secret) makes
the old shares worthless. The TUI and docs/credentials.md say so too.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from appliance.sharing import slip39
from appliance.sharing.errors import QuorumError
from appliance.sharing.issue import ChoosePins, HolderSpec, provision_card, seal_member
from appliance.sharing.quorum import QuorumSession
from appliance.sharing.roster import CredentialSet, Roster, now_utc, stamp
from appliance.sharing.wipe import wipe

REVOCATION_NOTE = (
    "Revocation is bookkeeping until a rekey: the revoked card still opens its share. "
    "Rekey the set to make old shares worthless."
)


def revoke(
    roster: Roster, set_id: str, card_serial: str, *, reason: str, now: datetime | None = None
) -> Roster:
    cset = roster.get_set(set_id)
    member = cset.member_by_serial(card_serial)
    if member is None:
        raise QuorumError(f"card {card_serial} is not a member of set {set_id}")
    if member.revoked:
        return roster
    return roster.with_member(
        set_id,
        dataclasses.replace(
            member, revoked=True, revoked_at=stamp(now or now_utc()), revoked_reason=reason
        ),
    )


def next_index(cset: CredentialSet, group_index: int = 0) -> int:
    used = {m.index for m in cset.members if m.group_index == group_index}
    for i in range(slip39.MAX_MEMBERS):
        if i not in used:
            return i
    raise QuorumError(
        f"set {cset.set_id} has used all {slip39.MAX_MEMBERS} share indices",
        hint="Rekey the set: a new set starts with fresh indices.",
    )


def add_holder(
    roster: Roster,
    session: QuorumSession,
    new_holder: HolderSpec,
    choose_pins: ChoosePins,
    *,
    replaces: str | None = None,
    reason: str = "replaced",
    now: datetime | None = None,
) -> Roster:
    """Issue a new share of the session's set to `new_holder`'s card (provisioned from
    blank); with `replaces` (a card serial), that member is revoked in the same step."""
    when = now or now_utc()
    cset = session.cset
    if roster.get_set(cset.set_id) != cset:
        raise QuorumError("the quorum session was opened on another version of the roster")
    if cset.member_by_serial(new_holder.card.serial) is not None:
        raise QuorumError(
            f"card {new_holder.card.serial} already holds a share of set {cset.set_id}",
            hint="A new holder needs a card of their own (a blank or reusable one).",
        )
    if replaces is not None and cset.member_by_serial(replaces) is None:
        raise QuorumError(f"card {replaces} is not a member of set {cset.set_id}")
    group = new_holder.group
    if not 0 <= group < cset.group_count:
        raise QuorumError(f"set {cset.set_id} has no group {group}")
    index = next_index(cset, group)
    share = session.extend_share(index, group)
    try:
        pins = choose_pins(new_holder)
        try:
            provision_card(new_holder, pins)
        finally:
            pins.wipe()
        member = seal_member(
            card=new_holder.card,
            share=share,
            purpose=cset.purpose,
            role=new_holder.role,
            holder=new_holder.holder,
            when=when,
            write_to_card=True,
        )
    finally:
        wipe(share)
    updated = roster.with_set(dataclasses.replace(cset, members=(*cset.members, member)))
    if replaces is not None:
        updated = revoke(updated, cset.set_id, replaces, reason=reason, now=when)
    return updated
