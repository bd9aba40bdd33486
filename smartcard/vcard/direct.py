"""An in-process transport to a virtual card: real card semantics without pcscd.

It satisfies appliance.cards.transport.Transport, so any layer can test against a real
OpenPGP card state machine in a unit test. `remove()` simulates pulling the card.
"""

from __future__ import annotations

from appliance.cards.errors import CardRemoved
from vcard.card import VirtualCard


class DirectTransport:
    def __init__(self, card: VirtualCard) -> None:
        self.card = card
        self.present = True
        self.card.reset()

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        if not self.present:
            raise CardRemoved("direct")
        response = self.card.process(bytes(apdu))
        return response[:-2], int.from_bytes(response[-2:], "big")

    def remove(self) -> None:
        self.present = False

    def insert(self) -> None:
        self.card.reset()
        self.present = True
