"""Rekey: a quorum of the old set -> a new secret and a new set for the current holders.

For a backup wrapping key, `rewrap(old_key, new_key)` re-wraps the backup under the new key
(the HSM adapter's backup/restore); for HSM activation, `change_pin(old_pin, new_pin)` sets
the token's new user PIN (C_SetPIN). Only after that callable succeeds is the old set
retired; the new shares are sealed to every live member's card key from the roster. Cards
present with their PIN get the new envelope in DO 0101 at once; the others get it at their
next retest (the roster copy opens with their card all the same). Old cards, revoked ones
included, then open only a retired set whose secret unlocks nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from appliance.sharing import commitment, envelope, slip39
from appliance.sharing.derive import backup_wrapping_key, hsm_user_pin, random_secret
from appliance.sharing.envelope import Purpose
from appliance.sharing.errors import QuorumError
from appliance.sharing.issue import seal_member
from appliance.sharing.ports import HolderCard
from appliance.sharing.quorum import QuorumSession
from appliance.sharing.roster import (
    STATUS_RETIRED,
    CredentialSet,
    Member,
    Roster,
    now_utc,
    stamp,
)
from appliance.sharing.wipe import wipe


@dataclass(frozen=True)
class Rekeyed:
    roster: Roster
    old_set_id: str
    new_set_id: str
    #: Members whose card still holds the old envelope (written at their next retest).
    pending_cards: tuple[str, ...]


def _reseal_for(
    member: Member,
    share: bytearray,
    purpose: Purpose,
    when: datetime,
    card: HolderCard | None,
    pin: bytearray | None,
) -> Member:
    if card is not None and pin is not None:
        if card.serial != member.card_serial:
            raise QuorumError(f"card {card.serial} given for {member.label}")
        card.verify_pin(pin)
        new = seal_member(
            card=card,
            share=share,
            purpose=purpose,
            role=member.role,
            holder=member.holder,
            when=when,
            write_to_card=True,
            card_provisioned_at=member.card_provisioned_at,
        )
        return dataclasses.replace(
            new,
            last_retest=member.last_retest,
            last_retest_tries_left=member.last_retest_tries_left,
            last_attestation=None,
            location_hint=member.location_hint,
            emergency_contact=member.emergency_contact,
        )
    sealed = envelope.seal(
        share,
        card_public_key=bytes.fromhex(member.ecdh_public_key),
        card_serial=member.card_serial,
        purpose=purpose,
    )
    info = slip39.identify(share)
    return dataclasses.replace(
        member,
        group_index=info.group_index,
        index=info.index,
        commitment=commitment.commit(share),
        envelope=sealed.hex(),
        envelope_on_card=False,
        issued_at=stamp(when),
        last_attestation=None,
    )


def rekey(
    roster: Roster,
    session: QuorumSession,
    apply: Callable[[bytearray, bytearray], None],
    *,
    present: Mapping[str, tuple[HolderCard, bytearray]] | None = None,
    threshold: int | None = None,
    now: datetime | None = None,
) -> Rekeyed:
    """Rebuild the old secret from the complete `session`, make a new one, call
    `apply(old_secret, new_secret)`, then record the new set and retire the old one.
    `present` maps card serials to (card, PIN) of holders in the room (PINs are wiped)."""
    when = now or now_utc()
    old = session.cset
    if roster.get_set(old.set_id) != old:
        raise QuorumError("the quorum session was opened on another version of the roster")
    live = old.live_members
    k = threshold or old.threshold
    sizes = [old.live_in_group(g) for g in range(old.group_count)]
    if not 2 <= k <= min(sizes):
        raise QuorumError(
            f"live members per group {sizes} cannot hold a {k}-of-n set in every group",
            hint="Add holders first (with the quorum), or choose a lower threshold.",
        )
    present = dict(present or {})
    new_secret = random_secret()
    shares: list[bytearray] = []
    try:
        ident = slip39.new_identifier(avoid=roster.set_ids())
        groups = slip39.split_groups(
            new_secret, old.group_threshold, [(k, n) for n in sizes], identifier=ident
        )
        shares = [share for group in groups for share in group]
        queue = [list(group) for group in groups]
        members: list[Member] = []
        for member in live:
            share = queue[member.group_index].pop(0)
            card, pin = present.pop(member.card_serial, (None, None))
            try:
                members.append(_reseal_for(member, share, old.purpose, when, card, pin))
            finally:
                wipe(pin)
        session.use_secret(lambda old_secret: apply(old_secret, new_secret))
    finally:
        wipe(new_secret, *shares)
        for _, pin in present.values():
            wipe(pin)
    new = CredentialSet(
        set_id=f"{ident:04x}",
        purpose=old.purpose,
        subject=old.subject,
        threshold=k,
        group_threshold=old.group_threshold,
        created_at=stamp(when),
        members=tuple(members),
    )
    retired = dataclasses.replace(
        old, status=STATUS_RETIRED, retired_at=stamp(when), replaced_by=new.set_id
    )
    updated = roster.with_set(retired).with_set(new)
    pending = tuple(m.card_serial for m in members if not m.envelope_on_card)
    return Rekeyed(updated, old.set_id, new.set_id, pending)


def rekey_backup(
    roster: Roster,
    session: QuorumSession,
    rewrap: Callable[[bytearray, bytearray], None],
    *,
    present: Mapping[str, tuple[HolderCard, bytearray]] | None = None,
    threshold: int | None = None,
    now: datetime | None = None,
) -> Rekeyed:
    """Rekey a backup wrapping key set: `rewrap(old_key, new_key)` re-wraps the backup."""
    if session.cset.purpose != Purpose.BACKUP_KEY:
        raise QuorumError(f"set {session.cset.set_id} is not a backup-key set")
    name = session.cset.subject

    def apply(old: bytearray, new: bytearray) -> None:
        old_key, new_key = backup_wrapping_key(old, name), backup_wrapping_key(new, name)
        try:
            rewrap(old_key, new_key)
        finally:
            wipe(old_key, new_key)

    return rekey(roster, session, apply, present=present, threshold=threshold, now=now)


def rekey_activation(
    roster: Roster,
    session: QuorumSession,
    change_pin: Callable[[bytearray, bytearray], None],
    *,
    present: Mapping[str, tuple[HolderCard, bytearray]] | None = None,
    threshold: int | None = None,
    now: datetime | None = None,
) -> Rekeyed:
    """Rekey an HSM activation set: `change_pin(old_pin, new_pin)` sets the token's PIN."""
    if session.cset.purpose != Purpose.HSM_ACTIVATION:
        raise QuorumError(f"set {session.cset.set_id} is not an hsm-activation set")
    label = session.cset.subject

    def apply(old: bytearray, new: bytearray) -> None:
        old_pin, new_pin = hsm_user_pin(old, label), hsm_user_pin(new, label)
        try:
            change_pin(old_pin, new_pin)
        finally:
            wipe(old_pin, new_pin)

    return rekey(roster, session, apply, present=present, threshold=threshold, now=now)
