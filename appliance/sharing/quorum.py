"""Collecting a quorum of cards, one at a time, and using the secret they rebuild.

`QuorumSession` takes cards in any order. Before any PIN is asked it refuses a card that is
not a member of the set (naming the set it does belong to), a revoked member, a repeated
card, and a retired set. A card pulled out during its turn leaves the session as it was.
When enough shares are in, the secret is rebuilt in memory only for the callable that uses
it (HSM login, backup wrap/unwrap), then wiped together with every share.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from appliance.sharing import commitment, envelope, slip39
from appliance.sharing.derive import backup_wrapping_key, hsm_user_pin
from appliance.sharing.envelope import Purpose
from appliance.sharing.errors import EnvelopeError, QuorumError
from appliance.sharing.ports import HolderCard
from appliance.sharing.roster import STATUS_RETIRED, CredentialSet, Member, Roster
from appliance.sharing.wipe import wipe

T = TypeVar("T")


@dataclass(frozen=True)
class Accepted:
    """A card's share is in (for the journal and the screen: no secret here)."""

    card_serial: str
    holder: str
    role: str
    index: int
    have: int
    need: int
    pin_tries_left: int


class QuorumSession:
    """k cards of one set, in any order; `use_secret` once complete; `close` wipes."""

    def __init__(self, roster: Roster, set_id: str) -> None:
        self.roster = roster
        self.cset: CredentialSet = roster.get_set(set_id)
        if self.cset.status == STATUS_RETIRED:
            raise QuorumError(
                f"set {set_id} ({self.cset.subject}) was retired"
                + (
                    f" and replaced by set {self.cset.replaced_by}" if self.cset.replaced_by else ""
                ),
                hint="Cards of a retired set open nothing: use the current set's cards.",
            )
        self._shares: dict[str, bytearray] = {}
        self._members: dict[str, Member] = {}
        self.closed = False

    # --- progress ----------------------------------------------------------------------------
    @property
    def missing(self) -> int:
        """Cards still needed at least (for a multi-site set: in the closest groups)."""
        counts = [0] * self.cset.group_count
        for m in self._members.values():
            counts[m.group_index] += 1
        short = sorted(max(0, self.cset.threshold - c) for c in counts)
        return sum(short[: self.cset.group_threshold])

    @property
    def need(self) -> int:
        return self.have + self.missing

    @property
    def have(self) -> int:
        return len(self._shares)

    @property
    def complete(self) -> bool:
        return self.missing == 0

    @property
    def presented(self) -> list[Member]:
        return list(self._members.values())

    # --- presenting a card -------------------------------------------------------------------
    def _other_set_of(self, serial: str) -> str:
        for s in self.roster.sets:
            if s.set_id != self.cset.set_id and s.member_by_serial(serial) is not None:
                return f"set {s.set_id} ({s.purpose.label}, {s.subject}, {s.status})"
        return ""

    def check_card(self, card: HolderCard) -> Member:
        """Everything that can be refused without the PIN (no retry is spent)."""
        if self.closed:
            raise QuorumError("this quorum session is closed", hint="Start a new one.")
        serial = card.serial
        if serial in self._shares:
            raise QuorumError(
                f"card {serial} ({self._members[serial].holder}) was already presented",
                hint=f"Present another holder's card: {self.need - self.have} more needed.",
                serial=serial,
            )
        member = self.cset.member_by_serial(serial)
        if member is None:
            other = self._other_set_of(serial)
            raise QuorumError(
                f"card {serial} is not a member of set {self.cset.set_id} "
                f"({self.cset.purpose.label}, {self.cset.subject})"
                + (f"; it belongs to {other}" if other else "; it is not in this roster"),
                hint="Take it back and present a card of this set.",
                serial=serial,
            )
        if member.revoked:
            raise QuorumError(
                f"card {serial} of {member.holder} was revoked"
                + (f" on {member.revoked_at}" if member.revoked_at else ""),
                hint="A revoked member cannot take part; present another holder's card.",
                serial=serial,
            )
        if card.ecdh_public_key().hex() != member.ecdh_public_key:
            raise QuorumError(
                f"card {serial} carries a different key than the one recorded for "
                f"{member.holder}: it was reset or is not the issued card",
                hint="Do not use it; replace this holder's credential with a quorum.",
                serial=serial,
            )
        return member

    def present(self, card: HolderCard, pin: bytearray) -> Accepted:
        """Verify the holder's PIN, open the member's envelope through the card, check its
        commitment, keep the share. The PIN is wiped in every case."""
        try:
            member = self.check_card(card)
            card.verify_pin(pin)
            share = envelope.open_with_card(card, bytes.fromhex(member.envelope))
        finally:
            wipe(pin)
        try:
            commitment.check(share, member.commitment, where=f"card {card.serial}")
            info = slip39.identify(share)
            if f"{info.identifier:04x}" != self.cset.set_id:
                raise EnvelopeError(f"card {card.serial}'s share belongs to another set")
            # Last card command before the share is kept: a card pulled here leaves the
            # session as it was, so the holder can simply present the card again.
            tries = card.pin_tries_left()
        except BaseException:
            wipe(share)
            raise
        self._shares[card.serial] = share
        self._members[card.serial] = member
        return Accepted(
            card.serial,
            member.holder,
            member.role,
            member.index,
            self.have,
            self.need,
            tries,
        )

    # --- using the secret --------------------------------------------------------------------
    def use_secret(self, use: Callable[[bytearray], T]) -> T:
        """Combine the shares in memory, hand the secret to `use`, wipe it afterwards."""
        if not self.complete:
            raise QuorumError(
                f"{self.have} of {self.need} cards of set {self.cset.set_id} presented: "
                f"{self.need - self.have} more needed",
                hint="Present more holders' cards.",
                have=self.have,
                need=self.need,
            )
        secret = slip39.combine(list(self._shares.values()))
        try:
            return use(secret)
        finally:
            wipe(secret)

    def extend_share(self, new_index: int, group_index: int = 0) -> bytearray:
        """A share at a new index of this set's group (replace/add a holder); caller wipes
        it. Needs `threshold` cards of that group."""
        group = [
            share
            for serial, share in self._shares.items()
            if self._members[serial].group_index == group_index
        ]
        if len(group) < self.cset.threshold:
            raise QuorumError(
                f"{len(group)} of {self.cset.threshold} cards of group {group_index} "
                f"presented: a quorum of that group is needed to issue a new share in it",
                hint="Present more cards of the group the new holder joins.",
            )
        return slip39.extend(group, new_index)

    def close(self) -> None:
        for share in self._shares.values():
            wipe(share)
        self._shares.clear()
        self.closed = True

    def __enter__(self) -> QuorumSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _expect(session: QuorumSession, purpose: Purpose) -> None:
    if session.cset.purpose != purpose:
        raise QuorumError(
            f"set {session.cset.set_id} is a {session.cset.purpose.label} set, not {purpose.label}",
            hint="Open the set recorded for this purpose.",
        )


def activate_hsm(session: QuorumSession, login: Callable[[bytearray], T]) -> T:
    """pin-quorum activation (the set's subject is the token label): the token's user PIN,
    derived from the rebuilt secret, goes to `login` (e.g. the HSM adapter's login) and is
    wiped afterwards."""
    _expect(session, Purpose.HSM_ACTIVATION)

    def go(secret: bytearray) -> T:
        pin = hsm_user_pin(secret, session.cset.subject)
        try:
            return login(pin)
        finally:
            wipe(pin)

    return session.use_secret(go)


def with_backup_key(session: QuorumSession, use: Callable[[bytearray], T]) -> T:
    """The 32-byte wrapping key of the backup named by the set's subject, for `use` (HSM
    backup or restore), wiped afterwards."""
    _expect(session, Purpose.BACKUP_KEY)

    def go(secret: bytearray) -> T:
        key = backup_wrapping_key(secret, session.cset.subject)
        try:
            return use(key)
        finally:
            wipe(key)

    return session.use_secret(go)
