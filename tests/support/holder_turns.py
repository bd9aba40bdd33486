"""Holders present their cards one after another through the real pcscd, as in a room.

`RoomCard` is a holder's card as the credential flows see it (the `ProvisionableCard`
port). It answers only during its holder's turn: `Turns.begin(card)` inserts the card into
one of vpcd's two readers through the card server, finds it by serial with
`appliance.cards.pcsc.find_card` and opens an `OpenPgpSession` over that PcscTransport;
`Turns.end()` closes the session, removes the card and checks that pcscd sees the slot
empty. Outside a turn every call raises the port's `CardRemoved`, so a flow that touched a
card out of its turn fails loudly. Each card counts the VERIFYs it was asked for, so a test
can show that a refusal came before any PIN.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from appliance.sharing.errors import CardRemoved
from appliance.sharing.ports import ForwardingCard

if TYPE_CHECKING:
    from appliance.cards.pcsc import PcscTransport
    from appliance.sharing.openpgp_card import OpenPgpHolderCard
    from tests.support.pcsc import CardRoom


@dataclass
class RoomCard(ForwardingCard):
    """A virtual card known to the card server by `name`, usable during its turn."""

    name: str
    card_serial: str
    verify_calls: int = 0
    live: OpenPgpHolderCard | None = None

    def _card(self) -> OpenPgpHolderCard:
        if self.live is None:
            raise CardRemoved(serial=self.card_serial)
        return self.live

    @property
    def serial(self) -> str:
        return self.card_serial

    def verify_pin(self, pin: bytearray, *, for_signing: bool = False) -> None:
        self.verify_calls += 1
        super().verify_pin(pin, for_signing=for_signing)


@dataclass
class _Turn:
    card: RoomCard
    reader: int
    transport: PcscTransport
    found: contextlib.AbstractContextManager[tuple[str, PcscTransport]]


@dataclass
class Turns:
    """One card in the readers at a time; readers 0 and 1 alternate."""

    room: CardRoom
    current: _Turn | None = None
    next_reader: int = 0
    #: (serial, reader index) of every turn, in order.
    log: list[tuple[str, int]] = field(default_factory=list)

    def new_card(self, label: str) -> RoomCard:
        made = self.room.new_card(label)
        return RoomCard(made.name, made.serial)

    def begin(self, card: RoomCard, *, enrolment: bool = False) -> RoomCard:
        """End the previous holder's turn, then put `card` in a reader and open it."""
        from appliance.cards.openpgp import OpenPgpSession
        from appliance.cards.pcsc import find_card
        from appliance.sharing.openpgp_card import OpenPgpHolderCard

        self.end()
        reader = self.next_reader
        self.next_reader ^= 1
        self.room.insert(card.name, reader)
        found = find_card(card.serial)
        try:
            name, transport = found.__enter__()
            if name != self.room.reader(reader):
                raise AssertionError(f"card {card.serial} found in {name}, not reader {reader}")
            card.live = OpenPgpHolderCard(OpenPgpSession(transport, finish_reset=enrolment))
        except BaseException:
            with contextlib.suppress(Exception):
                found.__exit__(None, None, None)
            self.room.remove(reader)
            raise
        self.current = _Turn(card, reader, transport, found)
        self.log.append((card.serial, reader))
        return card

    def end(self) -> None:
        """Close the session, take the card out, and see pcscd report the slot empty."""
        from appliance.cards.pcsc import slot_states

        turn, self.current = self.current, None
        if turn is None:
            return
        turn.card.live = None
        try:
            turn.found.__exit__(None, None, None)  # closes the transport
        finally:
            self.room.remove(turn.reader)  # returns once pcscd saw the change
        [slot] = slot_states([self.room.reader(turn.reader)])
        if slot.present:
            raise AssertionError(f"pcscd still sees a card in reader {turn.reader}")

    @contextlib.contextmanager
    def turn(self, card: RoomCard) -> Iterator[RoomCard]:
        self.begin(card)
        try:
            yield card
        finally:
            self.end()
