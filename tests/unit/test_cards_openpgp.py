"""The OpenPGP card session against the virtual card, in-process (DirectTransport)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from vcard import CardState, DirectTransport, VirtualCard

from appliance import signing
from appliance.cards import apdu
from appliance.cards.errors import (
    CardError,
    CardRemoved,
    NotSupported,
    PinBlocked,
    WrongCard,
    WrongPin,
)
from appliance.cards.openpgp import (
    AlgorithmAttributes,
    KeySlot,
    OpenPgpSession,
    Pin,
    openpgp_fingerprint,
)

PW1 = b"123456"
PW3 = b"12345678"


class Recorder:
    """A transport that records every APDU it forwards (to see chaining and 61xx)."""

    def __init__(self, inner: DirectTransport) -> None:
        self.inner = inner
        self.sent: list[bytes] = []
        self.replies: list[int] = []

    def transmit(self, command: bytes) -> tuple[bytes, int]:
        self.sent.append(command)
        data, sw = self.inner.transmit(command)
        self.replies.append(sw)
        return data, sw


def make(serial: str = "0000ABCD", **options: bool) -> tuple[VirtualCard, OpenPgpSession]:
    card = VirtualCard(CardState.factory(serial, **options))
    return card, OpenPgpSession(DirectTransport(card))


def der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_status_reports_serial_version_and_pin_counters() -> None:
    _, s = make("1234ABCD")
    st = s.status()
    assert st.serial == "1234ABCD"
    assert st.version == (3, 4)
    assert st.manufacturer == "unmanaged S/N range"
    assert (st.pins.tries_pw1, st.pins.tries_rc, st.pins.tries_pw3) == (3, 0, 3)
    assert st.capabilities.extended_length and st.capabilities.command_chaining
    assert st.attributes[KeySlot.SIG].describe() == "rsa2048"
    assert st.fingerprints[KeySlot.DEC] == bytes(20)


def test_wrong_pin_reports_tries_left_then_blocks() -> None:
    _, s = make()
    with pytest.raises(WrongPin) as first:
        s.verify(Pin.USER, bytearray(b"000000"))
    assert first.value.tries_left == 2
    assert "2 tries left before the card locks" in str(first.value)
    assert s.tries_left(Pin.USER) == 2  # reading the counter spends nothing
    assert s.tries_left(Pin.USER) == 2
    with pytest.raises(WrongPin) as second:
        s.verify(Pin.SIGN, bytearray(b"000000"))
    assert "1 try left" in str(second.value)
    with pytest.raises(PinBlocked):
        s.verify(Pin.USER, bytearray(b"000000"))
    with pytest.raises(PinBlocked):  # even the right PIN now
        s.verify(Pin.USER, bytearray(PW1))
    assert s.tries_left(Pin.USER) == 0


def test_right_pin_restores_the_counter() -> None:
    _, s = make()
    with pytest.raises(WrongPin):
        s.verify(Pin.ADMIN, bytearray(b"00000000"))
    s.verify(Pin.ADMIN, bytearray(PW3))
    assert s.status().pins.tries_pw3 == 3
    assert s.is_verified(Pin.ADMIN)
    s.reset_verification(Pin.ADMIN)
    assert not s.is_verified(Pin.ADMIN)


def block_pw1(s: OpenPgpSession) -> None:
    for _ in range(3):
        with pytest.raises((WrongPin, PinBlocked)):
            s.verify(Pin.USER, bytearray(b"999999"))


def test_unblock_with_admin_pin() -> None:
    _, s = make()
    block_pw1(s)
    with pytest.raises(CardError) as not_yet:
        s.reset_pin_as_admin(bytearray(b"654321"))
    assert not_yet.value.sw == 0x6982
    s.verify(Pin.ADMIN, bytearray(PW3))
    s.reset_pin_as_admin(bytearray(b"654321"))
    s.verify(Pin.USER, bytearray(b"654321"))
    assert s.status().pins.tries_pw1 == 3


def test_unblock_with_reset_code_and_wrong_code_counts() -> None:
    _, s = make()
    with pytest.raises(PinBlocked):  # no reset code set yet
        s.reset_pin_with_code(bytearray(b"rc-12345"), bytearray(b"654321"))
    s.verify(Pin.ADMIN, bytearray(PW3))
    s.set_reset_code(bytearray(b"rc-12345"))
    assert s.status().pins.tries_rc == 3
    block_pw1(s)
    with pytest.raises(WrongPin) as wrong:
        s.reset_pin_with_code(bytearray(b"rc-00000"), bytearray(b"654321"))
    assert wrong.value.pin == "reset code" and wrong.value.tries_left == 2
    s.reset_pin_with_code(bytearray(b"rc-12345"), bytearray(b"654321"))
    s.verify(Pin.USER, bytearray(b"654321"))
    assert s.status().pins.tries_rc == 3


def test_change_pin_checks_old_and_policy() -> None:
    _, s = make()
    with pytest.raises(WrongPin):
        s.change_pin(Pin.USER, bytearray(b"000000"), bytearray(b"654321"))
    with pytest.raises(CardError) as short:
        s.change_pin(Pin.USER, bytearray(PW1), bytearray(b"12345"))
    assert short.value.sw == 0x6A80
    s.change_pin(Pin.USER, bytearray(PW1), bytearray(b"abcdefgh"))
    with pytest.raises(WrongPin):
        s.verify(Pin.USER, bytearray(PW1))
    s.verify(Pin.USER, bytearray(b"abcdefgh"))
    s.change_pin(Pin.ADMIN, bytearray(PW3), bytearray(b"admin-pin-2"))
    s.verify(Pin.ADMIN, bytearray(b"admin-pin-2"))


def test_data_objects_and_their_access_conditions() -> None:
    _, s = make()
    with pytest.raises(CardError) as denied:
        s.set_name("CO1<<Alice")
    assert denied.value.sw == 0x6982
    s.verify(Pin.ADMIN, bytearray(PW3))
    s.set_name("CO1<<Alice Example")
    s.set_login_data("co1")
    s.set_url("https://example.org/ksk")
    assert (s.name(), s.login_data(), s.url()) == (
        "CO1<<Alice Example",
        "co1",
        "https://example.org/ksk",
    )
    with pytest.raises(CardError):
        s.set_name("x" * 40)
    # 0102/0104 need the admin PIN, 0101/0103 the user PIN.
    s.put_private_do(2, b"two")
    s.put_private_do(4, b"four")
    with pytest.raises(CardError) as need_user:
        s.put_private_do(1, b"one")
    assert need_user.value.sw == 0x6982
    s.verify(Pin.USER, bytearray(PW1))
    s.put_private_do(1, b"one")
    s.put_private_do(3, b"three")
    assert [s.private_do(i) for i in (1, 2, 3, 4)] == [b"one", b"two", b"three", b"four"]
    s.select()  # forgets every PIN
    assert s.private_do(1) == b"one" and s.private_do(2) == b"two"
    for hidden in (3, 4):
        with pytest.raises(CardError) as locked:
            s.private_do(hidden)
        assert locked.value.sw == 0x6982


def test_generate_sign_and_decipher_with_real_keys() -> None:
    _, s = make()
    s.verify(Pin.ADMIN, bytearray(PW3))
    sig_key = s.generate_key(KeySlot.SIG, 1_700_000_000)
    dec_key = s.generate_key(KeySlot.DEC, 1_700_000_001)
    st = s.status()
    assert st.attributes[KeySlot.SIG] == AlgorithmAttributes.p256(KeySlot.SIG)
    assert st.attributes[KeySlot.DEC].describe() == "nistp256"
    assert st.fingerprints[KeySlot.SIG] == openpgp_fingerprint(sig_key, KeySlot.SIG, 1_700_000_000)
    assert st.timestamps[KeySlot.DEC] == 1_700_000_001
    assert st.key_status[KeySlot.SIG] == 1
    assert der(s.public_key(KeySlot.SIG)) == der(sig_key)

    with pytest.raises(CardError) as no_pin:
        s.sign(b"attestation")
    assert no_pin.value.sw == 0x6982
    s.verify(Pin.SIGN, bytearray(PW1))
    signature = s.sign(b"attestation")
    signing.verify(der(sig_key), b"attestation", signature)
    with pytest.raises(CardError):  # PW1 81 is good for one signature by default
        s.sign(b"again")
    assert s.signature_counter() == 1

    s.verify(Pin.USER, bytearray(PW1))
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    assert s.ecdh(ephemeral.public_key()) == ephemeral.exchange(ec.ECDH(), dec_key)


def test_generate_needs_admin_pin_and_public_key_needs_a_key() -> None:
    _, s = make()
    with pytest.raises(CardError) as denied:
        s.generate_key(KeySlot.AUT, 1)
    assert denied.value.sw == 0x6982
    s.verify(Pin.ADMIN, bytearray(PW3))
    s.set_algorithm_p256(KeySlot.AUT)
    with pytest.raises(CardError) as missing:
        s.public_key(KeySlot.AUT)
    assert missing.value.sw == 0x6A88


def test_rsa_attributes_are_not_supported_for_reading_keys() -> None:
    _, s = make()
    with pytest.raises(NotSupported):
        s.public_key(KeySlot.SIG)


def test_long_data_uses_chaining_and_get_response_without_extended_length() -> None:
    card = VirtualCard(CardState.factory("00000001", extended_length=False))
    rec = Recorder(DirectTransport(card))
    s = OpenPgpSession(rec)
    assert not s.status().capabilities.extended_length
    s.verify(Pin.ADMIN, bytearray(PW3))
    blob = bytes(range(256)) * 3
    s.put_private_do(2, blob)
    chained = [c for c in rec.sent if c[0] == 0x10]
    assert len(chained) == 3 and all(c[1] == 0xDA for c in chained)
    rec.sent.clear()
    rec.replies.clear()
    assert s.private_do(2) == blob
    assert [c[1] for c in rec.sent] == [0xCA, 0xC0, 0xC0]
    assert rec.replies[0] >> 8 == 0x61


def test_long_data_uses_extended_length_when_the_card_says_so() -> None:
    card = VirtualCard(CardState.factory("00000002"))
    rec = Recorder(DirectTransport(card))
    s = OpenPgpSession(rec)
    s.verify(Pin.ADMIN, bytearray(PW3))
    blob = b"\x5a" * 1000
    s.put_private_do(4, blob)
    put = [c for c in rec.sent if c[1] == 0xDA][-1]
    assert put[4] == 0 and int.from_bytes(put[5:7], "big") == 1000
    assert s.private_do(4) == blob


def test_factory_reset_needs_admin_pin_or_blocked_admin() -> None:
    _, s = make()
    s.verify(Pin.ADMIN, bytearray(PW3))
    s.set_name("X")
    s.generate_key(KeySlot.SIG, 5)
    s.select()
    with pytest.raises(CardError) as denied:
        s.factory_reset()
    assert denied.value.sw == 0x6982
    s.verify(Pin.ADMIN, bytearray(PW3))
    s.factory_reset()
    st = s.status()
    assert s.name() == "" and st.key_status[KeySlot.SIG] == 0 and st.serial == "0000ABCD"
    # a blocked admin PIN also allows the reset (the only way back for a lost PW3)
    for _ in range(3):
        with pytest.raises((WrongPin, PinBlocked)):
            s.verify(Pin.ADMIN, bytearray(b"wrong-admin"))
    s.factory_reset()
    s.verify(Pin.ADMIN, bytearray(PW3))


def test_terminated_card_answers_6285_until_activated() -> None:
    card, s = make()
    s.verify(Pin.ADMIN, bytearray(PW3))
    _, sw = s.send(0xE6, 0, 0, expect=False)
    assert sw == 0x9000
    with pytest.raises(CardError) as terminated:
        s.select()
    assert terminated.value.sw == 0x6285
    assert card.process(bytes.fromhex("00440000")) == b"\x90\x00"
    OpenPgpSession(DirectTransport(card))


def test_wrong_card_names_both_serials() -> None:
    _, s = make("0000BEEF")
    s.expect("0000beef")
    with pytest.raises(WrongCard) as wrong:
        s.expect("0000CAFE")
    assert (wrong.value.expected, wrong.value.found) == ("0000CAFE", "0000BEEF")
    assert "expected serial 0000CAFE, found 0000BEEF" in str(wrong.value)


def test_identity_is_serial_and_fingerprints() -> None:
    _, a = make("00000A0A")
    _, b = make("00000B0B")
    assert not a.identity().matches(b.identity())
    assert a.identity().matches(a.identity())


def test_removed_card_raises_card_removed() -> None:
    card = VirtualCard(CardState.factory("0000000F"))
    transport = DirectTransport(card)
    s = OpenPgpSession(transport)
    transport.remove()
    with pytest.raises(CardRemoved):
        s.verify(Pin.USER, bytearray(b"000000"))
    assert card.state.tries_pw1 == 3


def test_state_persists_in_its_file_and_survives_reload(tmp_path: Path) -> None:
    path = tmp_path / "co1.json"
    card = VirtualCard.open(path, serial="0000C001")
    s = OpenPgpSession(DirectTransport(card))
    s.verify(Pin.ADMIN, bytearray(PW3))
    key = s.generate_key(KeySlot.SIG, 7)
    with pytest.raises(WrongPin):
        s.verify(Pin.USER, bytearray(b"000000"))
    again = OpenPgpSession(DirectTransport(VirtualCard.open(path)))
    assert again.serial == "0000C001"
    assert again.status().pins.tries_pw1 == 2
    assert der(again.public_key(KeySlot.SIG)) == der(key)


def test_trace_redacts_pins() -> None:
    verify = apdu.encode(0, 0x20, 0, 0x82, b"123456")
    assert "313233343536" not in apdu.describe(verify)
    change = apdu.encode(0, 0x24, 0, 0x81, b"123456654321")
    assert "3132" not in apdu.describe(change)
    reset_code = apdu.encode(0, 0xDA, 0, 0xD3, b"rc-12345")
    assert b"rc-12345".hex() not in apdu.describe(reset_code)
    assert apdu.describe(apdu.encode(0, 0xCA, 0, 0x6E, ne=256)) == "00ca006e00"


def test_apdu_encoding_forms() -> None:
    assert apdu.encode(0, 0xCA, 0, 0x6E, ne=256) == bytes.fromhex("00CA006E00")
    assert apdu.encode(0, 0xCA, 0, 0x6E, ne=65536, extended=True) == bytes.fromhex("00CA006E000000")
    assert apdu.encode(0, 0xDA, 1, 1, b"ab", 0, extended=True) == bytes.fromhex(
        "00DA0101000002" + b"ab".hex()
    )
    with pytest.raises(ValueError):
        apdu.encode(0, 0xDA, 1, 1, bytes(300))


def test_card_rejects_malformed_apdus() -> None:
    card = VirtualCard(CardState.factory("00000003"))
    assert card.process(b"\x00\xca") == b"\x67\x00"
    assert card.process(bytes.fromhex("80CA006E00")) == b"\x6e\x00"
    assert card.process(bytes.fromhex("00FE000000")) == b"\x6d\x00"
    assert card.process(bytes.fromhex("00CA006E0300")) == b"\x67\x00"
