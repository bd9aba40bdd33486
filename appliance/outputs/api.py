"""What the ceremony engine calls (`outputs.bundle`, `outputs.print`), in one place.

bundle = build_bundle(ceremony_id=..., script_sha256=..., journal_head=...,
                      artifacts=[Artifact(name, data, media_type, label)], signer=hsm_key)
folder = write_bundle(bundle, config.paths.media)
sheet = render_sheet(bundle)  # page-1 facts from the DS artifacts, or pass SheetFacts(...)
outcome = print_or_save(sheet.pdf, folder, SHEET_NAME, config.printer.queue)
outcome.status in ("printed", "queued", "failed", "saved"); outcome.operator_text()
"""

from __future__ import annotations

from appliance.outputs.bundle import (
    SHEET_NAME,
    Artifact,
    Bundle,
    SignedManifest,
    build_bundle,
    parse_signed_manifest,
    read_bundle_dir,
    write_bundle,
)
from appliance.outputs.decode import DecodeResult, decode_scans
from appliance.outputs.printer import PrintOutcome, print_or_save
from appliance.outputs.qr import CHOSEN, QrSettings
from appliance.outputs.sheet import Sheet, SheetFacts, facts_from, facts_from_bundle, render_sheet

__all__ = [
    "CHOSEN",
    "SHEET_NAME",
    "Artifact",
    "Bundle",
    "DecodeResult",
    "PrintOutcome",
    "QrSettings",
    "Sheet",
    "SheetFacts",
    "SignedManifest",
    "build_bundle",
    "decode_scans",
    "facts_from",
    "facts_from_bundle",
    "parse_signed_manifest",
    "print_or_save",
    "read_bundle_dir",
    "render_sheet",
    "write_bundle",
]
