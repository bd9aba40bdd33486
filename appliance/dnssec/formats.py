"""Loading a KSR or SKR whatever its format: the first bytes decide, the parser is strict."""

from __future__ import annotations

from pathlib import Path

from appliance import media
from appliance.dnssec import iana, knot
from appliance.dnssec.errors import DnssecInputError, InputLimitError
from appliance.dnssec.limits import InputLimits
from appliance.dnssec.model import Document


def parse_bytes(data: bytes, source: str, limits: InputLimits | None = None) -> Document:
    head = data[:256]
    if knot.looks_like_knot(head):
        return knot.parse(data, source, limits)
    if iana.looks_like_iana(head):
        return iana.parse(data, source, limits)
    raise DnssecInputError(
        source,
        "line 1",
        "neither a Knot KSR/SKR (';; KeySigningRequest 1.0 ...') nor an IANA KSR/SKR (<KSR ...>)",
    )


def read_limited(path: Path, limits: InputLimits | None = None) -> bytes:
    """Read at most max_bytes + 1 bytes, so a huge file is refused without loading it; a
    link, a FIFO or a device is refused before it is opened for reading (appliance.media)."""
    limits = limits or InputLimits()
    try:
        return media.read_file(path, limits.max_bytes)
    except media.Refused as exc:
        if exc.kind == "too-large":
            raise InputLimitError(
                str(path),
                "",
                f"larger than the limit of {limits.max_bytes} bytes",
                hint="Check the file; if it is genuine, raise the max_bytes limit.",
            ) from None
        hint = "Name the KSR or SKR file itself." if exc.kind == "not-regular" else exc.hint
        raise DnssecInputError(str(path), "", exc.reason, hint=hint) from None


def load_document(path: Path, limits: InputLimits | None = None) -> tuple[Document, bytes]:
    data = read_limited(path, limits)
    return parse_bytes(data, str(path), limits), data
