"""Credential actions bound to appliance.sharing (the roster, sealed shares on cards)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from appliance import atomic
from appliance.ceremony.actions.common import config_of, load_roster, media_dir
from appliance.ceremony.context import ActionContext
from appliance.ceremony.errors import ActionFailed
from appliance.ceremony.operator import CardRequest, Level, PinRequest, wipe
from appliance.ceremony.registry import ActionResult, Registry, require


def shares_retest(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    """Each holder present opens their sealed share with card and PIN; the share is
    compared with its commitment and wiped. Findings are results (recorded, read aloud),
    and the roster records every retest, re-signed by the ceremony key."""
    from appliance.sharing import roster as rosters
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
    data, _ = rosters.dumps(roster, signer)
    ctx.workspace.write_output("roster.json", data)
    atomic.write_bytes(media_dir(ctx) / "roster.json", data)
    ctx.kill_point()
    bad = [r for r in found if r["outcome"] != "ok"]
    return ActionResult(
        f"{len(found) - len(bad)} of {len(found)} credentials re-tested OK"
        + (f"; needing action: {', '.join(r['seat'] for r in bad)}" if bad else ""),
        {
            "set_id": cset.set_id,
            "results": found,
            "roster_sha256": hashlib.sha256(data).hexdigest(),
        },
    )


def bind(registry: Registry) -> None:
    require("appliance.sharing.retest", "appliance.sharing.roster")
    registry.bind("shares.retest", shares_retest)
