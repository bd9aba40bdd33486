"""The virtual card's pieces that need no pcscd: vpcd framing, provisioning, codecs."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from vcard import CardState, DirectTransport, VirtualCard
from vcard.vpcd import VpcdLink

from appliance.cards import tlv
from appliance.cards.errors import CardError, WrongPin
from appliance.cards.openpgp import KeySlot, OpenPgpSession, Pin, _historical_caps
from appliance.cards.provision import cardholder_name, parse_cardholder_name, provision


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(2, "big") + payload


def read_frame(conn: socket.socket) -> bytes:
    head = conn.recv(2, socket.MSG_WAITALL)
    return conn.recv(int.from_bytes(head, "big"), socket.MSG_WAITALL)


def test_vpcd_link_speaks_the_framing_and_control_codes() -> None:
    """A stand-in for vpcd's reader end: ATR on control 4, APDUs answered, close = removed."""
    card = VirtualCard(CardState.factory("0000F00D"))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        link = VpcdLink(card, 0, port=port)
        conn, _ = listener.accept()
        with conn:
            conn.sendall(frame(b"\x01"))  # power on: no answer
            conn.sendall(frame(b"\x04"))
            assert read_frame(conn) == card.atr
            # length and payload in two segments, as vpcd writes them
            select = bytes.fromhex("00A4040006D27600012401")
            conn.sendall(len(select).to_bytes(2, "big"))
            conn.sendall(select)
            assert read_frame(conn) == b"\x90\x00"
            conn.sendall(frame(bytes.fromhex("00CA004F00")))
            assert read_frame(conn)[10:14] == bytes.fromhex("0000F00D")
            link.remove()
            assert conn.recv(1) == b""  # the reader sees the card go
    assert not link.alive


def test_atr_announces_chaining_and_extended_length() -> None:
    card = VirtualCard(CardState.factory("00000001"))
    atr = card.atr
    assert atr[0] == 0x3B and atr[1] & 0x0F == len(card.historical_bytes)
    check = 0
    for b in atr[1:]:
        check ^= b
    assert check == 0  # TCK
    assert _historical_caps(card.historical_bytes) == (True, True)
    short = VirtualCard(CardState.factory("00000002", extended_length=False))
    assert _historical_caps(short.historical_bytes) == (True, False)


def test_cardholder_name_codec() -> None:
    assert cardholder_name("CO1", "Alice Example") == "CO1<<Alice<Example"
    assert parse_cardholder_name("CO1<<Alice<Example") == ("CO1", "Alice Example")
    assert parse_cardholder_name("Example<Alice") == ("", "Example Alice")
    with pytest.raises(CardError):
        cardholder_name("CO1", "Alice <script>")
    with pytest.raises(CardError) as too_long:
        cardholder_name("RKSH7", "A" * 40)
    assert "holds 39" in too_long.value.message


def test_provision_writes_profile_and_keys(tmp_path: Path) -> None:
    card = VirtualCard.open(tmp_path / "c.json", serial="0000C0DE")
    s = OpenPgpSession(DirectTransport(card))
    made = provision(
        s, bytearray(b"12345678"), role="RKSH3", role_id="rksh3", holder="Bo Li", timestamp=9
    )
    assert made.serial == "0000C0DE" and made.login == "rksh3"
    assert s.name() == "RKSH3<<Bo<Li" and s.login_data() == "rksh3"
    st = s.status()
    assert all(st.attributes[k].is_p256 for k in KeySlot)
    assert all(any(made.fingerprints[k]) for k in KeySlot)
    assert len({made.public_keys[k] for k in KeySlot}) == 3
    with pytest.raises(WrongPin):
        provision(s, bytearray(b"wrong-pin"), role="X", role_id="x", holder="Y", timestamp=1)


def test_tlv_is_strict() -> None:
    assert tlv.parse(tlv.encode(0x5F50, b"u") + tlv.encode(0xC4, bytes(7))) == [
        (0x5F50, b"u"),
        (0xC4, bytes(7)),
    ]
    assert tlv.encode(0x73, bytes(200))[:3] == b"\x73\x81\xc8"
    for bad in (b"\x5f", b"\xc4\x05ab", b"\xc4\x83\x00\x00\x01", b"\xc4"):
        with pytest.raises(tlv.TlvError):
            tlv.parse(bad)


def test_pin_error_text_and_fields() -> None:
    s = OpenPgpSession(DirectTransport(VirtualCard(CardState.factory("00000003"))))
    with pytest.raises(WrongPin) as wrong:
        s.verify(Pin.ADMIN, bytearray(b"00000000"))
    assert wrong.value.fields == {"tries_left": 2, "pin": "admin PIN"}
    assert wrong.value.message == "Admin PIN wrong: 2 tries left before the card locks"
    assert "00000000" not in str(wrong.value)


def test_harness_says_how_to_install_a_missing_pcscd(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from vcard import harness

    monkeypatch.setattr(harness, "vpcd_readers", lambda: [])
    monkeypatch.setattr(harness.shutil, "which", lambda *a, **k: None)
    with pytest.raises(harness.HarnessError) as missing:
        harness.start_pcscd(tmp_path)
    assert missing.value.message == "pcscd is not installed"
    assert "apt-get install pcscd vsmartcard-vpcd" in missing.value.hint


def test_harness_stops_only_its_own_pcscd(tmp_path: Path) -> None:
    import os

    from vcard import harness

    (tmp_path / "pcscd.pid").write_text(f"{os.getpid()}\n")  # not a pcscd: left alone
    assert harness.stop_pcscd(tmp_path) is True
    assert not (tmp_path / "pcscd.pid").exists()
    assert harness.stop_pcscd(tmp_path) is False  # nothing recorded: nothing to stop


def test_two_holders_of_one_card_file_share_its_memory(tmp_path: Path) -> None:
    """The card server and an in-process DirectTransport may open the same card file."""
    path = tmp_path / "shared.json"
    a = VirtualCard.open(path, serial="0000AAAA")
    b = VirtualCard.open(path)
    sa = OpenPgpSession(DirectTransport(a))
    sb = OpenPgpSession(DirectTransport(b))
    with pytest.raises(WrongPin):
        sa.verify(Pin.USER, bytearray(b"000000"))
    assert sb.tries_left(Pin.USER) == 2
    b.save()  # an idle holder's flush never overwrites newer memory
    with pytest.raises(WrongPin) as again:
        sa.verify(Pin.USER, bytearray(b"000000"))
    assert again.value.tries_left == 1
    assert CardState.load(path).tries_pw1 == 1
