"""The one module that talks to pyscard (PC/SC). Everything else sees ports.

- `survey()`, `list_readers()`, `slot_states()`: what pcscd sees (the doctor uses survey).
- `connect(reader)` -> PcscTransport (the Transport port over a shared PC/SC handle).
- `find_card(serial)`: a card is found by its serial, never by the reader it sits in.
- `wait_slot()`: block until a reader is empty/present with a changed event counter.
- `ReaderMonitor`: reader and card insert/remove events on a thread the caller owns
  (context manager; stop() joins it). No globals: each object has its own PC/SC context.

APDUs are traced on the `appliance.cards.apdu` logger at DEBUG level; PIN-carrying commands
(VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER, PUT DATA D3) are redacted and response
data is never logged (only its length), because it may be a shared secret or a private DO.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from appliance.cards import apdu
from appliance.cards.errors import CardRemoved, NoReader, WrongCard
from appliance.errors import CardsError

TRACE = logging.getLogger("appliance.cards.apdu")
log = logging.getLogger(__name__)

_REMOVED = {0x80100069, 0x8010000C, 0x80100016, 0x80100017, 0x80100067, 0x80100066}
_RESET = 0x80100068
_NO_SERVICE = {0x8010001D, 0x8010001E}
_PNP = "\\\\?PnP?\\Notification"


class PcscUnavailable(CardsError):
    """pcscd cannot be reached."""


@dataclass(frozen=True)
class ReaderState:
    name: str
    #: The card's ATR as hex when a card is present, else None.
    atr: str | None


@dataclass(frozen=True)
class SlotState:
    reader: str
    present: bool
    #: pcsc-lite's per-reader event counter (upper 16 bits of the event state).
    counter: int
    atr: bytes


@dataclass(frozen=True)
class ReaderEvent:
    kind: Literal["card-inserted", "card-removed", "reader-added", "reader-removed"]
    reader: str
    atr: bytes = b""


def _scard() -> Any:
    try:
        import smartcard.scard as scard
    except ImportError as exc:  # pragma: no cover - pyscard is a hard dependency
        raise PcscUnavailable(
            f"pyscard is not installed ({exc}).", hint="Run `make setup`."
        ) from None
    return scard


def _code(hresult: int) -> int:
    return int(hresult) & 0xFFFFFFFF


def _unavailable(hresult: int) -> PcscUnavailable:
    text = _scard().SCardGetErrorMessage(hresult)
    return PcscUnavailable(
        f"pcscd is not reachable ({text.strip()}, {_code(hresult):08X}).",
        hint="Start it: `python -m vcard up` for the virtual readers, or "
        "`setsid pcscd --foreground &` as root for real readers.",
    )


class _Context:
    """One PC/SC context (released on close)."""

    def __init__(self) -> None:
        self.scard = _scard()
        hresult, self.handle = self.scard.SCardEstablishContext(self.scard.SCARD_SCOPE_USER)
        if hresult != 0:
            raise _unavailable(hresult)

    def readers(self) -> list[str]:
        hresult, names = self.scard.SCardListReaders(self.handle, [])
        code = _code(hresult)
        if code == 0x8010002E:  # no readers
            return []
        if code != 0:
            raise _unavailable(hresult)
        return [str(n) for n in names]

    def states(
        self, readers: list[str], known: dict[str, int] | None = None, timeout_ms: int = 0
    ) -> list[tuple[str, int, bytes]] | None:
        """SCardGetStatusChange; None on timeout."""
        query = [(r, (known or {}).get(r, 0)) for r in readers]
        hresult, found = self.scard.SCardGetStatusChange(self.handle, timeout_ms, query)
        code = _code(hresult)
        if code in (0x8010000A, 0x80100002):  # timeout, cancelled
            return None
        if code != 0:
            raise _unavailable(hresult)
        return [(str(r), int(s), bytes(a)) for r, s, a in found]

    def cancel(self) -> None:
        self.scard.SCardCancel(self.handle)

    def close(self) -> None:
        self.scard.SCardReleaseContext(self.handle)


def _slot(reader: str, state: int, atr: bytes, scard: Any) -> SlotState:
    present = bool(state & scard.SCARD_STATE_PRESENT)
    return SlotState(reader, present, (state >> 16) & 0xFFFF, atr if present else b"")


def list_readers() -> list[str]:
    ctx = _Context()
    try:
        return ctx.readers()
    finally:
        ctx.close()


def slot_states(readers: list[str] | None = None) -> list[SlotState]:
    """Current state of each reader (present or empty, event counter, ATR)."""
    ctx = _Context()
    try:
        names = ctx.readers() if readers is None else readers
        found = ctx.states(names) or []
        return [_slot(r, s, a, ctx.scard) for r, s, a in found]
    finally:
        ctx.close()


def wait_slot(
    reader: str, *, present: bool, not_counter: int | None = None, timeout: float = 5.0
) -> SlotState:
    """Wait until pcscd reports `reader` present/empty, with an event counter other than
    `not_counter` (so a quick remove+insert is not mistaken for no change)."""
    ctx = _Context()
    deadline = time.monotonic() + timeout
    try:
        known = 0
        while True:
            found = ctx.states([reader], {reader: known}, timeout_ms=100)
            if found:
                name, state, atr = found[0]
                if state & ctx.scard.SCARD_STATE_UNKNOWN:
                    raise NoReader(f"reader '{reader}' is not known to pcscd")
                slot = _slot(name, state, atr, ctx.scard)
                if slot.present == present and slot.counter != not_counter:
                    return slot
                known = state & ~ctx.scard.SCARD_STATE_CHANGED
            if time.monotonic() > deadline:
                want = "a card" if present else "no card"
                raise NoReader(f"reader '{reader}' did not report {want} within {timeout:.0f} s")
    finally:
        ctx.close()


def survey() -> list[ReaderState]:
    """Readers pcscd knows and whether a card sits in each."""
    return [ReaderState(s.reader, s.atr.hex() if s.present else None) for s in slot_states()]


class PcscTransport:
    """The Transport port over one shared PC/SC card handle."""

    def __init__(self, reader: str) -> None:
        self.reader = reader
        self._ctx = _Context()
        scard = self._ctx.scard
        hresult, self._card, self._protocol = scard.SCardConnect(
            self._ctx.handle,
            reader,
            scard.SCARD_SHARE_SHARED,
            scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
        )
        code = _code(hresult)
        if code != 0:
            self._ctx.close()
            if code in (0x8010000C, 0x80100069, 0x80100067, 0x80100066):
                raise NoReader(f"no card in reader '{reader}'")
            if code == 0x80100009:
                raise NoReader(f"reader '{reader}' is not known to pcscd")
            if code == 0x8010000B:
                raise CardsError(
                    f"The card in '{reader}' is held exclusively by another program",
                    hint="Stop gpg's scdaemon (`gpgconf --kill scdaemon`) or set "
                    "`pcsc-shared` in scdaemon.conf.",
                )
            raise _unavailable(hresult)
        self._open = True

    def transmit(self, command: bytes) -> tuple[bytes, int]:
        if not self._open:
            raise CardRemoved(self.reader)
        TRACE.debug("%s > %s", self.reader, apdu.describe(command))
        hresult, response = self._ctx.scard.SCardTransmit(self._card, self._protocol, list(command))
        code = _code(hresult)
        if code in _REMOVED or (code == 0 and len(response) < 2):
            # pcscd answers an APDU cut by removal with success and no data
            TRACE.debug("%s < card removed (%08X)", self.reader, code)
            raise CardRemoved(self.reader)
        if code == _RESET:
            scard = self._ctx.scard
            scard.SCardReconnect(
                self._card,
                scard.SCARD_SHARE_SHARED,
                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
                scard.SCARD_LEAVE_CARD,
            )
            raise CardsError(
                f"The card in '{self.reader}' was reset by another program",
                hint="Close other card programs (gpg: `gpgconf --kill scdaemon`) and repeat "
                "the step; PINs must be entered again.",
                reader=self.reader,
            )
        if code != 0:
            raise _unavailable(hresult)
        data = bytes(response[:-2])
        sw = (response[-2] << 8) | response[-1]
        TRACE.debug("%s < %d bytes, SW %04X", self.reader, len(data), sw)
        return data, sw

    def close(self, *, reset: bool = False) -> None:
        """Disconnect and release the context (idempotent). `reset=True` resets the card so
        no verified PIN outlives the step."""
        if not self._open:
            return
        self._open = False
        scard = self._ctx.scard
        how = scard.SCARD_RESET_CARD if reset else scard.SCARD_LEAVE_CARD
        with contextlib.suppress(Exception):
            scard.SCardDisconnect(self._card, how)
        self._ctx.close()

    def __enter__(self) -> PcscTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(reader: str) -> PcscTransport:
    return PcscTransport(reader)


@contextlib.contextmanager
def find_card(serial: str, readers: list[str] | None = None) -> Iterator[tuple[str, PcscTransport]]:
    """Open the card with `serial` wherever it sits. Raises WrongCard when other cards are
    present, NoReader when no card at all."""
    from appliance.cards.openpgp import OpenPgpSession

    found: list[str] = []
    for slot in slot_states(readers):
        if not slot.present:
            continue
        transport = PcscTransport(slot.reader)
        try:
            card_serial = OpenPgpSession(transport).serial
        except CardsError:
            transport.close()
            continue
        if card_serial == serial.upper():
            try:
                yield slot.reader, transport
            finally:
                transport.close()
            return
        transport.close()
        found.append(card_serial)
    if found:
        raise WrongCard(serial.upper(), ", ".join(found))
    raise NoReader("no OpenPGP card is inserted")


class ReaderMonitor:
    """Reader and card events on a thread whose lifetime the caller owns.

        with ReaderMonitor(on_event) as monitor: ...   # stop() joins the thread

    `on_event` runs on the monitor thread; post to your own loop from there.
    """

    def __init__(self, on_event: Callable[[ReaderEvent], None], poll_ms: int = 250) -> None:
        self._on_event = on_event
        self._poll_ms = poll_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ctx: _Context | None = None
        self.error: CardsError | None = None

    def start(self) -> ReaderMonitor:
        if self._thread is not None:
            return self
        self._ctx = _Context()
        self._thread = threading.Thread(target=self._run, name="reader-monitor", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._ctx is not None:
            with contextlib.suppress(Exception):
                self._ctx.cancel()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._ctx is not None:
            self._ctx.close()
            self._ctx = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> ReaderMonitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        ctx = self._ctx
        assert ctx is not None  # noqa: S101 - start() sets it
        scard = ctx.scard
        known: dict[str, int] = {}
        present: dict[str, tuple[bool, int]] = {}
        try:
            while not self._stop.is_set():
                readers = ctx.readers()
                for gone in set(present) - set(readers):
                    was_present, _ = present.pop(gone)
                    known.pop(gone, None)
                    if was_present:
                        self._on_event(ReaderEvent("card-removed", gone))
                    self._on_event(ReaderEvent("reader-removed", gone))
                found = ctx.states([*readers, _PNP], known, timeout_ms=self._poll_ms)
                if found is None:
                    continue
                for name, state, atr in found:
                    known[name] = state & ~scard.SCARD_STATE_CHANGED
                    if name == _PNP or state & scard.SCARD_STATE_UNKNOWN:
                        continue
                    slot = _slot(name, state, atr, scard)
                    if name not in present:
                        self._on_event(ReaderEvent("reader-added", name))
                        present[name] = (False, -1)
                    was_present, counter = present[name]
                    if was_present and (not slot.present or slot.counter != counter):
                        self._on_event(ReaderEvent("card-removed", name))
                        was_present = False
                    if slot.present and not was_present:
                        self._on_event(ReaderEvent("card-inserted", name, slot.atr))
                    present[name] = (slot.present, slot.counter)
        except CardsError as exc:
            self.error = exc
            log.warning("reader monitor stopped: %s", exc.message)
