"""A hostile card: the OpenPGP session and the holder-card adapter get malformed answers.

A real virtual card (provisioned to the appliance's profile, with a sealed envelope)
answers every command, but a hostile transport in between rewrites some answers: data
flipped, cut or extended, malformed TLV, wrong lengths, status words out of order (61xx
chains, 63Cx on commands that carry no PIN, 9000 on a refused VERIFY and the reverse),
empty answers, or wholly random ones. The flows the ceremony runs (status, identity, public
keys, PIN counter, VERIFY, PSO:DECIPHER, PSO:CDS, private DOs, envelope opening) may only
raise ApplianceError subclasses; a card that keeps answering 61xx must not hang the host.

Budget: APPLIANCE_FUZZ_EXAMPLES (default 150) per target, derandomised in CI.
"""

from __future__ import annotations

import hashlib
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from appliance.errors import ApplianceError
from tests.unit.test_fuzz_inputs import FUZZ, mutated

#: More transmissions than any single flow needs: a host still talking after this loops.
LOOP_LIMIT = 4000
INTERESTING_SW = [
    0x9000,
    0x6100,
    0x6101,
    0x61FF,
    0x6285,
    0x6300,
    0x63C0,
    0x63C1,
    0x63C3,
    0x63CF,
    0x6581,
    0x6700,
    0x6982,
    0x6983,
    0x6985,
    0x6A80,
    0x6A82,
    0x6A88,
    0x6B00,
    0x6C10,
    0x6D00,
    0x6E00,
    0x6F00,
    0x0000,
    0xFFFF,
]
PIN = b"pin-FUZZ0001"


@cache
def provisioned() -> tuple[str, bytes]:
    """A provisioned card's state (JSON) and the sealed envelope written to it."""
    from vcard.card import VirtualCard
    from vcard.direct import DirectTransport
    from vcard.state import CardState

    from appliance.cards.openpgp import OpenPgpSession
    from appliance.sharing import envelope
    from appliance.sharing.envelope import Purpose
    from appliance.sharing.openpgp_card import OpenPgpHolderCard
    from appliance.sharing.ports import FACTORY_ADMIN_PIN, FACTORY_USER_PIN

    card = VirtualCard(CardState.factory("F0220001"))
    holder = OpenPgpHolderCard(OpenPgpSession(DirectTransport(card)))
    holder.provision(bytearray(FACTORY_ADMIN_PIN), role="CO", holder="Fuzz", login="CO1")
    holder.change_pin(bytearray(FACTORY_USER_PIN), bytearray(PIN))
    holder.verify_pin(bytearray(PIN))
    from appliance.sharing import slip39

    share = slip39.split(bytearray(range(32)), 2, 3)[0]
    sealed = envelope.seal(
        share,
        card_public_key=holder.ecdh_public_key(),
        card_serial=holder.serial,
        purpose=Purpose.BACKUP_KEY,
    )
    holder.write_private_do(sealed)
    return card.state.to_json(), sealed


class Loop(AssertionError):
    pass


class HostileTransport:
    """Passes commands to a real virtual card and lets hypothesis rewrite the answers."""

    def __init__(self, data: st.DataObject) -> None:
        from vcard.card import VirtualCard
        from vcard.state import CardState

        self.card = VirtualCard(CardState.from_json(provisioned()[0]))
        self.card.reset()
        self.data = data
        self.calls = 0

    def transmit(self, apdu: bytes) -> tuple[bytes, int]:
        self.calls += 1
        if self.calls > LOOP_LIMIT:
            raise Loop(f"the host sent {self.calls} APDUs without giving up: it loops")
        honest = self.card.process(bytes(apdu))
        body, sw = honest[:-2], int.from_bytes(honest[-2:], "big")
        if self.calls > 200:  # past the fuzzed prefix the card stays hostile the same way
            return self.last
        how = self.data.draw(
            st.sampled_from(["honest"] * 6 + ["data", "sw", "both", "empty", "random", "more"])
        )
        if how in ("data", "both"):
            body = self.data.draw(mutated(body or b"\x00", 3, lines=False))
        if how in ("sw", "both"):
            sw = self.data.draw(st.sampled_from(INTERESTING_SW) | st.integers(0, 0xFFFF))
        if how == "empty":
            body, sw = b"", self.data.draw(st.sampled_from(INTERESTING_SW))
        if how == "random":
            body = self.data.draw(st.binary(max_size=300))
            sw = self.data.draw(st.integers(0, 0xFFFF))
        if how == "more":  # "more data waiting" (61xx) whatever was asked
            sw = 0x6100 | self.data.draw(st.integers(0, 255))
        self.last = (body, sw)
        return body, sw


def _flow(transport: HostileTransport, which: str) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from appliance.cards.openpgp import OpenPgpSession
    from appliance.sharing import envelope
    from appliance.sharing.openpgp_card import OpenPgpHolderCard

    session = OpenPgpSession(transport)
    holder = OpenPgpHolderCard(session)
    if which == "identity":
        holder.application_version()
        holder.fingerprints()
        session.name()
        session.login_data()
        session.url()
        session.signature_counter()
        holder.pin_tries_left()
    elif which == "keys":
        holder.ecdh_public_key()
        holder.signing_public_key()
    elif which == "open":
        holder.verify_pin(bytearray(PIN))
        envelope.open_with_card(holder, holder.read_private_do())
    elif which == "decipher":
        holder.verify_pin(bytearray(PIN))
        peer = ec.generate_private_key(ec.SECP256R1()).public_key()
        holder.decipher(
            peer.public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )
    elif which == "sign":
        holder.verify_pin(bytearray(PIN), for_signing=True)
        holder.sign(hashlib.sha256(b"attestation").digest())
    elif which == "write":
        holder.verify_pin(bytearray(PIN))
        holder.write_private_do(b"\x01" * 100)
        session.identity()


@FUZZ
@given(st.data())
@pytest.mark.parametrize("which", ["identity", "keys", "open", "decipher", "sign", "write"])
def test_hostile_card_answers_raise_only_card_errors(which: str, data: st.DataObject) -> None:
    transport = HostileTransport(data)
    try:
        _flow(transport, which)
    except ApplianceError as exc:
        assert exc.message
        assert PIN.decode() not in str(exc) and PIN.hex() not in str(exc)


def test_the_honest_card_passes_every_flow() -> None:
    """Sanity for the harness: without rewriting, every flow succeeds."""

    class Honest(HostileTransport):
        def __init__(self) -> None:
            from vcard.card import VirtualCard
            from vcard.state import CardState

            self.card = VirtualCard(CardState.from_json(provisioned()[0]))
            self.card.reset()
            self.calls = 0

        def transmit(self, apdu: bytes) -> tuple[bytes, int]:
            honest = self.card.process(bytes(apdu))
            return honest[:-2], int.from_bytes(honest[-2:], "big")

    for which in ("identity", "keys", "open", "decipher", "sign", "write"):
        _flow(Honest(), which)  # type: ignore[arg-type]


@pytest.mark.parametrize("sw", [0x6100, 0x6101, 0x61FF])
def test_a_card_that_always_has_more_data_does_not_hang_the_host(sw: int) -> None:
    """Found by the fuzzer: GET RESPONSE was repeated for as long as the card said 61xx."""
    from appliance.cards.openpgp import OpenPgpSession

    class Endless:
        calls = 0

        def transmit(self, apdu: bytes) -> tuple[bytes, int]:
            self.calls += 1
            if self.calls > LOOP_LIMIT:
                raise Loop("the host keeps asking for more")
            return b"\x00" * (sw & 0xFF or 256), sw

    transport = Endless()
    with pytest.raises(ApplianceError, match="more data"):
        OpenPgpSession(transport)
    assert transport.calls <= 520
