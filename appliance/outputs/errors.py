"""Errors of the outputs layer: bundles, QR frames, sheets, printing, decoding."""

from __future__ import annotations

from appliance.errors import OutputsError


class BundleError(OutputsError):
    """A bundle could not be built, written or verified."""

    title = "Bundle"


class FrameError(OutputsError):
    """A QR frame's text is not one of ours or is damaged."""

    title = "QR frame"


class SheetError(OutputsError):
    """The printable sheet could not be laid out."""

    title = "Sheet"


class PrintError(OutputsError):
    """CUPS refused or lost the job."""

    title = "Printing"


class DecodeError(OutputsError):
    """Scans could not be turned back into verified artifacts."""

    title = "Decode"
