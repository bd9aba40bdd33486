"""Actions the engine implements itself: air-gap check, confirmations, hashes read aloud."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from appliance import airgap, pgpwords
from appliance.ceremony.context import ActionContext
from appliance.ceremony.errors import ActionFailed
from appliance.ceremony.operator import Confirmation
from appliance.ceremony.registry import ActionResult, Registry


def airgap_check(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    report = airgap.check(ctx.services.airgap_root)
    enforced = bool(params.get("required", True)) and (
        ctx.config.airgap.required if ctx.config else True
    )
    data = {**report.as_dict(), "enforced": enforced}
    ctx.kill_point()
    if report.ok:
        return ActionResult(
            "Air gap holds: only the loopback interface, no radios, no routes.", data
        )
    if enforced:
        raise ActionFailed(
            "The air-gap check failed: " + "; ".join(report.problems),
            hint="Remove every network path (unplug, rfkill block all), then retry the step.",
        )
    ctx.operator.notify(
        ctx.step.id,
        "AIR GAP NOT ENFORCED (development configuration): " + "; ".join(report.problems),
        "warning",
    )
    return ActionResult("Air gap NOT enforced (development): recorded in the journal.", data)


def operator_confirm(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    role = str(params["role"])
    seats = ctx.seats_for(role)
    if not seats:
        raise ActionFailed(f"{role} is not present to confirm.")
    seat = seats[0]
    prompt = str(params["prompt"])
    if not ctx.operator.confirm(Confirmation(ctx.step.id, seat, prompt, "action")):
        raise ActionFailed(
            f"{seat} did not confirm: {prompt}",
            hint="Resolve the discrepancy, then retry, or abort.",
        )
    ctx.kill_point()
    return ActionResult(f"{seat} confirmed.", {"role": seat, "confirmed": True})


def typed_confirm(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    # The engine asked for the typed phrase before running this destructive step.
    ctx.kill_point()
    return ActionResult(
        f"Typed confirmation recorded: {params['consequence']}",
        {"role": str(params["role"]), "phrase": str(params["phrase"])},
    )


def hash_readaloud(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    name = str(params["input"])
    already = ctx.history.input_hash(name) is not None
    loaded = ctx.load_input(name, str(params["description"]))
    ctx.kill_point()
    words = pgpwords.phrase(bytes.fromhex(loaded.sha256))
    ctx.operator.notify(
        ctx.step.id, f"SHA-256 of {params['description']} ({name}): {loaded.sha256}\n{words}"
    )
    role = str(params.get("confirm") or "IW")
    seat = (ctx.seats_for(role) or [role])[0]
    prompt = (
        f"Do the words read aloud match the SHA-256 of {params['description']} received by "
        "another channel?"
    )
    if not ctx.operator.confirm(Confirmation(ctx.step.id, seat, prompt, "action")):
        raise ActionFailed(
            f"{seat} reports that the SHA-256 of {name} does not match.",
            hint="Do not use this file: obtain it again and compare, or abort.",
        )
    return ActionResult(
        f"{name}: SHA-256 {loaded.sha256} ({loaded.size} bytes) confirmed by {seat}"
        + (" (already loaded before the interruption)" if already else ""),
        {
            "inputs": {name: loaded.sha256},
            "size": loaded.size,
            "pgp_words": words,
            "confirmed_by": seat,
        },
        already=already,
    )


def bind(registry: Registry) -> None:
    registry.bind("airgap.check", airgap_check)
    registry.bind("operator.confirm", operator_confirm)
    registry.bind("operator.typed_confirm", typed_confirm)
    registry.bind("hash.readaloud", hash_readaloud)
