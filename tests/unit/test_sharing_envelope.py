"""Sealed envelopes and commitments, through the in-memory fake card."""

from __future__ import annotations

import pytest

from appliance.sharing import commitment, envelope, slip39
from appliance.sharing.envelope import Purpose
from appliance.sharing.errors import CardError, CommitmentMismatch, EnvelopeError
from appliance.sharing.fake_card import FakeCard
from appliance.sharing.ports import FACTORY_ADMIN_PIN, FACTORY_USER_PIN


def _card(serial: str = "000500001234") -> FakeCard:
    card = FakeCard(serial)
    card.provision(bytearray(FACTORY_ADMIN_PIN), role="CO", holder="Test Holder", login="CO1")
    return card


def _share() -> bytearray:
    return slip39.split(bytearray(range(32)), 3, 5, identifier=0x0ABC)[2]


def _seal(card: FakeCard, share: bytearray, purpose: Purpose = Purpose.BACKUP_KEY) -> bytes:
    return envelope.seal(
        share, card_public_key=card.ecdh_public_key(), card_serial=card.serial, purpose=purpose
    )


def test_seal_then_open_with_the_card_and_pin() -> None:
    card, share = _card(), _share()
    sealed = _seal(card, share)
    assert len(sealed) == 112 <= envelope.PRIVATE_DO_MIN_CAPACITY
    assert bytes(share) not in sealed
    head = envelope.parse(sealed).header
    assert (head.set_id, head.index, head.threshold, head.purpose, head.card_serial) == (
        0x0ABC,
        2,
        3,
        Purpose.BACKUP_KEY,
        card.serial,
    )
    with pytest.raises(CardError, match="PIN not verified"):
        envelope.open_with_card(card, sealed)
    card.verify_pin(bytearray(FACTORY_USER_PIN))
    assert envelope.open_with_card(card, sealed) == share


def test_every_changed_byte_is_detected() -> None:
    card, share = _card(), _share()
    sealed = _seal(card, share)
    card.verify_pin(bytearray(FACTORY_USER_PIN))
    for pos in range(len(sealed)):
        bad = bytearray(sealed)
        bad[pos] ^= 0x40
        with pytest.raises(EnvelopeError):
            envelope.open_with_card(card, bytes(bad))


def test_envelope_of_another_card_is_refused_by_name() -> None:
    a, b = _card("A1"), _card("B2")
    sealed = _seal(a, _share())
    b.verify_pin(bytearray(FACTORY_USER_PIN))
    with pytest.raises(EnvelopeError, match="sealed for card A1, not for card B2"):
        envelope.open_with_card(b, sealed)


def test_regenerated_card_key_cannot_open_old_envelope() -> None:
    card = _card()
    sealed = _seal(card, _share())
    card.provision(bytearray(FACTORY_ADMIN_PIN), role="CO", holder="Test Holder", login="CO1")
    card.verify_pin(bytearray(FACTORY_USER_PIN))
    with pytest.raises(EnvelopeError, match="does not authenticate"):
        envelope.open_with_card(card, sealed)


def test_commitment_checks_a_share_alone_and_catches_a_substitute() -> None:
    card, share = _card(), _share()
    c = commitment.commit(share)
    assert commitment.matches(share, c)
    # Anyone can seal a *different* share to the card's public key: GCM is happy,
    # the commitment is not.
    forged = slip39.split(bytearray(32), 3, 5, identifier=0x0ABC)[2]
    sealed = _seal(card, forged)
    card.verify_pin(bytearray(FACTORY_USER_PIN))
    opened = envelope.open_with_card(card, sealed)
    with pytest.raises(CommitmentMismatch, match="does not match its commitment"):
        commitment.check(opened, c, where="card 000500001234")
    assert commitment.commit(share) != c  # salted: same share, different commitment


def test_parse_is_strict() -> None:
    card = _card()
    sealed = _seal(card, _share())
    with pytest.raises(EnvelopeError, match="too short"):
        envelope.parse(sealed[:40])
    with pytest.raises(EnvelopeError, match="version 9"):
        envelope.parse(b"\x09" + sealed[1:])
    with pytest.raises(EnvelopeError, match="purpose code 7"):
        envelope.parse(sealed[:1] + b"\x07" + sealed[2:])
