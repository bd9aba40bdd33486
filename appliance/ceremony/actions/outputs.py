"""Output actions bound to appliance.outputs: the signed bundle and its printed sheet."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from appliance import atomic, buildinfo
from appliance.ceremony.actions.common import config_of, journal_day, media_dir
from appliance.ceremony.context import ActionContext
from appliance.ceremony.errors import ActionFailed
from appliance.ceremony.registry import ActionResult, Registry, require


def bundle(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    from appliance.outputs.api import Artifact, build_bundle, write_bundle

    signer = ctx.services.signer
    if signer is None:
        raise ActionFailed(
            "No ceremony key is available to sign the bundle.",
            hint="Activate the HSM first (its ceremony key signs the bundle).",
        )
    # The day and the journal's first entry: a second ceremony of the same script on the
    # same day gets its own folder instead of mixing its files into the first one's.
    day = journal_day(ctx).replace("-", "")
    name = f"{params['name']}-{day}-{ctx.history.entries[0].digest[:8]}"
    folder = media_dir(ctx) / name
    root = ctx.workspace.root / "outputs"
    artifacts = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            rel = path.relative_to(root).as_posix().replace("/", "-")
            artifacts.append(Artifact(rel, path.read_bytes(), _media_type(path.name)))
    made = build_bundle(
        ceremony_id=name,
        script_sha256=ctx.script.sha256,
        journal_head=ctx.history.entries[-1].digest,
        artifacts=artifacts,
        signer=signer,
        appliance_version=buildinfo.version(),
        image_sha256=buildinfo.image_hash(),
    )
    written = write_bundle(made, media_dir(ctx))
    ctx.kill_point()
    ctx.session[f"bundle:{ctx.step.id}"] = made
    return ActionResult(
        f"Bundle {written} with {len(artifacts)} artifact(s), signed by the ceremony key.",
        {
            "bundle": name,
            "folder": str(folder),
            "artifacts": {a.name: a.sha256 for a in made.manifest.artifacts},
            "journal_head": ctx.history.entries[-1].digest,
        },
    )


def _media_type(name: str) -> str:
    if name.endswith(".xml"):
        return "application/xml"
    if name.endswith((".txt", ".ds", ".dnskey")):
        return "text/plain"
    return "application/octet-stream"


def print_sheet(ctx: ActionContext, params: Mapping[str, Any]) -> ActionResult:
    from appliance.outputs.api import SHEET_NAME, print_or_save, read_bundle_dir, render_sheet

    step = str(params["bundle"])
    result = ctx.history.result(step)
    if result is None:
        raise ActionFailed(f"Step '{step}' wrote no bundle.")
    made = ctx.session.get(f"bundle:{step}")
    folder = media_dir(ctx) / str(result["bundle"])
    if made is None:  # after a resume: read the bundle back from the media, verified
        signer = ctx.services.signer
        if signer is None:
            raise ActionFailed("No ceremony key to verify the bundle with.")
        atomic.remove_leftovers(folder)  # a sheet whose write the power cut tore
        made = read_bundle_dir(folder, signer.public_key_der())
    sheet = render_sheet(made)
    config = config_of(ctx)
    outcome = print_or_save(
        sheet.pdf,
        folder,
        SHEET_NAME,
        config.printer.queue,
        title=f"{ctx.script.id} outputs",
    )
    ctx.kill_point()
    return ActionResult(
        outcome.operator_text(),
        {"status": outcome.status, "copies": int(params.get("copies") or 1)},
    )


def bind(registry: Registry) -> None:
    require("appliance.outputs.api")

    registry.bind("outputs.bundle", bundle)
    registry.bind("outputs.print", print_sheet)
