"""The one module that talks to pyscard (PC/SC). Everything else sees ports."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from appliance.errors import CardsError


class PcscUnavailable(CardsError):
    """pcscd cannot be reached."""


@dataclass(frozen=True)
class ReaderState:
    name: str
    #: The card's ATR as hex when a card is present, else None.
    atr: str | None


def survey() -> list[ReaderState]:
    """Readers pcscd knows and whether a card sits in each."""
    try:
        from smartcard.Exceptions import CardConnectionException, NoCardException
        from smartcard.pcsc.PCSCExceptions import BaseSCardException
        from smartcard.System import readers
    except ImportError as exc:  # pragma: no cover - pyscard is a hard dependency
        raise PcscUnavailable(
            f"pyscard is not installed ({exc}).", hint="Run `make setup`."
        ) from None
    try:
        found = readers()
    except BaseSCardException as exc:
        raise PcscUnavailable(
            f"pcscd is not reachable ({exc}).",
            hint="Start it: `setsid pcscd --foreground &` (as root), or `make demo` "
            "for the demo world.",
        ) from None
    states: list[ReaderState] = []
    for reader in found:
        atr: str | None = None
        conn = reader.createConnection()
        try:
            conn.connect()
            atr = bytes(conn.getATR()).hex()
        except (NoCardException, CardConnectionException):
            atr = None
        finally:
            with contextlib.suppress(CardConnectionException):
                conn.disconnect()
        states.append(ReaderState(str(reader), atr))
    return states
