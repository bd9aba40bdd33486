"""Errors the operator can act on.

Every layer raises subclasses of one family below. An error carries the operator's message
(what is wrong), a hint (what to do next) and structured fields for tests and the journal.
The CLI and the TUI map them to one displayable form; they never show a traceback for them.
Messages must never contain secrets (PINs, shares, keys).
"""

from __future__ import annotations

from typing import Any, ClassVar


class ApplianceError(Exception):
    """Base of every expected error."""

    #: Process exit code when this error ends a CLI command.
    exit_code: ClassVar[int] = 1
    #: Short title for dialogs and report lines.
    title: ClassVar[str] = "Error"

    def __init__(self, message: str, *, hint: str = "", **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.fields: dict[str, Any] = dict(fields)

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"

    def operator_text(self) -> str:
        """One paragraph for a person: what is wrong, then what to do."""
        return str(self)


class UsageError(ApplianceError):
    """The command line was wrong."""

    exit_code = 2
    title = "Usage"


class ConfigError(ApplianceError):
    """The configuration file is missing, malformed or names something that does not exist."""

    exit_code = 2
    title = "Configuration"


class InternalError(ApplianceError):
    """A bug: the appliance reached a state it should not."""

    exit_code = 3
    title = "Internal error"


# One family per layer. Layers subclass these in their own errors module.
class EnvironmentCheckError(ApplianceError):
    title = "Appliance check"


class CardsError(ApplianceError):
    title = "Smart card"


class HsmError(ApplianceError):
    title = "HSM"


class SharingError(ApplianceError):
    title = "Credentials"


class DnssecError(ApplianceError):
    title = "DNSSEC"


class CeremonyError(ApplianceError):
    title = "Ceremony"


class OutputsError(ApplianceError):
    title = "Outputs"


class AnalysisError(ApplianceError):
    title = "Analysis"
