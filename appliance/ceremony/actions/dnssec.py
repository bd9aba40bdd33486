"""DNSSEC actions bound to appliance.dnssec (KSR/SKR, policy, KSK publication) and the HSM."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from appliance import pgpwords
from appliance.ceremony.actions.common import hsm_session
from appliance.ceremony.context import ActionContext
from appliance.ceremony.errors import ActionFailed
from appliance.ceremony.operator import Confirmation
from appliance.ceremony.registry import ActionResult, Registry, require


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
    from appliance.dnssec.sign import Ksk
    from appliance.hsm import keys

    if not need_hsm and "hsm" not in ctx.session:
        return []
    session = hsm_session(ctx)
    return [Ksk(keys.dnssec_key(session, label), label) for label in entry.ksk_labels]


def _check(ctx: ActionContext, doc: Any, entry: Any, ksks: list[Any]) -> Any:
    from appliance.dnssec.policy import KskInfo, check_request

    infos = (
        [k.info() for k in ksks]
        if ksks
        else [KskInfo(entry.policy.algorithms[0], 0, label) for label in entry.ksk_labels]
    )
    return check_request(doc, entry.policy, ksks=infos, now=datetime.now(UTC))


def ksr_check(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    doc, _, digest = _document(ctx, str(params["ksr"]))
    zones = _zones(ctx, str(params.get("zones") or "zones"))
    entry = zones.get(doc.domain)
    if entry is None:
        raise ActionFailed(f"The zones file has no policy for {doc.domain}.")
    report = _check(ctx, doc, entry, _ksks(ctx, entry, need_hsm=False))
    ctx.kill_point()
    for v in report.blocking:
        ctx.operator.notify(ctx.step.id, f"{v.requirement}: {v.message}", "error")
    if not report.ok:
        raise ActionFailed(
            f"The KSR for {doc.domain} violates "
            + ", ".join(v.requirement for v in report.blocking),
            hint="Do not sign. Ask the zone operator for a corrected KSR.",
        )
    return ActionResult(
        f"KSR for {doc.domain}: every policy check passed.",
        {"ksr_sha256": digest, "zone": doc.domain, "violations": [], "ok": True},
    )


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
    report = _check(ctx, doc, entry, ksks)
    if not report.ok:
        raise ActionFailed(
            "The KSR fails the policy with the HSM's KSK: "
            + ", ".join(v.requirement for v in report.blocking),
            hint="Do not sign.",
        )
    skr = sign_request(doc, entry.policy, ksks, now=datetime.now(UTC))
    data = render(skr)
    ctx.workspace.write_output(target, data)
    ctx.kill_point()
    return _skr_result(target, data, digest, doc, already=False)


def _skr_result(target: str, data: bytes, digest: str, doc: Any, *, already: bool) -> ActionResult:
    sha = hashlib.sha256(data).hexdigest()
    return ActionResult(
        f"SKR {target} for {doc.domain}: SHA-256 {sha}"
        + (" (already written for this KSR: not signed again)" if already else ""),
        {
            "skr": target,
            "skr_sha256": sha,
            "ksr_sha256": digest,
            "zone": doc.domain,
            "bundles": len(doc.bundles),
        },
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
