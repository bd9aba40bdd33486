"""Sealed notes: a holder's location hint and emergency contact, opened only by a quorum.

A holder writes where the credential is kept and whom to call. The text is encrypted under a
fresh 256-bit key (AES-256-GCM); the key is split k-of-n (SLIP-39) among a designated quorum
(other holders, or the registry's security officers), each share sealed to a quorum member's
card from its public key (no card needs to be present to write a note). Opening takes k of
those cards with their PINs; every opening is reported to the caller (for the journal)
*before* the text is returned, and a failing report stops the opening.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.errors import SharingError
from appliance.sharing import commitment, envelope, slip39
from appliance.sharing.derive import note_key, random_secret
from appliance.sharing.envelope import Purpose
from appliance.sharing.errors import QuorumError
from appliance.sharing.quorum import QuorumSession
from appliance.sharing.roster import (
    CredentialSet,
    Member,
    Roster,
    SealedNote,
    iter_members,
    now_utc,
    stamp,
)
from appliance.sharing.wipe import wipe

KINDS = {"location-hint": Purpose.LOCATION_HINT, "emergency-contact": Purpose.EMERGENCY_CONTACT}
MAX_TEXT = 4000


@dataclass(frozen=True)
class Seat:
    """A quorum member as known from the roster or from their card."""

    role: str
    holder: str
    card_serial: str
    member: Member  # the roster entry the seat's keys come from


def seats_from_roster(roster: Roster, serials: Sequence[str]) -> list[Seat]:
    """Quorum seats for cards already in the roster (their latest live entry)."""
    out: list[Seat] = []
    for serial in serials:
        found = [m for _, m in iter_members(roster) if m.card_serial == serial and not m.revoked]
        if not found:
            raise QuorumError(
                f"card {serial} has no live entry in the roster",
                hint="Designate quorum members whose cards were issued by this appliance.",
            )
        m = found[-1]
        out.append(Seat(m.role, m.holder, serial, m))
    return out


def _aad(note_id: str, kind: str, about: str, quorum_set: str) -> bytes:
    return f"appliance sealed note v1\x00{note_id}\x00{kind}\x00{about}\x00{quorum_set}".encode()


def seal_note(
    roster: Roster,
    *,
    kind: str,
    about: str,
    text: str,
    quorum: Sequence[Seat],
    threshold: int,
    now: datetime | None = None,
) -> tuple[Roster, str]:
    """Seal `text` about the holder of card `about` for a k-of-n `quorum`; record the note
    and its quorum set, and point the holder's roster entries at it. Returns the note id."""
    if kind not in KINDS:
        raise SharingError(f"unknown note kind {kind!r}; expected {', '.join(KINDS)}")
    if not text.strip() or len(text) > MAX_TEXT:
        raise SharingError(f"a note holds 1..{MAX_TEXT} characters")
    if any(s.card_serial == about for s in quorum):
        raise SharingError(
            "the holder cannot be in the quorum of their own note",
            hint="Designate other holders or the registry's security officers.",
        )
    if len({s.card_serial for s in quorum}) != len(quorum):
        raise SharingError("a quorum card is listed twice")
    if not 2 <= threshold <= len(quorum):
        raise SharingError(f"a {threshold}-of-{len(quorum)} quorum is not possible")
    when = now or now_utc()
    secret = random_secret()
    shares: list[bytearray] = []
    key = bytearray()
    try:
        ident = slip39.new_identifier(avoid=roster.set_ids())
        set_id = f"{ident:04x}"
        note_id = f"note-{secrets.token_hex(6)}"
        shares = slip39.split(secret, threshold, len(quorum), identifier=ident)
        members: list[Member] = []
        for seat, share in zip(quorum, shares, strict=True):
            sealed = envelope.seal(
                share,
                card_public_key=bytes.fromhex(seat.member.ecdh_public_key),
                card_serial=seat.card_serial,
                purpose=KINDS[kind],
            )
            members.append(
                dataclasses.replace(
                    seat.member,
                    role=seat.role,
                    holder=seat.holder,
                    group_index=0,
                    index=slip39.identify(share).index,
                    commitment=commitment.commit(share),
                    envelope=sealed.hex(),
                    envelope_on_card=False,
                    issued_at=stamp(when),
                    last_retest=None,
                    last_retest_tries_left=None,
                    last_attestation=None,
                    location_hint=None,
                    emergency_contact=None,
                    revoked=False,
                    revoked_at=None,
                    revoked_reason=None,
                )
            )
        key = note_key(secret)
        nonce = os.urandom(12)
        ct = AESGCM(bytes(key)).encrypt(
            nonce, text.encode("utf-8"), _aad(note_id, kind, about, set_id)
        )
    finally:
        wipe(secret, key, *shares)
    qset = CredentialSet(
        set_id=set_id,
        purpose=KINDS[kind],
        subject=f"{kind} of card {about}",
        threshold=threshold,
        group_threshold=1,
        created_at=stamp(when),
        members=tuple(members),
    )
    note = SealedNote(note_id, kind, about, set_id, (nonce + ct).hex(), stamp(when))
    updated = roster.with_set(qset).with_note(note)
    field = "location_hint" if kind == "location-hint" else "emergency_contact"
    for cset in updated.sets:
        holder_entry = cset.member_by_serial(about)
        if holder_entry is not None and cset.purpose in (
            Purpose.HSM_ACTIVATION,
            Purpose.BACKUP_KEY,
        ):
            pointed = (
                dataclasses.replace(holder_entry, location_hint=note_id)
                if field == "location_hint"
                else dataclasses.replace(holder_entry, emergency_contact=note_id)
            )
            updated = updated.with_member(cset.set_id, pointed)
    return updated, note_id


@dataclass(frozen=True)
class NoteOpening:
    """What the journal records when a note is opened (never the text)."""

    note_id: str
    kind: str
    about: str
    quorum_set: str
    opened_by: tuple[str, ...]  # card serials of the quorum
    when: str


def open_note(
    roster: Roster,
    note_id: str,
    session: QuorumSession,
    report: Callable[[NoteOpening], None],
    *,
    now: datetime | None = None,
) -> str:
    """Open a note with a complete quorum session of its quorum set. `report` is called
    first (journal it); only then is the text returned."""
    note = roster.get_note(note_id)
    if session.cset.set_id != note.quorum_set:
        raise QuorumError(
            f"note {note_id} opens with set {note.quorum_set}, not set {session.cset.set_id}",
            hint="Start the quorum on the note's own set.",
        )
    opening = NoteOpening(
        note.note_id,
        note.kind,
        note.about,
        note.quorum_set,
        tuple(m.card_serial for m in session.presented),
        stamp(now or now_utc()),
    )
    raw = bytes.fromhex(note.ciphertext)

    def decrypt(secret: bytearray) -> str:
        key = note_key(secret)
        try:
            plain = AESGCM(bytes(key)).decrypt(
                raw[:12], raw[12:], _aad(note.note_id, note.kind, note.about, note.quorum_set)
            )
        except InvalidTag:
            raise SharingError(
                f"note {note_id} does not authenticate: it was changed",
                hint="Restore the roster from its last signed copy.",
            ) from None
        finally:
            wipe(key)
        return plain.decode("utf-8")

    if not session.complete:
        session.use_secret(decrypt)  # raises "n of k cards presented: m more needed"
    report(opening)
    return session.use_secret(decrypt)
