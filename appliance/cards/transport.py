"""The transport port: the one thing a card session needs from the world.

A transport sends one command APDU and returns the response data and the status word.
The pyscard adapter (appliance.cards.pcsc.PcscTransport) and the in-process virtual card
(vcard.DirectTransport) both satisfy it, so a fake for a test is a few lines.
"""

from __future__ import annotations

from typing import Protocol


class Transport(Protocol):
    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        """Send one command APDU; return (response data, SW1SW2 as an int).

        Raises appliance.cards.errors.CardRemoved when the card left the reader.
        """
        ...
