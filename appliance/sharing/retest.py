"""Retest: card + PIN -> open the envelope -> commitment matches -> record it.

The secret is never reconstructed: one share is opened and compared with its salted hash
in the roster. Findings are results, not exceptions, so the room records every outcome
(a blocked PIN, a changed envelope, a substituted share) and knows what to do next.
A wrong PIN with tries left is the one case raised (`WrongPin`): the holder types again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from appliance.sharing import commitment, envelope
from appliance.sharing.errors import EnvelopeError, PinBlocked, QuorumError
from appliance.sharing.ports import HolderCard
from appliance.sharing.roster import Member, Roster, now_utc, stamp
from appliance.sharing.wipe import wipe

OK = "ok"
PIN_BLOCKED = "pin-blocked"
ENVELOPE_CHANGED = "envelope-changed"
COMMITMENT_MISMATCH = "commitment-mismatch"
KEY_CHANGED = "card-key-changed"

ACTIONS = {
    OK: "Nothing to do.",
    PIN_BLOCKED: "Unblock the PIN with the admin PIN (holder + CA), then retest; if that "
    "fails, replace the credential with a quorum.",
    ENVELOPE_CHANGED: "The sealed share on the card or in the roster was changed: take the "
    "card out of service, replace the credential with a quorum and investigate.",
    COMMITMENT_MISMATCH: "The share opened but is not the issued one (substituted): take the "
    "card out of service, replace the credential with a quorum and investigate.",
    KEY_CHANGED: "The card's keys differ from the issued ones (reset or swapped card): replace "
    "the credential with a quorum.",
}


@dataclass(frozen=True)
class RetestResult:
    set_id: str
    card_serial: str
    holder: str
    index: int
    outcome: str
    card_version: str
    pin_tries_left: int
    when: str
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == OK

    @property
    def action(self) -> str:
        return ACTIONS[self.outcome]


def _member(roster: Roster, set_id: str, card: HolderCard) -> Member:
    cset = roster.get_set(set_id)
    member = cset.member_by_serial(card.serial)
    if member is None:
        raise QuorumError(
            f"card {card.serial} is not a member of set {set_id}",
            hint="Retest the card against the set it was issued for.",
        )
    return member


def retest(
    roster: Roster, set_id: str, card: HolderCard, pin: bytearray, *, now: datetime | None = None
) -> tuple[RetestResult, Roster]:
    """Retest one holder's card. Returns the result and the roster with it recorded (the
    date, card version and PIN tries left on success). The PIN is wiped."""
    when = stamp(now or now_utc())
    try:
        member = _member(roster, set_id, card)
        version = card.application_version()

        def result(outcome: str, tries: int, detail: str = "") -> RetestResult:
            return RetestResult(
                set_id,
                card.serial,
                member.holder,
                member.index,
                outcome,
                version,
                tries,
                when,
                detail,
            )

        if card.ecdh_public_key().hex() != member.ecdh_public_key:
            return result(KEY_CHANGED, card.pin_tries_left()), roster
        if card.pin_tries_left() == 0:
            return result(PIN_BLOCKED, 0), roster
        try:
            card.verify_pin(pin)
        except PinBlocked:
            return result(PIN_BLOCKED, 0), roster
        on_card, roster_copy = card.read_private_do(), bytes.fromhex(member.envelope)
        stale = on_card != roster_copy and roster.superseded_on_card(card.serial, on_card)
        if on_card != roster_copy and not stale:
            return result(
                ENVELOPE_CHANGED, card.pin_tries_left(), "the card's copy differs from the roster"
            ), roster
        try:
            share = envelope.open_with_card(card, roster_copy)
        except EnvelopeError as exc:
            return result(ENVELOPE_CHANGED, card.pin_tries_left(), exc.message), roster
        try:
            matched = commitment.matches(share, member.commitment)
        finally:
            wipe(share)
        tries = card.pin_tries_left()
        if not matched:
            return result(COMMITMENT_MISMATCH, tries), roster
        if stale:
            card.write_private_do(roster_copy)
            res = result(OK, tries, "the card held no current sealed share: it was written")
        else:
            res = result(OK, tries)
    finally:
        wipe(pin)
    updated = dataclasses.replace(
        member,
        last_retest=when,
        last_retest_tries_left=tries,
        card_version=version,
        envelope_on_card=True,
    )
    return res, roster.with_member(set_id, updated)
