"""Virtual cards for headless runs and the demo: insert a named card, talk to it in process.

Each card is a vcard state file `<folder>/<name>.json` (the format the demo world's card
server uses), opened with vcard's DirectTransport and the cards layer's OpenPGP session, so
the credential flows run the real card state machine and its APDUs. The state is saved after
every command, so a card keeps its keys, PIN counters and sealed envelope across processes
(a resumed ceremony sees the card as the interrupted one left it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.ceremony.errors import OperatorCancelled

if TYPE_CHECKING:
    from appliance.sharing.ports import ProvisionableCard


class VirtualCardRoom:
    """One virtual reader: `insert(name)`, `holder_card()`, `remove()`."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._card: Any = None
        self._transport: Any = None
        self._holder: ProvisionableCard | None = None
        self.name: str | None = None

    def insert(self, card: str) -> None:
        from vcard.card import VirtualCard
        from vcard.direct import DirectTransport

        self.remove()
        path = self.folder / f"{card}.json"
        if not path.exists():
            raise OperatorCancelled(
                f"No virtual card '{card}' in {self.folder}.",
                hint="Create the demo world's cards first, or correct the answers file.",
            )
        self._card = VirtualCard.open(path)
        self._transport = DirectTransport(self._card)
        self.name = card

    def holder_card(self, *, finish_reset: bool = False) -> ProvisionableCard:
        from appliance.sharing.openpgp_card import OpenPgpHolderCard

        if self._transport is None:
            raise OperatorCancelled("No card is in the reader.", hint="Insert the card.")
        if self._holder is None:  # opened on first use, as a reader opens a card
            self._holder = OpenPgpHolderCard.open(self._transport, finish_reset=finish_reset)
        return self._holder

    def remove(self) -> None:
        if self._card is not None:
            self._card.save()
            self._transport.remove()
        self._card = self._transport = self._holder = None
        self.name = None
