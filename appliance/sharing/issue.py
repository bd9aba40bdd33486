"""Issuing a credential set: split a secret, provision each holder's card, seal, record.

The flow is a domain function: the engine (or a test) supplies the cards, one per holder,
and a callable through which each holder chooses their PINs. Nothing is written to disk
here; the caller signs and saves the returned roster (`roster.save`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from appliance.errors import SharingError
from appliance.sharing import commitment, envelope, slip39
from appliance.sharing.derive import backup_wrapping_key, hsm_user_pin, random_secret
from appliance.sharing.envelope import Purpose
from appliance.sharing.errors import CardError
from appliance.sharing.ports import (
    FACTORY_ADMIN_PIN,
    FACTORY_USER_PIN,
    HolderCard,
    ProvisionableCard,
)
from appliance.sharing.roster import CredentialSet, Member, Roster, now_utc, stamp
from appliance.sharing.wipe import wipe

MIN_USER_PIN = 6
MIN_ADMIN_PIN = 8


@dataclass(frozen=True)
class HolderSpec:
    """A holder to enrol: who, in which role, with which (blank or re-used) card.

    `login` is the card's login data, the role id ("CO3", "RKSH5"); it defaults to `role`.
    Role and holder go into the cardholder name: ASCII letters, digits, spaces, . , ' -."""

    role: str
    holder: str
    card: ProvisionableCard
    login: str = ""
    #: Group (site) of a multi-site set, 0..groups-1; 0 for a plain k-of-n set.
    group: int = 0


@dataclass(frozen=True)
class HolderPins:
    """PINs a holder chose (typed by the holder, never shown). Wiped by the flow."""

    user: bytearray
    admin: bytearray

    def wipe(self) -> None:
        wipe(self.user, self.admin)


#: Asks the holder of `spec` to choose PINs (the TUI shows a PIN dialog to the holder).
ChoosePins = Callable[[HolderSpec], HolderPins]


def _check_pins(pins: HolderPins, spec: HolderSpec) -> None:
    if len(pins.user) < MIN_USER_PIN or len(pins.admin) < MIN_ADMIN_PIN:
        raise SharingError(
            f"PINs chosen by {spec.holder} are too short (PIN >= {MIN_USER_PIN}, admin PIN >= "
            f"{MIN_ADMIN_PIN} characters)",
            hint="Ask the holder to choose longer PINs.",
        )
    if pins.user == bytearray(FACTORY_USER_PIN) or pins.admin == bytearray(FACTORY_ADMIN_PIN):
        raise SharingError(
            f"{spec.holder} chose a factory default PIN", hint="Choose PINs of your own."
        )


def provision_card(spec: HolderSpec, pins: HolderPins) -> None:
    """Factory reset, keys generated on the card, name and login data, the holder's PINs.
    Leaves PW1 verified for decipher so the envelope can be written next."""
    card = spec.card
    _check_pins(pins, spec)
    card.factory_reset()
    default_admin = bytearray(FACTORY_ADMIN_PIN)
    default_user = bytearray(FACTORY_USER_PIN)
    try:
        card.provision(
            default_admin, role=spec.role, holder=spec.holder, login=spec.login or spec.role
        )
        card.change_pin(default_admin, pins.admin, admin=True)
        card.change_pin(default_user, pins.user)
        card.verify_pin(pins.user)
    finally:
        wipe(default_admin, default_user)


def seal_member(
    *,
    card: HolderCard,
    share: bytearray,
    purpose: Purpose,
    role: str,
    holder: str,
    when: datetime,
    write_to_card: bool,
    card_provisioned_at: str | None = None,
) -> Member:
    """Seal `share` to `card`, optionally write it to DO 0101 (PW1 must be verified), and
    describe the member for the roster."""
    info = slip39.identify(share)
    pub = card.ecdh_public_key()
    sealed = envelope.seal(share, card_public_key=pub, card_serial=card.serial, purpose=purpose)
    if write_to_card:
        card.write_private_do(sealed)
        if card.read_private_do() != sealed:
            raise CardError(
                f"card {card.serial} did not keep the sealed share it was given",
                hint="The card may be faulty: use another card for this holder.",
            )
    return Member(
        role=role,
        holder=holder,
        card_serial=card.serial,
        fingerprints=card.fingerprints(),
        ecdh_public_key=pub.hex(),
        signing_public_key=card.signing_public_key().hex(),
        group_index=info.group_index,
        index=info.index,
        commitment=commitment.commit(share),
        envelope=sealed.hex(),
        envelope_on_card=write_to_card,
        issued_at=stamp(when),
        card_version=card.application_version(),
        card_provisioned_at=card_provisioned_at or stamp(when),
    )


@dataclass(frozen=True)
class Issued:
    roster: Roster
    set_id: str


def issue_set(
    roster: Roster,
    *,
    purpose: Purpose,
    subject: str,
    threshold: int,
    holders: Sequence[HolderSpec],
    choose_pins: ChoosePins,
    secret: bytearray | None = None,
    use_secret: Callable[[bytearray], None] | None = None,
    group_threshold: int = 1,
    now: datetime | None = None,
) -> Issued:
    """Issue a k-of-n set (or a multi-site set: `HolderSpec.group` per site, k-of-n_g in
    each, any `group_threshold` sites) to `holders`, each card provisioned from blank.

    `secret`: take this secret (copied; the caller keeps and wipes its own), else a fresh
    random one that nobody sees. `use_secret` receives it once every card holds its share
    (set the token's user PIN, make the backup); then it is wiped.
    """
    when = now or now_utc()
    n = len(holders)
    if not holders or any(h.group < 0 for h in holders):
        raise SharingError("no holders, or a negative group number")
    sizes = [
        sum(1 for h in holders if h.group == g) for g in range(1 + max(h.group for h in holders))
    ]
    if 0 in sizes:
        raise SharingError(
            "holders must fill groups 0, 1, ... without gaps (one group for a k-of-n set)"
        )
    if not 2 <= threshold <= min(sizes):
        raise SharingError(
            f"a {threshold}-of-{min(sizes)} group is not possible: need 2 <= k <= n in every group"
        )
    if not 1 <= group_threshold <= len(sizes):
        raise SharingError(f"group threshold {group_threshold} of {len(sizes)} groups")
    if max(sizes) > slip39.MAX_MEMBERS:
        raise SharingError(f"a SLIP-39 group has at most {slip39.MAX_MEMBERS} members")
    serials = [h.card.serial for h in holders]
    if len(set(serials)) != n:
        raise SharingError("the same card was given for two holders", hint="One card each.")
    if any(s.subject == subject and s.purpose == purpose for s in roster.active_sets()):
        raise SharingError(
            f"an active {purpose.label} set for {subject!r} exists already",
            hint="Rekey it, or retire it first.",
        )
    mine = bytearray(secret) if secret is not None else random_secret()
    shares: list[bytearray] = []
    try:
        ident = slip39.new_identifier(avoid=roster.set_ids())
        groups = slip39.split_groups(
            mine, group_threshold, [(threshold, size) for size in sizes], identifier=ident
        )
        shares = [share for group in groups for share in group]
        pending = [list(group) for group in groups]
        members: list[Member] = []
        for spec in holders:
            share = pending[spec.group].pop(0)
            pins = choose_pins(spec)
            try:
                provision_card(spec, pins)
            finally:
                pins.wipe()
            members.append(
                seal_member(
                    card=spec.card,
                    share=share,
                    purpose=purpose,
                    role=spec.role,
                    holder=spec.holder,
                    when=when,
                    write_to_card=True,
                )
            )
        if use_secret is not None:
            use_secret(mine)
    finally:
        wipe(mine, *shares)
    new = CredentialSet(
        set_id=f"{ident:04x}",
        purpose=purpose,
        subject=subject,
        threshold=threshold,
        group_threshold=group_threshold,
        created_at=stamp(when),
        members=tuple(members),
    )
    return Issued(roster.with_set(new), new.set_id)


def issue_activation_set(
    roster: Roster,
    *,
    token_label: str,
    threshold: int,
    holders: Sequence[HolderSpec],
    choose_pins: ChoosePins,
    set_user_pin: Callable[[bytearray], None],
    now: datetime | None = None,
) -> Issued:
    """Crypto officers' set for `pin-quorum` activation of token `token_label`: a random
    secret nobody sees; `set_user_pin` receives the derived user PIN once (initialise the
    token or C_SetPIN) and it is wiped afterwards."""

    def use(secret: bytearray) -> None:
        pin = hsm_user_pin(secret, token_label)
        try:
            set_user_pin(pin)
        finally:
            wipe(pin)

    return issue_set(
        roster,
        purpose=Purpose.HSM_ACTIVATION,
        subject=token_label,
        threshold=threshold,
        holders=holders,
        choose_pins=choose_pins,
        use_secret=use,
        now=now,
    )


def issue_backup_set(
    roster: Roster,
    *,
    backup_name: str,
    threshold: int,
    holders: Sequence[HolderSpec],
    choose_pins: ChoosePins,
    make_backup: Callable[[bytearray], None],
    now: datetime | None = None,
) -> Issued:
    """Recovery shareholders' set for backup `backup_name`: `make_backup` receives the
    32-byte wrapping key once (HSM backup), then it is wiped."""

    def use(secret: bytearray) -> None:
        key = backup_wrapping_key(secret, backup_name)
        try:
            make_backup(key)
        finally:
            wipe(key)

    return issue_set(
        roster,
        purpose=Purpose.BACKUP_KEY,
        subject=backup_name,
        threshold=threshold,
        holders=holders,
        choose_pins=choose_pins,
        use_secret=use,
        now=now,
    )
