"""The recovery shareholders' lifecycle on fake and vcard cards: backup under a 4-of-7 set,
restore, a destroyed card replaced with a quorum, rekey; retest; attestations; notes;
reports. The "HSM" here is AES key wrap in software (the SoftHSM run is in
tests/integration/test_sharing_hsm.py)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.keywrap import (
    InvalidUnwrap,
    aes_key_unwrap_with_padding,
    aes_key_wrap_with_padding,
)

from appliance.sharing import attest, envelope, notes, reports, retest
from appliance.sharing.envelope import Purpose
from appliance.sharing.errors import AttestationError, QuorumError
from appliance.sharing.issue import HolderSpec, issue_backup_set
from appliance.sharing.membership import add_holder
from appliance.sharing.quorum import QuorumSession, with_backup_key
from appliance.sharing.rekey import rekey_backup
from appliance.sharing.roster import Roster
from tests.unit.test_sharing_quorum import NOW, World, pin_of, pins


@pytest.fixture(params=["fake", "vcard"])
def world(request: pytest.FixtureRequest) -> World:
    return World(str(request.param))


KSK = b"private key material of the KSK, wrapped in the backup"


class SoftBackup:
    """Stands in for the HSM's backup: AES key wrap (RFC 5649) under the given key."""

    def __init__(self) -> None:
        self.blob = b""

    def make(self, key: bytearray) -> None:
        assert len(key) == 32
        self.blob = aes_key_wrap_with_padding(bytes(key), KSK)

    def restore(self, key: bytearray) -> bytes:
        return aes_key_unwrap_with_padding(bytes(key), self.blob)

    def rewrap(self, old: bytearray, new: bytearray) -> None:
        self.blob = aes_key_wrap_with_padding(bytes(new), self.restore(old))


def recovery_set(world: World) -> tuple[Roster, str, list, SoftBackup]:  # type: ignore[type-arg]
    backup = SoftBackup()
    cs = world.cards("A0", 7)
    issued = issue_backup_set(
        Roster(),
        backup_name="backup-2026-q1",
        threshold=4,
        holders=[HolderSpec("RKSH", f"Holder {i + 1}", c) for i, c in enumerate(cs)],
        choose_pins=pins,
        make_backup=backup.make,
        now=NOW,
    )
    return issued.roster, issued.set_id, cs, backup


def quorum(roster: Roster, set_id: str, cards: list) -> QuorumSession:  # type: ignore[type-arg]
    s = QuorumSession(roster, set_id)
    for c in cards:
        s.present(c, pin_of(c.serial))
    return s


def test_recovery_set_restore_replace_and_rekey(world: World) -> None:
    roster, set_id, cs, backup = recovery_set(world)
    as_issued = roster
    # Restore with any 4 cards.
    with quorum(roster, set_id, [cs[6], cs[0], cs[3], cs[5]]) as s:
        assert with_backup_key(s, backup.restore) == KSK
    with quorum(roster, set_id, cs[:3]) as s, pytest.raises(QuorumError, match="1 more needed"):
        with_backup_key(s, backup.restore)

    # Holder 5's card is destroyed: a replacement is issued with 4 others.
    new_card = world.card("A0000099")
    with quorum(roster, set_id, [cs[0], cs[1], cs[2], cs[3]]) as s:
        roster = add_holder(
            roster,
            s,
            HolderSpec("RKSH", "Holder 5b", new_card),
            pins,
            replaces=cs[4].serial,
            reason="card destroyed",
            now=NOW,
        )
    cset = roster.get_set(set_id)
    gone = cset.member_by_serial(cs[4].serial)
    fresh = cset.member_by_serial(new_card.serial)
    assert gone is not None and gone.revoked and gone.revoked_reason == "card destroyed"
    assert fresh is not None and fresh.index == 7 and not fresh.revoked
    # The replacement works in a quorum; the destroyed card's member is refused.
    with quorum(roster, set_id, [new_card, cs[6], cs[5], cs[1]]) as s:
        assert with_backup_key(s, backup.restore) == KSK
    with QuorumSession(roster, set_id) as s, pytest.raises(QuorumError, match="revoked"):
        s.present(cs[4], pin_of(cs[4].serial))

    # Revocation is bookkeeping: the revoked card's share still combines -- until the rekey.
    with quorum(as_issued, set_id, [cs[4], cs[0], cs[1], cs[2]]) as s:
        assert with_backup_key(s, backup.restore) == KSK

    # Rekey: 4 present holders; the old set retires; the backup is re-wrapped.
    present = {c.serial: (c, pin_of(c.serial)) for c in (cs[0], cs[1], new_card)}
    with quorum(roster, set_id, [cs[0], cs[1], cs[2], new_card]) as s:
        done = rekey_backup(roster, s, backup.rewrap, present=present, now=NOW)
    roster = done.roster
    old, new = roster.get_set(done.old_set_id), roster.get_set(done.new_set_id)
    assert old.status == "retired" and old.replaced_by == new.set_id
    assert {m.card_serial for m in new.members} == {c.serial for c in (*cs[:4], *cs[5:], new_card)}
    assert set(done.pending_cards) == {cs[2].serial, cs[3].serial, cs[5].serial, cs[6].serial}
    with quorum(roster, new.set_id, [cs[6], new_card, cs[2], cs[3]]) as s:
        assert with_backup_key(s, backup.restore) == KSK
    # Old cards cannot open the new backup: the old set is refused, and even the old
    # secret rebuilt from old envelopes (revoked card included) does not unwrap it.
    with pytest.raises(QuorumError, match="retired"):
        QuorumSession(roster, set_id)
    with (
        quorum(as_issued, set_id, [cs[4], cs[0], cs[1], cs[2]]) as s,
        pytest.raises(InvalidUnwrap),
    ):
        with_backup_key(s, backup.restore)


def test_retest_records_and_detects_tampering_and_blocked_pin(world: World) -> None:
    roster, set_id, cs, _ = recovery_set(world)
    later = NOW + timedelta(days=400)
    result, roster = retest.retest(roster, set_id, cs[0], pin_of(cs[0].serial), now=later)
    assert result.ok and result.pin_tries_left == 3 and result.card_version == "3.4"
    m = roster.get_set(set_id).member_by_serial(cs[0].serial)
    assert m is not None and m.last_retest == "2027-04-05T12:00:00Z"

    # Tampered envelope (one byte flipped on the card and in the roster copy).
    sealed = bytearray(cs[1].read_private_do())
    sealed[-1] ^= 1
    cs[1].verify_pin(pin_of(cs[1].serial))
    cs[1].write_private_do(bytes(sealed))
    result, _ = retest.retest(roster, set_id, cs[1], pin_of(cs[1].serial))
    assert result.outcome == retest.ENVELOPE_CHANGED and "differs from the roster" in result.detail
    bad_member = dataclasses.replace(
        roster.get_set(set_id).member_by_serial(cs[1].serial), envelope=bytes(sealed).hex()
    )
    result, _ = retest.retest(
        roster.with_member(set_id, bad_member), set_id, cs[1], pin_of(cs[1].serial)
    )
    assert result.outcome == retest.ENVELOPE_CHANGED and "does not authenticate" in result.detail

    # A substituted share sealed to the card's public key: authentic envelope, wrong share.
    from appliance.sharing import slip39

    forged = slip39.split(bytearray(32), 4, 7, identifier=int(set_id, 16))[2]
    substitute = envelope.seal(
        forged,
        card_public_key=cs[2].ecdh_public_key(),
        card_serial=cs[2].serial,
        purpose=Purpose.BACKUP_KEY,
    )
    cs[2].verify_pin(pin_of(cs[2].serial))
    cs[2].write_private_do(substitute)
    sub_member = dataclasses.replace(
        roster.get_set(set_id).member_by_serial(cs[2].serial), envelope=substitute.hex()
    )
    result, _ = retest.retest(
        roster.with_member(set_id, sub_member), set_id, cs[2], pin_of(cs[2].serial)
    )
    assert result.outcome == retest.COMMITMENT_MISMATCH and "quorum" in result.action

    # Blocked PIN.
    for _ in range(3):
        with pytest.raises(Exception, match="PIN"):
            cs[3].verify_pin(bytearray(b"wrong-pin"))
    result, after = retest.retest(roster, set_id, cs[3], pin_of(cs[3].serial))
    assert result.outcome == retest.PIN_BLOCKED and result.pin_tries_left == 0
    assert after == roster  # nothing recorded as retested


def test_attestation_verifies_and_forgeries_fail(world: World, tmp_path: Path) -> None:
    roster, set_id, cs, _ = recovery_set(world)
    att = attest.make_attestation(roster, cs[4], pin_of(cs[4].serial), now=NOW)
    json_path, png_path = att.write(tmp_path)
    loaded = attest.parse(json_path.read_bytes())
    verified = attest.verify(roster, loaded, now=NOW)
    assert (verified.card_serial, verified.index) == (cs[4].serial, 4)
    roster2 = attest.record(roster, verified)
    m = roster2.get_set(set_id).member_by_serial(cs[4].serial)
    assert m is not None and m.last_attestation == verified.date
    # The QR image reads back (alphanumeric mode) to the same attestation.
    import zxingcpp
    from PIL import Image

    scanned = zxingcpp.read_barcodes(Image.open(png_path))
    assert scanned and attest.verify(roster, attest.parse(scanned[0].text), now=NOW)
    # A modified attestation fails.
    changed = dataclasses.replace(att, statement={**att.statement, "date": "2026-03-02T12:00:00Z"})
    with pytest.raises(AttestationError, match="signature is not by the card"):
        attest.verify(roster, changed, now=NOW)
    # One signed by a card not in the roster fails (same claims, another card's key).
    outsider = world.card("EE000001")
    outsider.provision(bytearray(b"12345678"), role="RKSH", holder="Mallory", login="RKSH9")
    outsider.verify_pin(bytearray(b"123456"), for_signing=True)
    from appliance import canonical

    forged = attest.Attestation(att.statement, outsider.sign(canonical.dumps(att.statement)))
    with pytest.raises(AttestationError, match="not by the card issued to Holder 5"):
        attest.verify(roster, forged, now=NOW)
    with pytest.raises(AttestationError, match="not an attestation"):
        attest.parse(b"hello")


def test_location_hint_opens_with_k_of_its_quorum_and_not_k_minus_1(world: World) -> None:
    roster, set_id, cs, _ = recovery_set(world)
    quorum_seats = notes.seats_from_roster(roster, [c.serial for c in cs[1:6]])
    roster, note_id = notes.seal_note(
        roster,
        kind="location-hint",
        about=cs[0].serial,
        text="Safe-deposit box 1234, Bank of Example, Main St branch",
        quorum=quorum_seats,
        threshold=3,
        now=NOW,
    )
    holder = roster.get_set(set_id).member_by_serial(cs[0].serial)
    assert holder is not None and holder.location_hint == note_id
    note = roster.get_note(note_id)
    assert "Safe-deposit" not in note.ciphertext and b"Safe" not in bytes.fromhex(note.ciphertext)
    opened: list[notes.NoteOpening] = []
    with (
        quorum(roster, note.quorum_set, [cs[2], cs[5]]) as s,
        pytest.raises(QuorumError, match="2 of 3 cards"),
    ):
        notes.open_note(roster, note_id, s, opened.append)
    assert opened == []
    with quorum(roster, note.quorum_set, [cs[5], cs[1], cs[3]]) as s:
        text = notes.open_note(roster, note_id, s, opened.append, now=NOW)
    assert text.startswith("Safe-deposit box 1234")
    assert len(opened) == 1 and set(opened[0].opened_by) == {
        cs[5].serial,
        cs[1].serial,
        cs[3].serial,
    }
    # The holder's own card and cards outside the quorum are refused.
    with QuorumSession(roster, note.quorum_set) as s, pytest.raises(QuorumError):
        s.present(cs[0], pin_of(cs[0].serial))


def test_emergency_contact_is_sealed_the_same_way(world: World) -> None:
    roster, set_id, cs, _ = recovery_set(world)
    seats = notes.seats_from_roster(roster, [c.serial for c in cs[2:5]])
    roster, note_id = notes.seal_note(
        roster,
        kind="emergency-contact",
        about=cs[1].serial,
        text="Call Jane: +1 555 0100",
        quorum=seats,
        threshold=2,
        now=NOW,
    )
    member = roster.get_set(set_id).member_by_serial(cs[1].serial)
    assert member is not None and member.emergency_contact == note_id
    with quorum(roster, roster.get_note(note_id).quorum_set, [cs[4], cs[2]]) as s:
        assert notes.open_note(roster, note_id, s, lambda o: None) == "Call Jane: +1 555 0100"
    with pytest.raises(Exception, match="own note"):
        notes.seal_note(
            roster, kind="location-hint", about=cs[2].serial, text="x", quorum=seats, threshold=2
        )


def test_reports_name_stale_old_and_thin(world: World) -> None:
    roster, set_id, cs, _ = recovery_set(world)
    # Fresh set: never attested, nothing else.
    kinds = {f.kind for f in reports.report(roster, now=NOW)}
    assert kinds == {"attestation-stale"}
    att = attest.make_attestation(roster, cs[0], pin_of(cs[0].serial), now=NOW)
    roster = attest.record(roster, attest.verify(roster, att, now=NOW))
    found = reports.report(roster, now=NOW + timedelta(days=30))
    assert cs[0].serial not in {f.card_serial for f in found}
    # Six years on: cards old, retests overdue, attestations stale.
    later = NOW + timedelta(days=6 * 366)
    found = reports.report(roster, now=later)
    for kind in ("card-old", "retest-overdue", "attestation-stale"):
        assert {f.card_serial for f in found if f.kind == kind} == {c.serial for c in cs}
    assert all(f.action for f in found)
    # Revoke two: 5 live for a threshold of 4 -> thin.
    from appliance.sharing.membership import revoke

    roster = revoke(roster, set_id, cs[5].serial, reason="left", now=NOW)
    roster = revoke(roster, set_id, cs[6].serial, reason="left", now=NOW)
    thin = [f for f in reports.report(roster, now=NOW) if f.kind == "set-thin"]
    assert len(thin) == 1 and "5 live members for a threshold of 4" in thin[0].message
    assert "quorum" in thin[0].action
    roster = revoke(roster, set_id, cs[4].serial, reason="left", now=NOW)
    roster = revoke(roster, set_id, cs[3].serial, reason="left", now=NOW)
    assert any(f.kind == "set-dead" for f in reports.report(roster, now=NOW))
