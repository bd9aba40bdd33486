"""Credential actions bound to appliance.sharing (the roster, sealed shares on cards)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from appliance import atomic
from appliance.ceremony.actions.common import (
    collect_quorum,
    config_of,
    load_roster,
    media_dir,
    require_script_quorum,
)
from appliance.ceremony.context import ActionContext
from appliance.ceremony.errors import ActionFailed
from appliance.ceremony.operator import (
    CardRequest,
    Level,
    PinRequest,
    TextEntry,
    completed_reset_text,
    wipe,
)
from appliance.ceremony.params import family_of
from appliance.ceremony.registry import ActionResult, Registry, require
from appliance.sharing.ports import ForwardingCard

if TYPE_CHECKING:
    from appliance.sharing.ports import ProvisionableCard


def shares_retest(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    """Each holder present opens their sealed share with card and PIN; the share is
    compared with its commitment and wiped. Findings are results (recorded, read aloud),
    and the roster records every retest, re-signed by the ceremony key."""
    from appliance.sharing.envelope import Purpose
    from appliance.sharing.errors import WrongPin
    from appliance.sharing.retest import retest

    signer = ctx.services.signer
    if signer is None:
        raise ActionFailed(
            "The roster that records the retests is signed by the ceremony key, which is "
            "not available.",
            hint="Activate the HSM in an earlier step (hsm.activate).",
        )
    if ctx.services.cards is None:
        raise ActionFailed("No card reader service.", hint="Connect a reader (or the demo).")
    roster = load_roster(ctx)
    cset = roster.set_for(Purpose.BACKUP_KEY, config_of(ctx).hsm.token)
    found: list[dict[str, Any]] = []
    for seat in ctx.seats_for(str(params["holders"])):
        while True:
            ctx.operator.present_card(
                CardRequest(ctx.step.id, f"re-test the credential of {seat}", (seat,))
            )
            try:
                card = ctx.services.cards.holder_card()
                pin = ctx.operator.enter_pin(
                    PinRequest(ctx.step.id, seat, card.serial, card.pin_tries_left())
                )
                try:
                    result, roster = retest(roster, cset.set_id, card, pin)
                except WrongPin as exc:
                    ctx.operator.notify(ctx.step.id, exc.operator_text(), "error")
                    continue
                finally:
                    wipe(pin)
            finally:
                ctx.operator.remove_card(ctx.step.id, seat)
            break
        level: Level = "info" if result.ok else "warning"
        ctx.operator.notify(
            ctx.step.id,
            f"{seat} (card {result.card_serial}): {result.outcome}. {result.action}",
            level,
        )
        found.append(
            {
                "seat": seat,
                "serial": result.card_serial,
                "index": result.index,
                "outcome": result.outcome,
                "pin_tries_left": result.pin_tries_left,
                "card_version": result.card_version,
            }
        )
    digest = _save_roster(ctx, roster)
    ctx.kill_point()
    bad = [r for r in found if r["outcome"] != "ok"]
    return ActionResult(
        f"{len(found) - len(bad)} of {len(found)} credentials re-tested OK"
        + (f"; needing action: {', '.join(r['seat'] for r in bad)}" if bad else ""),
        {
            "set_id": cset.set_id,
            "results": found,
            "roster_sha256": digest,
        },
    )


def _save_roster(ctx: ActionContext, roster: Any) -> str:
    """Sign the roster with the ceremony key; write it to the outputs and the media."""
    from appliance.sharing import roster as rosters

    signer = ctx.services.signer
    if signer is None:  # pragma: no cover - callers check first
        raise ActionFailed("No ceremony key to sign the roster.")
    data, _ = rosters.dumps(roster, signer)
    ctx.workspace.write_output("roster.json", data)
    atomic.write_bytes(media_dir(ctx) / "roster.json", data)
    return hashlib.sha256(data).hexdigest()


def shares_rekey(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    """A quorum of shareholders rebuilds the backup key; a new share set (new set id,
    threshold `threshold`) replaces it, the token is backed up under the new key, the old
    set is retired. New envelopes go into the roster; each card receives its own at its
    holder's next retest."""
    from appliance.ceremony.actions.common import backups_dir, hsm_session
    from appliance.hsm.backup import create_backup
    from appliance.sharing import roster as rosters
    from appliance.sharing.envelope import Purpose
    from appliance.sharing.rekey import rekey_backup

    session = hsm_session(ctx)
    if ctx.services.signer is None:
        raise ActionFailed("The ceremony key is not available to sign the new roster.")
    token = config_of(ctx).hsm.token
    done_path = ctx.workspace.output_path("roster.json")
    if done_path.exists():  # written by this step before an interruption?
        current = rosters.load(done_path, trusted_public_key=ctx.services.signer.public_key_der())
        mine = [s for s in current.sets if s.purpose == Purpose.BACKUP_KEY and s.subject == token]
        retired = [s for s in mine if s.status == "retired" and s.replaced_by]
        if retired:
            return ActionResult(
                f"Set {retired[-1].set_id} was already replaced by set "
                f"{retired[-1].replaced_by} in this step: not rekeyed again.",
                {"old_set": retired[-1].set_id, "new_set": retired[-1].replaced_by},
                already=True,
            )
    roster = load_roster(ctx)
    cset = roster.set_for(Purpose.BACKUP_KEY, token)
    require_script_quorum(params, cset)
    qs, presented = collect_quorum(
        ctx, roster, cset.set_id, str(params["holders"]), "rebuild the backup key"
    )
    made: list[str] = []

    def rewrap(old_key: bytearray, new_key: bytearray) -> None:
        made.append(create_backup(session, new_key, backups_dir(ctx)).backup.path.name)

    try:
        done = rekey_backup(roster, qs, rewrap, threshold=int(params["threshold"]))
    finally:
        qs.close()
    digest = _save_roster(ctx, done.roster)
    ctx.kill_point()
    return ActionResult(
        f"Backup key set {done.old_set_id} retired, replaced by set {done.new_set_id} "
        f"({params['threshold']}-of-n); backup {made[0] if made else '?'} made under the new "
        f"key; {len(done.pending_cards)} card(s) receive their new envelope at their next retest.",
        {
            "old_set": done.old_set_id,
            "new_set": done.new_set_id,
            "backup": made[0] if made else None,
            "pending_cards": list(done.pending_cards),
            "presented": [p.as_dict() for p in presented],
            "roster_sha256": digest,
        },
    )


def shares_replace(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    """A quorum of the other shareholders extends the set with a new share for the holder
    now in seat `holder` (a new card, provisioned from blank, PINs chosen by the new
    holder); the previous member of that seat is revoked in the same roster version."""
    from appliance.sharing import roster as rosters
    from appliance.sharing.envelope import Purpose
    from appliance.sharing.issue import HolderPins, HolderSpec
    from appliance.sharing.membership import add_holder

    if ctx.services.signer is None:
        raise ActionFailed("The ceremony key is not available to sign the new roster.")
    if ctx.services.cards is None:
        raise ActionFailed("No card reader service.", hint="Connect a reader (or the demo).")
    token = config_of(ctx).hsm.token
    seat = str(params["holder"])
    done_path = ctx.workspace.output_path("roster.json")
    if done_path.exists():  # written by this step before an interruption?
        current = rosters.load(done_path, trusted_public_key=ctx.services.signer.public_key_der())
        cset = current.set_for(Purpose.BACKUP_KEY, token)
        revoked = [m for m in cset.members if m.role == seat and m.revoked]
        if revoked:
            return ActionResult(
                f"{seat} was already replaced in this step: not repeated.",
                {"set_id": cset.set_id, "revoked": revoked[-1].card_serial},
                already=True,
            )
    roster = load_roster(ctx)
    cset = roster.set_for(Purpose.BACKUP_KEY, token)
    old = [m for m in cset.live_members if m.role == seat]
    if not old:
        raise ActionFailed(f"Set {cset.set_id} has no live member in seat {seat}.")
    require_script_quorum(params, cset)
    qs, presented = collect_quorum(
        ctx,
        roster,
        cset.set_id,
        family_of(seat),
        f"re-issue the share of {seat}",
        without=(seat,),
    )
    try:
        ctx.operator.present_card(
            CardRequest(ctx.step.id, f"the new card of {seat}", (seat,), finish_reset=True)
        )
        try:
            card = card_to_reset(ctx, seat)

            def choose(spec: HolderSpec) -> HolderPins:
                user = ctx.operator.enter_pin(
                    PinRequest(ctx.step.id, seat, card.serial, None, "user", new=True)
                )
                admin = ctx.operator.enter_pin(
                    PinRequest(ctx.step.id, seat, card.serial, None, "admin", new=True)
                )
                return HolderPins(user, admin)

            spec = HolderSpec(seat, ctx.attendance.get(seat, seat), card, login=seat)
            updated = add_holder(
                roster,
                qs,
                spec,
                choose,
                replaces=old[-1].card_serial,
                reason=f"replaced in ceremony {ctx.script.id}",
            )
        finally:
            ctx.operator.remove_card(ctx.step.id, seat)
    finally:
        qs.close()
    digest = _save_roster(ctx, updated)
    ctx.kill_point()
    new = updated.get_set(cset.set_id).member_by_serial(card.serial)
    return ActionResult(
        f"{seat}: card {old[-1].card_serial} revoked; new card {card.serial} holds share "
        f"index {new.index if new else '?'} of set {cset.set_id}.",
        {
            "set_id": cset.set_id,
            "revoked": old[-1].card_serial,
            "new_card": card.serial,
            "new_index": new.index if new else None,
            "presented": [p.as_dict() for p in presented],
            "roster_sha256": digest,
        },
    )


def card_to_reset(ctx: ActionContext, seat: str, *, announce: bool = True) -> ProvisionableCard:
    """The card in the reader, for a flow that will reset it (enrolment, issuing). A card
    pulled during an earlier reset is left terminated and unreadable; it is finished here,
    since this flow resets it anyway, and the room is told what was found."""
    if ctx.services.cards is None:
        raise ActionFailed("No card reader service.", hint="Connect a reader (or the demo).")
    card = ctx.services.cards.holder_card(finish_reset=True)
    if announce and card.completed_reset:
        ctx.operator.notify(ctx.step.id, completed_reset_text(seat, card.serial), "warning")
    return card


class _Reader:
    """Which seat's card is in the single reader, for flows that use several cards."""

    def __init__(self, ctx: ActionContext, purpose: str) -> None:
        self.ctx = ctx
        self.purpose = purpose
        self.seat: str | None = None

    def card_of(self, seat: str, serial: str) -> ProvisionableCard:
        ctx = self.ctx
        if ctx.services.cards is None:
            raise ActionFailed("No card reader service.", hint="Connect a reader (or the demo).")
        presented = self.seat != seat
        if presented:
            self.release()
            ctx.operator.present_card(
                CardRequest(ctx.step.id, self.purpose, (seat,), finish_reset=True)
            )
            self.seat = seat
        card = card_to_reset(ctx, seat, announce=presented)
        if card.serial != serial:
            raise ActionFailed(
                f"{seat} presented card {card.serial}, not the card {serial} enrolled for them.",
                hint=f"{seat}: present the card recorded at enrolment.",
            )
        return card

    def choose_pins(self, spec: Any) -> Any:
        """The PINs the holder of `spec` chooses for their card (typed, never shown)."""
        from appliance.sharing.issue import HolderPins

        seat = spec.login or spec.role
        user = self.ctx.operator.enter_pin(
            PinRequest(self.ctx.step.id, seat, spec.card.serial, None, "user", new=True)
        )
        admin = self.ctx.operator.enter_pin(
            PinRequest(self.ctx.step.id, seat, spec.card.serial, None, "admin", new=True)
        )
        return HolderPins(user, admin)

    def release(self) -> None:
        if self.seat is not None:
            self.ctx.operator.remove_card(self.ctx.step.id, self.seat)
            self.seat = None


class _SeatCard(ForwardingCard):
    """A holder's card named by seat and enrolled serial; each use makes sure it is the card
    in the reader (asking its holder to insert it), so issuing flows that hold a list of
    cards work with one reader."""

    def __init__(self, reader: _Reader, seat: str, serial: str) -> None:
        self._reader = reader
        self._seat = seat
        self._serial = serial

    def _card(self) -> ProvisionableCard:
        return self._reader.card_of(self._seat, self._serial)

    @property
    def serial(self) -> str:
        return self._serial


def cards_enroll(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    """Each holder of the family presents the card they will hold; its serial and version
    are recorded (the card is provisioned, keys and PINs, when the share is issued)."""
    if ctx.services.cards is None:
        raise ActionFailed("No card reader service.", hint="Connect a reader (or the demo).")
    enrolled: dict[str, str] = {}
    versions: dict[str, str] = {}
    for seat in ctx.seats_for(str(params["holders"])):
        ctx.operator.present_card(
            CardRequest(ctx.step.id, f"enrol the card of {seat}", (seat,), finish_reset=True)
        )
        try:
            card = card_to_reset(ctx, seat)
            if card.serial in enrolled.values():
                raise ActionFailed(f"{seat} presented card {card.serial}, already enrolled.")
            enrolled[seat] = card.serial
            versions[seat] = card.application_version()
        finally:
            ctx.operator.remove_card(ctx.step.id, seat)
        ctx.operator.notify(ctx.step.id, f"{seat}: card {card.serial} (OpenPGP {versions[seat]})")
    ctx.kill_point()
    return ActionResult(
        f"{len(enrolled)} card(s) enrolled: " + ", ".join(f"{k} {v}" for k, v in enrolled.items()),
        {"cards": enrolled, "versions": versions},
    )


def _enrolled(ctx: ActionContext, family: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for _, result in ctx.history.results_of("cards.enroll"):
        for seat, serial in dict(result.get("cards", {})).items():
            if any(seat == s for s in ctx.seats_for(family)):
                found[str(seat)] = str(serial)
    if not found:
        raise ActionFailed(
            f"No {family} cards were enrolled in this ceremony.",
            hint="Run a cards.enroll step for them first.",
        )
    return found


def issue_holders(ctx: ActionContext, family: str, purpose: str) -> tuple[list[Any], _Reader]:
    """HolderSpecs for the cards of `family` enrolled earlier in this ceremony, each a
    seat card that asks its holder to insert it when the issuing flow needs it."""
    from appliance.sharing.issue import HolderSpec

    reader = _Reader(ctx, purpose)
    holders = [
        HolderSpec(
            seat, ctx.attendance.get(seat, seat), _SeatCard(reader, seat, serial), login=seat
        )
        for seat, serial in _enrolled(ctx, family).items()
    ]
    return holders, reader


def shares_issue(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    """Split a fresh backup key k-of-n (SLIP-39) among the enrolled holders' cards: each
    card is provisioned (on-card keys, the PINs its holder chooses) and receives its sealed
    share; the token is backed up under the new key at once, the roster re-signed."""
    from appliance.ceremony.actions.common import backups_dir, hsm_session
    from appliance.hsm.backup import create_backup
    from appliance.sharing import roster as rosters
    from appliance.sharing.envelope import Purpose
    from appliance.sharing.issue import issue_backup_set

    if str(params["secret"]) != "backup-key":
        raise ActionFailed(
            "Issuing the HSM activation secret (token-pin) is part of initialising a new "
            "appliance's token, which this build does not drive yet.",
            hint='Use secret = "backup-key" here.',
        )
    session = hsm_session(ctx)
    signer = ctx.services.signer
    if signer is None:
        raise ActionFailed("The ceremony key is not available to sign the new roster.")
    token = config_of(ctx).hsm.token
    done_path = ctx.workspace.output_path("roster.json")
    if done_path.exists():
        current = rosters.load(done_path, trusted_public_key=signer.public_key_der())
        sets = [s for s in current.active_sets(Purpose.BACKUP_KEY) if s.subject == token]
        if sets:
            return ActionResult(
                f"Set {sets[-1].set_id} was already issued in this step: not issued again.",
                {"set_id": sets[-1].set_id},
                already=True,
            )
    holders, reader = issue_holders(ctx, str(params["holders"]), "receive your share")
    roster = load_roster(ctx)
    made: list[str] = []
    try:
        issued = issue_backup_set(
            roster,
            backup_name=token,
            threshold=int(params["threshold"]),
            holders=holders,
            choose_pins=reader.choose_pins,
            make_backup=lambda key: made.append(
                create_backup(session, key, backups_dir(ctx)).backup.path.name
            ),
        )
    finally:
        reader.release()
    digest = _save_roster(ctx, issued.roster)
    ctx.kill_point()
    return ActionResult(
        f"Backup key set {issued.set_id}: {params['threshold']} of {len(holders)} shares, one "
        f"sealed to each card; backup {made[0] if made else '?'} made under it.",
        {
            "set_id": issued.set_id,
            "threshold": int(params["threshold"]),
            "cards": {h.role: h.card.serial for h in holders},
            "backup": made[0] if made else None,
            "roster_sha256": digest,
        },
    )


def _holder_member(ctx: ActionContext, roster: Any, seat: str) -> Any:
    from appliance.sharing.envelope import Purpose

    cset = roster.set_for(Purpose.BACKUP_KEY, config_of(ctx).hsm.token)
    found = [m for m in cset.live_members if m.role == seat]
    if not found:
        raise ActionFailed(f"No live shareholder in seat {seat} in set {cset.set_id}.")
    return cset, found[-1]


def hint_seal(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    """The holder types where their credential is kept; it is sealed for a quorum of the
    other shareholders (their cards' public keys, no card needed) and recorded in the
    re-signed roster. Nothing about the text (not even its hash) enters the journal."""
    from appliance.sharing.notes import seal_note, seats_from_roster

    if ctx.services.signer is None:
        raise ActionFailed("The ceremony key is not available to sign the roster.")
    if not isinstance(ctx.operator, TextEntry):
        raise ActionFailed(
            "This console cannot take a typed hint.",
            hint="Use a console that supports text entry (TextEntry) for this step.",
        )
    seat = str(params["holder"])
    roster = load_roster(ctx)
    cset, member = _holder_member(ctx, roster, seat)
    mine = [n for n in roster.notes if n.about == member.card_serial and n.kind == "location-hint"]
    done_path = ctx.workspace.output_path("roster.json")
    if mine and done_path.exists():
        return ActionResult(
            f"{seat}'s hint was already sealed in this step ({mine[-1].note_id}).",
            {"note_id": mine[-1].note_id, "quorum_set": mine[-1].quorum_set},
            already=True,
        )
    others = [m.card_serial for m in cset.live_members if m.card_serial != member.card_serial]
    text = ctx.operator.enter_text(
        ctx.step.id, seat, "Where is your credential kept? (seen by nobody)", secret=True
    )
    roster, note_id = seal_note(
        roster,
        kind="location-hint",
        about=member.card_serial,
        text=text,
        quorum=seats_from_roster(roster, others),
        threshold=int(params["quorum"]),
    )
    del text
    digest = _save_roster(ctx, roster)
    ctx.kill_point()
    note = roster.get_note(note_id)
    return ActionResult(
        f"{seat}'s location hint sealed as {note_id}: {params['quorum']} of {len(others)} "
        "other shareholders open it.",
        {
            "note_id": note_id,
            "quorum_set": note.quorum_set,
            "quorum_cards": others,
            "roster_sha256": digest,
        },
    )


def hint_open(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    """A quorum of the note's holders opens a holder's sealed hint. The opening (who, which
    cards) is journaled before the room sees the text; the text is never journaled."""
    from appliance.sharing.notes import open_note

    seat = str(params["holder"])
    roster = load_roster(ctx)
    _, member = _holder_member(ctx, roster, seat)
    mine = [n for n in roster.notes if n.about == member.card_serial and n.kind == "location-hint"]
    if not mine:
        raise ActionFailed(f"{seat} has no sealed location hint in the roster.")
    note = mine[-1]
    qs, presented = collect_quorum(
        ctx,
        roster,
        note.quorum_set,
        family_of(seat),
        f"open the hint of {seat}",
        without=(seat,),
    )
    openings: list[Any] = []
    try:
        text = open_note(roster, note.note_id, qs, openings.append)
    finally:
        qs.close()
    ctx.kill_point()
    return ActionResult(
        f"{seat}'s hint {note.note_id} opened by "
        + ", ".join(p.seat for p in presented)
        + "; it is shown to the room now.",
        {"note_id": note.note_id, "presented": [p.as_dict() for p in presented]},
        reveal=f"Location hint of {seat}: {text}",
    )


def bind(registry: Registry) -> None:
    require("appliance.sharing.retest", "appliance.sharing.rekey", "appliance.hsm.backup")
    registry.bind("shares.retest", shares_retest)
    registry.bind("shares.rekey", shares_rekey)
    registry.bind("shares.replace", shares_replace)
    registry.bind("shares.issue", shares_issue)
    registry.bind("cards.enroll", cards_enroll)
    registry.bind("hint.seal", hint_seal)
    registry.bind("hint.open", hint_open)
