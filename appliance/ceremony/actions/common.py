"""Helpers the layer binders share: configuration, the HSM session, the roster, quorums."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.ceremony.context import ActionContext
from appliance.ceremony.errors import ActionFailed
from appliance.ceremony.operator import CardRequest, Confirmation, PinRequest, wipe
from appliance.config import Config

if TYPE_CHECKING:
    from appliance.hsm.pkcs11_adapter import Session
    from appliance.sharing.quorum import QuorumSession
    from appliance.sharing.roster import CredentialSet, Roster

HSM_SESSION = "hsm"


def config_of(ctx: ActionContext) -> Config:
    if ctx.config is None:
        raise ActionFailed(
            f"{ctx.step.id}: this action needs the appliance configuration (HSM, media).",
            hint="Run with --config or from the console UI.",
        )
    return ctx.config


def media_dir(ctx: ActionContext) -> Path:
    return config_of(ctx).paths.media


def backups_dir(ctx: ActionContext) -> Path:
    return media_dir(ctx) / "backups"


def hsm_session(ctx: ActionContext) -> Session:
    session = ctx.session.get(HSM_SESSION)
    if session is None:
        raise ActionFailed(
            "The HSM is not active in this session.",
            hint="Run the activation step first (hsm.activate).",
        )
    return session  # type: ignore[no-any-return]


def load_roster(ctx: ActionContext, name: str = "roster") -> Roster:
    """The roster input (copied into the workspace and hashed once), trusted through the
    ceremony key: the active HSM's, a fingerprint pinned by the caller, or the one the IW
    confirms against the printed sheet (the HSM then proves it on activation)."""
    import base64
    import json

    from appliance import pgpwords, signing
    from appliance.sharing import roster as rosters

    if ctx.step.action is not None:
        name = str(ctx.step.action.params.get("roster") or name)
    written = ctx.workspace.output_path("roster.json")
    if written.exists():  # this ceremony already wrote a newer roster: it is the current one
        loaded_path = written
    else:
        loaded_path = ctx.load_input(name, "the credential roster").path
    if ctx.services.signer is not None:
        return rosters.load(loaded_path, trusted_public_key=ctx.services.signer.public_key_der())
    pinned = ctx.services.ceremony_fingerprint
    if pinned:
        return rosters.load(loaded_path, trusted_fingerprint=pinned)
    try:
        doc = json.loads(loaded_path.read_bytes())
        public = base64.b64decode(doc["signature"]["public_key"], validate=True)
    except (ValueError, KeyError, TypeError):
        raise ActionFailed(f"The roster {name} is not a signed roster file.") from None
    fingerprint = signing.fingerprint(public)
    words = pgpwords.phrase(bytes.fromhex(fingerprint)[:8])
    seat = (ctx.seats_for("IW") or ["IW"])[0]
    prompt = (
        f"The roster is signed by ceremony key {fingerprint[:16]} ({words}). Does this match "
        "the ceremony key fingerprint printed at the HSM initialisation?"
    )
    if not ctx.operator.confirm(Confirmation(ctx.step.id, seat, prompt, "action")):
        raise ActionFailed(
            "The IW does not recognise the roster's ceremony key.",
            hint="Do not use this roster: find the roster signed by this HSM's ceremony key.",
        )
    ctx.services.ceremony_fingerprint = fingerprint
    return rosters.load(loaded_path, trusted_public_key=public)


def journal_day(ctx: ActionContext) -> str:
    """The ceremony's start day, YYYY-MM-DD (stable across a resume)."""
    entries = ctx.history.entries
    return entries[0].time[:10] if entries else "1970-01-01"


@dataclass(frozen=True)
class Presented:
    seat: str
    serial: str
    index: int

    def as_dict(self) -> dict[str, Any]:
        return {"seat": self.seat, "serial": self.serial, "index": self.index}


#: Removals of one holder's card during one quorum before that holder is not asked again.
MAX_PULLS = 3


def require_script_quorum(params: Mapping[str, Any], cset: CredentialSet) -> None:
    """The script's `quorum` must be the set's threshold: a script that asks for fewer or more
    shareholders than the roster's set needs was written for another set."""
    if int(params["quorum"]) != cset.threshold:
        raise ActionFailed(
            f"The script asks for {params['quorum']} shareholders but set {cset.set_id} "
            f"needs {cset.threshold}.",
            hint="Correct the script's quorum to the roster's threshold.",
        )


def collect_quorum(
    ctx: ActionContext,
    roster: Roster,
    set_id: str,
    family: str,
    purpose: str,
    *,
    without: tuple[str, ...] = (),
) -> tuple[QuorumSession, list[Presented]]:
    """Ask holders of `family` for cards one at a time until the set's threshold is met.

    A card refused before its PIN (not a member, revoked, repeated) is handed back and that
    seat is not asked again; a wrong PIN is reported with the tries left, and the same
    holder may try again (each try is the holder's decision, never automatic). A card pulled
    out during its turn is reported and that holder is asked again; the cards already
    accepted stay accepted.
    """
    from appliance.cards.errors import CardRemoved as CardGone
    from appliance.errors import SharingError
    from appliance.sharing.errors import CardRemoved, WrongPin
    from appliance.sharing.quorum import QuorumSession

    if ctx.services.cards is None:
        raise ActionFailed("No card reader service.", hint="Connect a reader (or the demo).")
    session = QuorumSession(roster, set_id)
    candidates = tuple(seat for seat in ctx.seats_for(family) if seat not in without)
    presented: list[Presented] = []
    refused: list[str] = []
    pulled: dict[str, int] = {}
    stray = 0
    try:
        while not session.complete:
            exclude = tuple(p.seat for p in presented) + tuple(refused)
            try:
                seat = ctx.operator.present_card(
                    CardRequest(ctx.step.id, purpose, candidates, exclude)
                )
            except (CardRemoved, CardGone) as exc:  # pulled while the reader opened it
                ctx.operator.notify(ctx.step.id, exc.operator_text(), "error")
                stray += 1
                if stray > MAX_PULLS * max(1, len(candidates)):
                    raise ActionFailed(
                        "Cards keep leaving the reader before they can be read.",
                        hint="Check the reader and its cable, then retry the step.",
                    ) from None
                continue
            try:
                try:
                    card = ctx.services.cards.holder_card()
                    session.check_card(card)
                except CardRemoved:
                    raise  # not a refusal: the holder re-seats the card (below)
                except SharingError as exc:  # unreadable, or not a card of this set
                    refused.append(seat)
                    ctx.operator.notify(ctx.step.id, exc.operator_text(), "error")
                    continue
                pin = ctx.operator.enter_pin(
                    PinRequest(ctx.step.id, seat, card.serial, card.pin_tries_left())
                )
                try:
                    accepted = session.present(card, pin)
                except WrongPin as exc:
                    ctx.operator.notify(ctx.step.id, exc.operator_text(), "error")
                    continue
                finally:
                    wipe(pin)
                presented.append(Presented(seat, accepted.card_serial, accepted.index))
                ctx.operator.notify(
                    ctx.step.id,
                    f"{seat}: card {accepted.card_serial} accepted "
                    f"({accepted.have} of {accepted.need}).",
                )
            except (CardRemoved, CardGone) as exc:
                ctx.operator.notify(ctx.step.id, exc.operator_text(), "error")
                pulled[seat] = pulled.get(seat, 0) + 1
                if pulled[seat] >= MAX_PULLS:  # a card that never stays in: ask the others
                    refused.append(seat)
            finally:
                ctx.operator.remove_card(ctx.step.id, seat)
    except BaseException:
        session.close()
        raise
    return session, presented
