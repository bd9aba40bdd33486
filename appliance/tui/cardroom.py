"""The card readers the console watches, and the demo's tray that fills them.

`CardTray` is the port: two readers, which card (if any) is in each, insert/remove for the
demo, and the card in the reader as the credentials layer's `ProvisionableCard` (what the
engine's `Services.cards` needs). Three adapters:

- `DirectTray`: virtual cards in process (vcard's DirectTransport): tests and the fallback
  when pcscd cannot be started;
- `PcscReaders`: the ceremony's real readers through pcscd (pyscard via
  appliance.cards.pcsc); holders insert and remove cards by hand, the console watches;
- `PcscTray`: the demo world's card server inserts cards into vpcd's two readers and the
  appliance reads them through real pcscd exactly as `PcscReaders` does.

Methods are called from worker threads; none touches Textual.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from appliance.ceremony.errors import OperatorCancelled

if TYPE_CHECKING:
    from appliance.sharing.ports import ProvisionableCard

READERS = 2


@dataclass(frozen=True)
class TrayCard:
    """A card the tray can insert: file name, serial, holder seat and name, demo PINs."""

    name: str
    serial: str
    seat: str
    holder: str
    pin: str = ""


class CardTray(Protocol):
    cards: tuple[TrayCard, ...]

    def held(self) -> list[str | None]:
        """Card name in each reader (None: empty)."""
        ...

    def insert(self, card: str, reader: int) -> None: ...

    def remove(self, reader: int) -> None: ...

    def holder_card(self, *, finish_reset: bool = False) -> ProvisionableCard:
        """The card in the first occupied reader; OperatorCancelled when none
        (`finish_reset`: as the engine's CardRoom port says)."""
        ...

    def close(self) -> None: ...


def _holder(transport: Any, finish_reset: bool) -> ProvisionableCard:
    from appliance.sharing.openpgp_card import OpenPgpHolderCard

    return OpenPgpHolderCard.open(transport, finish_reset=finish_reset)


def _none_inserted() -> OperatorCancelled:
    return OperatorCancelled("No card is in the reader.", hint="Insert the holder's card.")


class DirectTray:
    """Two in-process readers over vcard state files in `folder`."""

    def __init__(self, folder: Path, cards: tuple[TrayCard, ...]) -> None:
        self.folder = Path(folder)
        self.cards = cards
        self._slots: list[tuple[str, Any, Any] | None] = [None] * READERS
        self._lock = threading.Lock()

    def held(self) -> list[str | None]:
        with self._lock:
            return [s[0] if s else None for s in self._slots]

    def insert(self, card: str, reader: int) -> None:
        from vcard.card import VirtualCard
        from vcard.direct import DirectTransport

        path = self.folder / f"{card}.json"
        if not path.exists():
            raise OperatorCancelled(f"No virtual card '{card}' in {self.folder}.")
        with self._lock:
            if any(s and s[0] == card for s in self._slots):
                raise OperatorCancelled(f"Card {card} is already in a reader.")
        self.remove(reader)
        vc = VirtualCard.open(path)
        with self._lock:
            self._slots[reader] = (card, vc, DirectTransport(vc))

    def remove(self, reader: int) -> None:
        with self._lock:
            slot, self._slots[reader] = self._slots[reader], None
        if slot is not None:
            _, vc, transport = slot
            transport.remove()
            vc.save()

    def holder_card(self, *, finish_reset: bool = False) -> ProvisionableCard:
        with self._lock:
            slot = next((s for s in self._slots if s), None)
        if slot is None:
            raise _none_inserted()
        return _holder(slot[2], finish_reset)

    def close(self) -> None:
        for reader in range(READERS):
            self.remove(reader)


class PcscReaders:
    """The readers a ceremony uses: every reader pcscd shows whose name starts with one of
    `prefixes` (config [cards] readers; none: all), or exactly `readers`, read through
    pyscard. Holders insert and take out their cards by hand, so the console only watches;
    the first reader holding a card is the one read."""

    cards: tuple[TrayCard, ...] = ()

    def __init__(
        self, readers: tuple[str, ...] | None = None, *, prefixes: tuple[str, ...] = ()
    ) -> None:
        self.readers = readers
        self.prefixes = prefixes
        self._open: Any = None

    def _slots(self) -> list[tuple[str, bool]]:
        from appliance.cards import pcsc
        from appliance.cards.errors import NoReader

        if self.readers is not None:
            names = list(self.readers)
        else:
            names = [
                name
                for name in pcsc.list_readers()
                if not self.prefixes or name.startswith(self.prefixes)
            ]
        if not names:
            allowed = f" named {' or '.join(self.prefixes)}..." if self.prefixes else ""
            raise NoReader(f"no card reader{allowed} is connected")
        return [(slot.reader, slot.present) for slot in pcsc.slot_states(names)]

    def held(self) -> list[str | None]:
        """The reader's name where a card is in it (cards are not known by name here)."""
        return [reader if present else None for reader, present in self._slots()]

    def insert(self, card: str, reader: int) -> None:
        raise OperatorCancelled(
            "These are real card readers.", hint="The holder inserts the card by hand."
        )

    def remove(self, reader: int) -> None:
        raise OperatorCancelled(
            "These are real card readers.", hint="The holder takes the card out by hand."
        )

    def _reader_with_card(self) -> str | None:
        return next((reader for reader, present in self._slots() if present), None)

    def holder_card(self, *, finish_reset: bool = False) -> ProvisionableCard:
        from appliance.cards import pcsc

        reader = self._reader_with_card()
        if reader is None:
            raise _none_inserted()
        self._close_open()
        self._open = pcsc.connect(reader)
        return _holder(self._open, finish_reset)

    def _close_open(self) -> None:
        if self._open is not None:
            with contextlib.suppress(Exception):  # a pulled card has nothing left to close
                self._open.close()
            self._open = None

    def close(self) -> None:
        self._close_open()


class PcscTray(PcscReaders):
    """The demo world's readers: vpcd's two readers in pcscd, filled by the card server."""

    def __init__(self, client: Any, readers: tuple[str, ...], cards: tuple[TrayCard, ...]):
        super().__init__(readers)
        self.client = client
        self.cards = cards

    def held(self) -> list[str | None]:
        listing = self.client.listing()
        held = list(listing.get("readers", []))[:READERS]
        names = [str(h.get("card")) if isinstance(h, dict) else None for h in held]
        return names + [None] * (READERS - len(names))

    def insert(self, card: str, reader: int) -> None:
        from vcard.server import ServerError

        try:
            self.client.insert(card, reader)
        except ServerError as exc:
            raise OperatorCancelled(f"The card tray could not insert {card}: {exc}") from None

    def remove(self, reader: int) -> None:
        self._close_open()
        self.client.remove(reader)

    def _reader_with_card(self) -> str | None:
        readers = self.readers or ()
        index = next((i for i, h in enumerate(self.held()) if h), None)
        return readers[index] if index is not None and index < len(readers) else None
