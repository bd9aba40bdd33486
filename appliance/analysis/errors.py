"""Errors of the analysis layer: bad model parameters and malformed inputs (kasp.xml, ...)."""

from __future__ import annotations

from appliance.errors import AnalysisError


class ModelError(AnalysisError):
    """A model parameter is out of range (a probability above 1, k larger than n, ...)."""


class InputFormatError(AnalysisError):
    """An input file (kasp.xml, knot.conf, zone, attendance, structure) is malformed."""
