"""`appliance decode`: the registry-side verifier for printed or scanned outputs."""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.errors import UsageError


def load_pubkey(path: Path) -> bytes:
    """The pinned ceremony key as SubjectPublicKeyInfo DER (file in DER or PEM)."""
    from cryptography.hazmat.primitives import serialization

    from appliance import media, signing

    try:
        raw = media.read_file(Path(path), 64 * 1024)
    except media.Refused as exc:
        raise UsageError(f"the ceremony key {exc}", hint=exc.hint) from None
    if raw.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(raw)
        except ValueError:
            raise UsageError(f"{path} is not a PEM public key") from None
        raw = key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    signing.load_public_key(raw)  # P-256 or a clear error
    return raw


def _media(folder: Path, key: bytes, out: Path) -> int:
    """A bundle folder copied from the media: verify it, then copy what verified."""
    from appliance import atomic
    from appliance.outputs import bundle

    verified = bundle.read_bundle_dir(folder, key)
    for a in verified.artifacts:
        atomic.write_bytes(out / a.name, a.data)
    atomic.write_bytes(out / bundle.MANIFEST_NAME, verified.signed.encode())
    m = verified.manifest
    print(
        f"Bundle {folder}: ceremony {m.ceremony_id} of {m.created}, manifest signed by the "
        f"pinned ceremony key {verified.signed.key_fingerprint[:16]}..."
    )
    for e in m.artifacts:
        print(f"OK {e.title}: {e.name}, {e.size} bytes, SHA-256 verified")
    print(f"All {len(m.artifacts)} artifact(s) verified and written to {out}.")
    return 0


def command(args: argparse.Namespace) -> int:
    from appliance.outputs import decode
    from appliance.outputs.errors import DecodeError

    key = load_pubkey(args.pubkey)
    scans = [Path(s) for s in args.scans]
    folders = [s for s in scans if s.is_dir()]
    if folders:
        if len(scans) != 1:
            raise UsageError("pass either one bundle folder from the media, or scans")
        return _media(folders[0], key, Path(args.out))
    try:
        result = decode.decode_scans(scans, key, Path(args.out), dpi=args.dpi, set_id=args.set)
    except DecodeError as exc:
        for note in exc.fields.get("notes", []):
            print(f"NOTE {note}")
        raise
    for line in result.report():
        print(line)
    if result.complete:
        print(f"All {len(result.verified)} artifact(s) verified and written to {args.out}.")
        return 0
    print(
        f"Incomplete: {len(result.verified)} verified artifact(s) written to {args.out}; "
        "scan the missing codes and run again with all scans."
    )
    return 1


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "decode",
        help="verify scanned QR sheets against the pinned ceremony key and write the artifacts",
    )
    p.add_argument(
        "scans",
        nargs="+",
        metavar="SCAN",
        help="images or PDFs, in any order; or one bundle folder copied from the media",
    )
    p.add_argument("--pubkey", required=True, type=Path, help="pinned ceremony key (DER or PEM)")
    p.add_argument("--out", required=True, type=Path, help="folder for the verified artifacts")
    p.add_argument("--dpi", type=int, default=200, help="rasterising resolution for PDFs")
    p.add_argument("--set", default=None, help="set id to decode when scans mix several sets")
    p.set_defaults(handler=command)
