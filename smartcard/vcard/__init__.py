"""Virtual OpenPGP card v3.4 (the card side of the appliance's smart card path).

    from vcard import VirtualCard, CardState, DirectTransport

`VirtualCard.process(apdu) -> response` is the card; `DirectTransport(card)` plugs it into
an OpenPgpSession in-process; `python -m vcard up --state DIR` brings up pcscd and a card
server so the same cards answer through pyscard -> pcscd -> vpcd.
"""

from vcard.card import VirtualCard
from vcard.direct import DirectTransport
from vcard.state import DEFAULT_PW1, DEFAULT_PW3, CardState

__all__ = ["DEFAULT_PW1", "DEFAULT_PW3", "CardState", "DirectTransport", "VirtualCard"]
