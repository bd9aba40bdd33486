"""Session tests against a physical OpenPGP card: `pytest --card-serial=XXXXXXXX`.

Never in CI and never without the option (they are skipped, not passed, otherwise). They
use whatever pcscd already runs and find the card by serial in any reader. Read-only by
default; with APPLIANCE_CARD_PIN set (the card's user PIN) they also sign and decipher,
spending no retries unless the PIN is wrong (the counter is checked first). Nothing here
writes to the card or resets it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance import signing
from appliance.cards import pcsc
from appliance.cards.errors import WrongCard
from appliance.cards.openpgp import KeySlot, OpenPgpSession, Pin

pytestmark = pytest.mark.card


@pytest.fixture
def serial(request: pytest.FixtureRequest) -> str:
    value = request.config.getoption("--card-serial")
    if not value:
        pytest.skip("physical card tests run only with --card-serial=XXXXXXXX")
    if os.environ.get("CI") == "true":
        pytest.skip("physical card tests never run in CI")
    return str(value).upper()


@pytest.fixture
def session(serial: str) -> Iterator[OpenPgpSession]:
    with pcsc.find_card(serial) as (_reader, transport):
        yield OpenPgpSession(transport)


def user_pin() -> bytearray:
    pin = os.environ.get("APPLIANCE_CARD_PIN")
    if not pin:
        pytest.skip("set APPLIANCE_CARD_PIN to run the PIN-using tests on the physical card")
    return bytearray(pin.encode())


def test_card_found_by_serial_reports_its_status(session: OpenPgpSession, serial: str) -> None:
    status = session.status()
    assert status.serial == serial
    assert status.version >= (2, 0)
    assert status.manufacturer
    assert 0 <= status.pins.tries_pw1 <= 15 and 0 <= status.pins.tries_pw3 <= 15
    for slot in KeySlot:
        assert len(status.fingerprints[slot]) == 20


def test_reading_the_retry_counter_spends_nothing(session: OpenPgpSession) -> None:
    before = session.status().pins.tries_pw1
    assert session.tries_left(Pin.USER) == before
    assert session.tries_left(Pin.USER) == before
    assert session.status().pins.tries_pw1 == before


def test_data_objects_read(session: OpenPgpSession) -> None:
    session.name()
    session.login_data()
    session.url()
    session.private_do(1)
    session.private_do(2)
    assert session.signature_counter() >= 0


def test_a_wrong_serial_is_refused(session: OpenPgpSession, serial: str) -> None:
    other = "00000000" if serial != "00000000" else "00000001"
    with pytest.raises(WrongCard):
        session.expect(other)


def test_sign_and_decipher_with_the_card_keys(session: OpenPgpSession) -> None:
    status = session.status()
    if not (status.attributes[KeySlot.SIG].is_p256 and status.attributes[KeySlot.DEC].is_p256):
        pytest.skip("the card's keys are not NIST P-256 (provision it first)")
    pin = user_pin()
    if session.tries_left(Pin.USER) < 3:
        pytest.skip("the user PIN retry counter is below 3; not risking a try")
    try:
        session.verify(Pin.SIGN, pin)
        signature = session.sign(b"physical card test")
        public = session.public_key(KeySlot.SIG).public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        signing.verify(public, b"physical card test", signature)
        session.verify(Pin.USER, pin)
        ephemeral = ec.generate_private_key(ec.SECP256R1())
        secret = session.ecdh(ephemeral.public_key())
        assert secret == ephemeral.exchange(ec.ECDH(), session.public_key(KeySlot.DEC))
    finally:
        pin[:] = bytes(len(pin))
