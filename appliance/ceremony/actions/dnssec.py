"""DNSSEC actions bound to appliance.dnssec (KSR/SKR, policy, KSK publication) and the HSM."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from appliance import pgpwords
from appliance.ceremony.actions.common import hsm_session
from appliance.ceremony.context import ActionContext
from appliance.ceremony.errors import ActionFailed
from appliance.ceremony.operator import Choice, Confirmation
from appliance.ceremony.registry import ActionResult, Registry, require

#: The topic of the CA's override request (a `Choice`: "refuse" or "override <ID>").
OVERRIDE_TOPIC = "ksr-override"


def _document(ctx: ActionContext, step_id: str) -> tuple[Any, bytes, str]:
    """The KSR loaded by `step_id` (re-read from the workspace copy, hash re-checked)."""
    from appliance.dnssec.formats import parse_bytes

    result = ctx.history.result(step_id)
    if result is None:
        raise ActionFailed(f"Step '{step_id}' has not loaded a KSR.")
    name = str(result["input"])
    loaded = ctx.load_input(name, "the KSR")
    data = loaded.path.read_bytes()
    return parse_bytes(data, name), data, loaded.sha256


def _zones(ctx: ActionContext, name: str) -> dict[str, Any]:
    from appliance.dnssec.zones import load_zones

    loaded = ctx.load_input(name, "the zones file (signing policy per zone)")
    return load_zones(loaded.path)


def ksr_load(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    from appliance.dnssec.formats import parse_bytes

    name = str(params["input"])
    loaded = ctx.load_input(name, "the Key Signing Request")
    doc = parse_bytes(loaded.path.read_bytes(), name)
    if doc.kind != "request":
        raise ActionFailed(f"{name} is an SKR, not a KSR.", hint="Load the KSR file.")
    fmt = str(params.get("format") or "auto")
    if fmt != "auto" and doc.format != fmt:
        raise ActionFailed(f"{name} is a {doc.format} KSR, the script expects {fmt}.")
    ctx.kill_point()
    words = pgpwords.phrase(bytes.fromhex(loaded.sha256))
    ctx.operator.notify(ctx.step.id, f"KSR SHA-256 {loaded.sha256}\n{words}")
    seat = (ctx.seats_for("IW") or ["IW"])[0]
    if not ctx.operator.confirm(
        Confirmation(
            ctx.step.id,
            seat,
            "Do the words match the KSR hash the zone operator sent by another channel?",
            "action",
        )
    ):
        raise ActionFailed(
            f"{seat} reports that the KSR hash does not match.",
            hint="Do not sign: obtain the KSR again and compare, or abort.",
        )
    return ActionResult(
        f"KSR for {doc.domain} ({doc.format}, {len(doc.bundles)} bundles), SHA-256 "
        f"{loaded.sha256} confirmed by {seat}",
        {
            "input": name,
            "inputs": {name: loaded.sha256},
            "zone": doc.domain,
            "format": doc.format,
            "bundles": len(doc.bundles),
            "pgp_words": words,
        },
    )


def _ksks(ctx: ActionContext, entry: Any, *, need_hsm: bool) -> list[Any]:
    """The zone's KSKs from the HSM with their rollover roles (`ksk_schedule`: publish and
    sign windows, revoked, publish-only), or [] when the HSM is not active yet."""
    from appliance.hsm import keys

    if not need_hsm and "hsm" not in ctx.session:
        return []
    session = hsm_session(ctx)
    # keys.dnssec_key raises KeyNotFound naming a label the token lacks: never skipped.
    return list(entry.bind(lambda label: keys.dnssec_key(session, label)))


def _later(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _earlier(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _check(
    ctx: ActionContext, doc: Any, entry: Any, ksks: list[Any], overrides: Sequence[Any] = ()
) -> Any:
    """The policy report. Before activation the KSKs are described from the zones file
    (their roles, the policy's KSK algorithm); `ksr.sign` re-checks with the real keys."""
    from appliance.dnssec.policy import KskInfo, check_request

    if ksks:
        infos = [k.info() for k in ksks]
    else:
        policy = entry.policy
        algorithm = policy.ksk_algorithm or policy.algorithms[0]
        infos = [
            KskInfo(
                algorithm,
                0,
                role.label,
                sign_from=_later(role.sign_from, role.publish_from),
                sign_until=_earlier(role.sign_until, role.publish_until),
                publish_only=role.publish_only,
            )
            for role in entry.ksks
        ]
    return check_request(
        doc, entry.policy, ksks=infos, now=datetime.now(UTC), overrides=tuple(overrides)
    )


def _requirements(violations: Sequence[Any]) -> list[str]:
    return list(dict.fromkeys(v.requirement for v in violations))


def _ask_overrides(
    ctx: ActionContext, doc: Any, report: Any
) -> tuple[list[Any], list[dict[str, str]]]:
    """For each blocking requirement: the CA may request an override with a reason, the IW
    must confirm it. Returns the overrides and their journal records (who, why); stops at
    the first requirement left standing (the KSR cannot be signed then anyway)."""
    from appliance.dnssec.errors import NOT_OVERRIDABLE
    from appliance.dnssec.policy import Override

    ca = (ctx.seats_for("CA") or ["CA"])[0]
    iw = (ctx.seats_for("IW") or ["IW"])[0]
    overrides: list[Any] = []
    records: list[dict[str, str]] = []
    never = [r for r in _requirements(report.blocking) if r in NOT_OVERRIDABLE]
    for requirement in never:  # the KSR cannot be signed: no override is asked for
        ctx.operator.notify(
            ctx.step.id,
            f"{requirement} cannot be overridden: deprecated algorithms are refused in every case.",
            "error",
        )
    if never:
        return overrides, records
    for requirement in _requirements(report.blocking):
        found = [v for v in report.blocking if v.requirement == requirement]
        details = "; ".join(v.detail for v in found[:3]) + (
            f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        )
        chosen = ctx.operator.choose(
            Choice(
                ctx.step.id,
                ca,
                f"The KSR for {doc.domain} violates {requirement}: {details}. Sign despite "
                f"it? An override needs {ca}'s reason and {iw}'s confirmation, and is "
                "recorded in the journal.",
                ("refuse", f"override {requirement}"),
                topic=OVERRIDE_TOPIC,
            )
        )
        if chosen != f"override {requirement}":
            break
        reason = ctx.operator.exception_text(
            ctx.step.id, ca, f"{ca}: the reason for signing despite {requirement}"
        ).strip()
        if not reason:
            ctx.operator.notify(
                ctx.step.id, f"No reason given: {requirement} is not overridden.", "error"
            )
            break
        if not ctx.operator.confirm(
            Confirmation(
                ctx.step.id,
                iw,
                f"Do you witness {ca} overriding {requirement} for this reason: {reason}?",
                "action",
            )
        ):
            ctx.operator.notify(
                ctx.step.id,
                f"{iw} did not confirm: {requirement} is not overridden.",
                "error",
            )
            break
        witness = f"{iw} ({ctx.attendance[iw]})" if iw in ctx.attendance else iw
        overrides.append(Override(requirement, reason, witness))
        records.append(
            {
                "requirement": requirement,
                "reason": reason,
                "requested_by": ca,
                "requested_by_name": str(ctx.attendance.get(ca, "")),
                "witnessed_by": iw,
                "witnessed_by_name": str(ctx.attendance.get(iw, "")),
            }
        )
    return overrides, records


def _refusal(zone: str, blocking: Sequence[Any], step_id: str) -> ActionFailed:
    from appliance.dnssec.errors import NOT_OVERRIDABLE

    ids = _requirements(blocking)
    never = [r for r in ids if r in NOT_OVERRIDABLE]
    message = f"The KSR for {zone} violates {', '.join(ids)}; nothing was signed."
    if never:
        message += f" {', '.join(never)} can never be overridden."
        hint = "Do not sign. Ask the zone operator for a corrected KSR."
    else:
        hint = (
            "Do not sign: ask the zone operator for a corrected KSR. To sign anyway, retry "
            "this step: the CA overrides each requirement with a reason and the IW confirms "
            f'(headless: overrides = {{ID = "reason"}} in [steps.{step_id}]).'
        )
    return ActionFailed(message, hint=hint)


def ksr_check(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    doc, _, digest = _document(ctx, str(params["ksr"]))
    zones = _zones(ctx, str(params.get("zones") or "zones"))
    entry = zones.get(doc.domain)
    if entry is None:
        raise ActionFailed(f"The zones file has no policy for {doc.domain}.")
    ksks = _ksks(ctx, entry, need_hsm=False)
    report = _check(ctx, doc, entry, ksks)
    for v in report.violations:
        ctx.operator.notify(ctx.step.id, f"{v.requirement}: {v.detail}", "error")
    records: list[dict[str, str]] = []
    if not report.ok:
        overrides, records = _ask_overrides(ctx, doc, report)
        report = _check(ctx, doc, entry, ksks, overrides)
        if not report.ok:
            raise _refusal(doc.domain, report.blocking, ctx.step.id)
    ctx.kill_point()
    used = [o["requirement"] for o in records]
    summary = (
        f"KSR for {doc.domain}: every policy check passed."
        if not report.violations
        else f"KSR for {doc.domain}: signed only under the witnessed override of {', '.join(used)}."
    )
    return ActionResult(
        summary,
        {
            "ksr_sha256": digest,
            "zone": doc.domain,
            "violations": _requirements(report.violations),
            "ok": True,
            "report": report.as_dict(),
            "overrides": records,
        },
    )


def _journaled_overrides(ctx: ActionContext, digest: str, zone: str) -> tuple[list[Any], str]:
    """The overrides the latest successful `ksr.check` of this KSR recorded (and its step):
    exactly those, so a resume neither loses nor widens them."""
    from appliance.dnssec.policy import Override

    found: tuple[str, Mapping[str, Any]] | None = None
    for step, result in ctx.history.results_of("ksr.check"):
        if result.get("ksr_sha256") == digest and result.get("zone") == zone:
            found = (step, result)
    if found is None:
        return [], ""
    step, result = found
    out = []
    for item in result.get("overrides") or []:
        iw = str(item["witnessed_by"])
        name = str(item.get("witnessed_by_name") or "")
        witness = f"{iw} ({name})" if name else iw
        out.append(Override(str(item["requirement"]), str(item["reason"]), witness))
    return out, step


def ksr_sign(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    from appliance.dnssec.sign import sign_request
    from appliance.dnssec.writer import render

    doc, _, digest = _document(ctx, str(params["ksr"]))
    target = f"skr/skr-{digest[:16]}.txt" if doc.format == "knot" else f"skr/skr-{digest[:16]}.xml"
    path = ctx.workspace.output_path(target)
    if path.exists():
        data = path.read_bytes()
        return _skr_result(target, data, digest, doc, already=True)
    entry = _zones(ctx, str(params.get("zones") or "zones")).get(doc.domain)
    if entry is None:
        raise ActionFailed(f"The zones file has no policy for {doc.domain}.")
    ksks = _ksks(ctx, entry, need_hsm=True)
    overrides, check_step = _journaled_overrides(ctx, digest, doc.domain)
    report = _check(ctx, doc, entry, ksks, overrides)
    if not report.ok:
        ids = ", ".join(_requirements(report.blocking))
        raise ActionFailed(
            f"The KSR fails the policy with the HSM's KSK: {ids}"
            + (
                f" (the overrides journaled at step '{check_step}' do not cover them)"
                if overrides
                else ""
            )
            + "; nothing was signed.",
            hint="Do not sign. Only a check step's witnessed overrides allow a violation.",
        )
    skr = sign_request(doc, entry.policy, ksks, now=datetime.now(UTC))
    data = render(skr)
    ctx.workspace.write_output(target, data)
    ctx.kill_point()
    used = [o.requirement for o in report.overrides_used]
    return _skr_result(target, data, digest, doc, already=False, overrides=used)


def _skr_result(
    target: str,
    data: bytes,
    digest: str,
    doc: Any,
    *,
    already: bool,
    overrides: Sequence[str] = (),
) -> ActionResult:
    sha = hashlib.sha256(data).hexdigest()
    result: dict[str, Any] = {
        "skr": target,
        "skr_sha256": sha,
        "ksr_sha256": digest,
        "zone": doc.domain,
        "bundles": len(doc.bundles),
    }
    if not already:
        result["overrides_used"] = list(overrides)
    return ActionResult(
        f"SKR {target} for {doc.domain}: SHA-256 {sha}"
        + (" (already written for this KSR: not signed again)" if already else "")
        + (f" (signed under the override of {', '.join(overrides)})" if overrides else ""),
        result,
        already=already,
    )


def ksk_publish(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    from appliance.dnssec.publish import publish, trust_anchor_xml
    from appliance.hsm import keys

    generated = ctx.history.result(str(params["key"]))
    if generated is None:
        raise ActionFailed(f"Step '{params['key']}' generated no key.")
    label = str(generated["label"])
    signer = keys.dnssec_key(hsm_session(ctx), label)
    zone = str(params.get("zone") or ".")
    pub = publish(zone, signer)
    started = ctx.history.entries[0].time if ctx.history.entries else "1970-01-01T00:00:00Z"
    valid_from = datetime.fromisoformat(started.replace("Z", "+00:00"))
    stem = f"ksk/{label}"
    files = {
        f"{stem}.dnskey": (pub.dnskey_text() + "\n").encode(),
        f"{stem}.ds": ("\n".join(pub.ds_text()) + "\n").encode(),
        f"{stem}.trust-anchor.xml": trust_anchor_xml(
            pub, anchor_id=f"{label}", valid_from=valid_from
        ).encode(),
    }
    hashes = {name: ctx.workspace.write_output(name, blob)[1] for name, blob in files.items()}
    ctx.kill_point()
    ds_digest = pub.ds[0].split()[-1]
    words = pgpwords.phrase(bytes.fromhex(ds_digest))
    ctx.operator.notify(ctx.step.id, f"DS {pub.ds[0]}\n{words}")
    return ActionResult(
        f"KSK {label}: key tag {pub.key_tag}, DS {pub.ds[0]}",
        {
            "label": label,
            "key_tag": pub.key_tag,
            "ds": list(pub.ds),
            "files": hashes,
            "ds_words": words,
        },
    )


def bind(registry: Registry) -> None:
    require("appliance.dnssec.sign")

    registry.bind("ksr.load", ksr_load)
    registry.bind("ksr.check", ksr_check)
    registry.bind("ksr.sign", ksr_sign)
    registry.bind("ksk.publish", ksk_publish)
