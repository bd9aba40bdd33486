"""Signed outputs: bundle manifest, QR framing, the printable sheet, printing, decoding.

The engine's `outputs.bundle` and `outputs.print` actions call `api`:
build_bundle -> write_bundle -> render_sheet -> print_or_save. The registry's side calls
`decode.decode_scans` (the `appliance decode` command). Heavy libraries load lazily.
"""
