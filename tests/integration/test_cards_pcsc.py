"""Every card command through pyscard -> pcscd -> vpcd -> virtual card (vcard)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance import signing
from appliance.cards import pcsc
from appliance.cards.errors import CardError, CardRemoved, NoReader, PinBlocked, WrongCard, WrongPin
from appliance.cards.openpgp import KeySlot, OpenPgpSession, Pin
from appliance.errors import CardsError
from tests.support.pcsc import CardRoom

PW1 = b"123456"
PW3 = b"12345678"
ROOT = Path(__file__).resolve().parents[2]


def der(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def state(room: CardRoom, name: str) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(room.state_file(name).read_text())
    return loaded


def test_status_data_objects_and_private_dos(card_room: CardRoom) -> None:
    card = card_room.new_card("do")
    assert card_room.insert(card.name, 0) == card.serial
    s = card_room.session(0)
    st = s.status()
    assert st.serial == card.serial and st.version_text == "3.4"
    assert st.pins.tries_pw1 == 3 and st.pins.tries_pw3 == 3
    s.verify(Pin.ADMIN, bytearray(PW3))
    s.set_name("CO1<<Alice Example")
    s.set_login_data("co1")
    s.set_url("https://example.org/ksk")
    s.put_private_do(2, b"reserved")
    s.verify(Pin.USER, bytearray(PW1))
    envelope = bytes(range(256)) * 2 + b"tail"  # longer than one short APDU
    s.put_private_do(1, envelope)
    s.put_private_do(3, b"user-only")
    s.select()
    assert (s.name(), s.login_data(), s.url()) == (
        "CO1<<Alice Example",
        "co1",
        "https://example.org/ksk",
    )
    assert s.private_do(1) == envelope and s.private_do(2) == b"reserved"
    with pytest.raises(CardError) as locked:
        s.private_do(3)
    assert locked.value.sw == 0x6982


def test_short_apdus_use_chaining_and_get_response(card_room: CardRoom) -> None:
    card = card_room.new_card("short")
    path = card_room.state_file(card.name)
    saved = json.loads(path.read_text())
    saved["extended_length"] = False
    path.write_text(json.dumps(saved))
    card_room.insert(card.name, 1)
    s = card_room.session(1)
    assert not s.status().capabilities.extended_length
    s.verify(Pin.ADMIN, bytearray(PW3))
    blob = bytes(range(256)) * 3
    s.put_private_do(4, blob)
    assert s.private_do(4) == blob


def test_wrong_pin_tries_block_and_unblock_with_admin_pin(card_room: CardRoom) -> None:
    card = card_room.new_card("pin")
    card_room.insert(card.name, 0)
    s = card_room.session(0)
    with pytest.raises(WrongPin) as first:
        s.verify(Pin.USER, bytearray(b"000000"))
    assert first.value.tries_left == 2
    assert "2 tries left before the card locks" in first.value.message
    assert s.tries_left(Pin.USER) == 2  # an empty VERIFY spends nothing
    with pytest.raises(WrongPin) as second:
        s.verify(Pin.USER, bytearray(b"000000"))
    assert second.value.tries_left == 1
    with pytest.raises(PinBlocked):
        s.verify(Pin.USER, bytearray(b"000000"))
    with pytest.raises(PinBlocked):
        s.verify(Pin.USER, bytearray(PW1))
    assert state(card_room, card.name)["tries_pw1"] == 0
    s.verify(Pin.ADMIN, bytearray(PW3))
    s.reset_pin_as_admin(bytearray(b"246810"))
    s.verify(Pin.USER, bytearray(b"246810"))
    assert s.status().pins.tries_pw1 == 3


def test_unblock_with_reset_code_and_change_pins(card_room: CardRoom) -> None:
    card = card_room.new_card("rc")
    card_room.insert(card.name, 0)
    s = card_room.session(0)
    s.verify(Pin.ADMIN, bytearray(PW3))
    s.set_reset_code(bytearray(b"reset-code-1"))
    for _ in range(3):
        with pytest.raises((WrongPin, PinBlocked)):
            s.verify(Pin.SIGN, bytearray(b"999999"))
    with pytest.raises(WrongPin) as wrong_code:
        s.reset_pin_with_code(bytearray(b"reset-code-0"), bytearray(b"135790"))
    assert wrong_code.value.tries_left == 2 and wrong_code.value.pin == "reset code"
    s.reset_pin_with_code(bytearray(b"reset-code-1"), bytearray(b"135790"))
    s.change_pin(Pin.USER, bytearray(b"135790"), bytearray(b"97531086"))
    s.verify(Pin.USER, bytearray(b"97531086"))
    s.change_pin(Pin.ADMIN, bytearray(PW3), bytearray(b"new-admin-pin"))
    with pytest.raises(WrongPin):
        s.verify(Pin.ADMIN, bytearray(PW3))
    s.verify(Pin.ADMIN, bytearray(b"new-admin-pin"))


def test_keys_generated_on_card_sign_and_decipher(card_room: CardRoom) -> None:
    card = card_room.new_card("keys")
    card_room.insert(card.name, 1)
    s = card_room.session(1)
    s.verify(Pin.ADMIN, bytearray(PW3))
    s.set_algorithm_p256(KeySlot.AUT)
    assert s.status().attributes[KeySlot.AUT].describe() == "nistp256"
    sig_key = s.generate_key(KeySlot.SIG, 1_750_000_000)
    dec_key = s.generate_key(KeySlot.DEC, 1_750_000_000)
    assert der(s.public_key(KeySlot.SIG)) == der(sig_key)
    s.verify(Pin.SIGN, bytearray(PW1))
    signature = s.sign(b"holder attestation")
    signing.verify(der(sig_key), b"holder attestation", signature)
    assert s.signature_counter() == 1
    s.verify(Pin.USER, bytearray(PW1))
    ephemeral = ec.generate_private_key(ec.SECP256R1())
    assert s.ecdh(ephemeral.public_key()) == ephemeral.exchange(ec.ECDH(), dec_key)


def test_factory_reset_terminate_and_activate(card_room: CardRoom) -> None:
    card = card_room.new_card("reset")
    card_room.insert(card.name, 0)
    s = card_room.session(0)
    s.verify(Pin.ADMIN, bytearray(PW3))
    s.set_name("Someone")
    s.change_pin(Pin.ADMIN, bytearray(PW3), bytearray(b"other-admin"))
    s.verify(Pin.ADMIN, bytearray(b"other-admin"))
    s.factory_reset()
    assert s.name() == "" and s.status().serial == card.serial
    s.verify(Pin.ADMIN, bytearray(PW3))  # back to the default admin PIN


def test_card_removed_between_select_and_verify(card_room: CardRoom) -> None:
    card = card_room.new_card("removed")
    card_room.insert(card.name, 0)
    s = card_room.session(0)
    assert s.serial == card.serial
    before = card_room.state_file(card.name).read_text()
    card_room.remove(0)
    with pytest.raises(CardRemoved) as removed:
        s.verify(Pin.USER, bytearray(b"000000"))
    assert "removed" in removed.value.message and removed.value.reader == card_room.reader(0)
    # No try was spent, the state file is intact and the card works when re-inserted.
    assert card_room.state_file(card.name).read_text() == before
    card_room.insert(card.name, 0)
    again = card_room.session(0)
    assert again.tries_left(Pin.USER) == 3
    again.verify(Pin.USER, bytearray(PW1))


def test_two_cards_in_two_readers_are_told_apart_by_serial(card_room: CardRoom) -> None:
    a = card_room.new_card("two-a")
    b = card_room.new_card("two-b")
    card_room.insert(a.name, 1)
    card_room.insert(b.name, 0)
    with pcsc.find_card(a.serial) as (reader, transport):
        assert reader == card_room.reader(1)
        assert OpenPgpSession(transport).serial == a.serial
    with pcsc.find_card(b.serial.lower()) as (reader, transport):
        assert reader == card_room.reader(0)
    with pytest.raises(WrongCard) as wrong, pcsc.find_card("0BADCAFE"):
        pass
    assert {a.serial, b.serial} <= set(wrong.value.found.split(", "))
    card_room.remove(0)
    card_room.remove(1)
    with pytest.raises(NoReader), pcsc.find_card(a.serial):
        pass
    with pytest.raises(NoReader):
        pcsc.connect(card_room.reader(0))


def test_monitor_reports_insert_and_remove_and_stops_its_thread(card_room: CardRoom) -> None:
    card = card_room.new_card("monitor")
    events: list[pcsc.ReaderEvent] = []
    seen = threading.Event()

    def record(event: pcsc.ReaderEvent) -> None:
        events.append(event)
        if event.kind == "card-removed":
            seen.set()

    with pcsc.ReaderMonitor(record, poll_ms=50) as monitor:
        assert monitor.running
        card_room.insert(card.name, 1)
        card_room.remove(1)
        assert seen.wait(5)
    assert not monitor.running
    assert not [t for t in threading.enumerate() if t.name == "reader-monitor"]
    kinds = [(e.kind, e.reader) for e in events]
    reader = card_room.reader(1)
    assert ("reader-added", reader) in kinds
    assert kinds.index(("card-inserted", reader)) < kinds.index(("card-removed", reader))


def test_no_pin_reaches_any_log(card_room: CardRoom, caplog: pytest.LogCaptureFixture) -> None:
    card = card_room.new_card("log")
    card_room.insert(card.name, 0)
    pins = [b"112233", b"44556677", b"rc-9988776", b"99887766", b"55443322"]
    with caplog.at_level(logging.DEBUG):
        s = card_room.session(0)
        s.verify(Pin.USER, bytearray(PW1))
        s.verify(Pin.ADMIN, bytearray(PW3))
        s.change_pin(Pin.USER, bytearray(PW1), bytearray(pins[0]))
        s.change_pin(Pin.ADMIN, bytearray(PW3), bytearray(pins[1]))
        s.verify(Pin.ADMIN, bytearray(pins[1]))
        s.set_reset_code(bytearray(pins[2]))
        s.reset_pin_as_admin(bytearray(pins[3]))
        s.reset_pin_with_code(bytearray(pins[2]), bytearray(pins[4]))
        with pytest.raises(WrongPin):
            s.verify(Pin.USER, bytearray(pins[0]))
    trace = [r.getMessage() for r in caplog.records if r.name == "appliance.cards.apdu"]
    assert any("redacted" in line for line in trace)  # the trace ran
    assert any("00ca006e" in line for line in trace)
    logs = "\n".join(r.getMessage() for r in caplog.records)
    # pcscd's own output exists when this harness started it; a pcscd that was already
    # running is checked for APDU logging flags by test_pcscd_runs_without_apdu_logging.
    pcscd_path = card_room.world.run_dir / "pcscd.log"
    pcscd_log = pcscd_path.read_text(errors="replace") if pcscd_path.exists() else ""
    server_log = (card_room.world.run_dir / "server.log").read_text(errors="replace")
    for pin in [PW1, PW3, *pins]:
        for text in (logs, pcscd_log, server_log):
            assert pin.hex() not in text.lower()
            assert pin.decode() not in text


def test_pcscd_runs_without_apdu_logging(card_world: object) -> None:
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    commands = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"pcscd"):
            commands.append(cmd)
    assert commands
    for cmd in commands:
        assert not {b"-a", b"-d", b"--apdu", b"--debug"} & set(cmd)


def test_starting_the_harness_twice_is_harmless(card_room: CardRoom) -> None:
    from vcard import harness

    world = card_room.world
    server_pid = (world.run_dir / "server.pid").read_text()
    card = card_room.new_card("twice")
    card_room.insert(card.name, 0)
    again = harness.up(world.state_dir, world.run_dir)
    assert again.readers == world.readers
    assert (world.run_dir / "server.pid").read_text() == server_pid
    assert harness.start_pcscd(world.run_dir) is False
    assert card_room.session(0).serial == card.serial  # the inserted card stayed


def test_doctor_reports_pcscd_ok_with_the_readers(card_room: CardRoom, tmp_path: Path) -> None:
    card = card_room.new_card("doctor")
    card_room.insert(card.name, 1)
    media = tmp_path / "media"
    media.mkdir()
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(
        f'[paths]\nmedia = "{media}"\n[hsm]\nmodule = "/usr/lib/softhsm/libsofthsm2.so"\n'
        "[airgap]\nrequired = false\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "appliance", "--config", str(cfg), "doctor", "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    line = checks["pcscd"]
    assert line["status"] == "OK", line
    for reader in card_room.world.readers:
        assert reader in line["detail"]
    assert f"{card_room.reader(1)}: card 3b" in line["detail"]


def test_reset_by_another_handle_is_reported_and_drops_the_pin(card_room: CardRoom) -> None:
    card = card_room.new_card("reset-other")
    card_room.insert(card.name, 0)
    s = card_room.session(0)
    s.verify(Pin.USER, bytearray(PW1))
    other = card_room.transport(0)
    other.close(reset=True)
    with pytest.raises(CardsError) as reset:
        s.private_do(1)
    assert "reset by another program" in reset.value.message
    assert not isinstance(reset.value, CardRemoved)
    s.select()
    assert not s.is_verified(Pin.USER)  # the card forgot the PIN with the reset


def test_card_pulled_while_signing_raises_card_removed_and_state_stays_whole(
    card_room: CardRoom,
) -> None:
    card = card_room.new_card("pulled")
    card_room.insert(card.name, 0)
    s = card_room.session(0)
    s.verify(Pin.ADMIN, bytearray(PW3))
    s.generate_key(KeySlot.SIG, 1)
    done: list[int] = []
    failure: list[BaseException] = []
    running = threading.Event()

    def sign_until_pulled() -> None:
        try:
            while True:
                s.verify(Pin.SIGN, bytearray(PW1))
                s.sign(b"x")
                done.append(1)
                running.set()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failure.append(exc)
            running.set()

    worker = threading.Thread(target=sign_until_pulled)
    worker.start()
    assert running.wait(5)
    card_room.remove(0)
    worker.join(10)
    assert not worker.is_alive()
    assert failure and isinstance(failure[0], CardRemoved), failure
    saved = state(card_room, card.name)
    # The card finished whatever it started: the counter is what the host saw, or one more
    # when the card signed but its answer never came back.
    assert len(done) <= int(str(saved["sig_counter"])) <= len(done) + 1
    assert saved["tries_pw1"] == 3
