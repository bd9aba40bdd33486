"""Loading a KSR or SKR whatever its format: the first bytes decide, the parser is strict."""

from __future__ import annotations

import os
import stat
from pathlib import Path

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
        source, "line 1", "neither a Knot KSR/SKR (';; KeySigningRequest 1.0 ...') nor an IANA "
        "KSR/SKR (<KSR ...>)",
    )


def read_limited(path: Path, limits: InputLimits | None = None) -> bytes:
    """Read at most max_bytes + 1 bytes, so a huge file is refused without loading it."""
    limits = limits or InputLimits()
    try:
        # O_NONBLOCK: opening a FIFO on the media must not wait forever for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise DnssecInputError(str(path), "", f"cannot read: {exc.strerror}",
                               hint="Check the path and the media.") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DnssecInputError(str(path), "", "is not a regular file (a folder, FIFO or device)",
                               hint="Name the KSR or SKR file itself.")
    try:
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(limits.max_bytes + 1)
    except OSError as exc:
        raise DnssecInputError(str(path), "", f"cannot read: {exc.strerror}",
                               hint="Check the path and the media.") from None
    if len(data) > limits.max_bytes:
        raise InputLimitError(
            str(path), "", f"larger than the limit of {limits.max_bytes} bytes",
            hint="Check the file; if it is genuine, raise the max_bytes limit.",
        )
    return data


def load_document(path: Path, limits: InputLimits | None = None) -> tuple[Document, bytes]:
    data = read_limited(path, limits)
    return parse_bytes(data, str(path), limits), data
