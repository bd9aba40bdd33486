"""Acceptance of the credentials layer against SoftHSM and virtual OpenPGP cards (vcard over
DirectTransport, i.e. real APDUs through the cards layer's session and our adapter).

- 3-of-7 crypto officers activate a SoftHSM token whose user PIN nobody ever saw;
- 4-of-7 recovery shareholders' key wraps a real HSM backup; restore with 4 cards; holder 5's
  card destroyed and replaced with 4 others; rekey re-wraps the backup and the old cards'
  secret no longer restores it;
- afterwards every file the test wrote (roster, attestation, backups, SoftHSM token store)
  and every log line is scanned for the PINs and shares, raw, hex, base64 and base32.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable
from pathlib import Path

import pytest

from appliance.hsm import keygen, keys, token_init
from appliance.hsm.backup import create_backup
from appliance.hsm.errors import PinError, RestoreError
from appliance.hsm.pkcs11_adapter import Session, Token
from appliance.hsm.restore import RestoreResult, restore_backup
from appliance.sharing import attest, envelope, slip39
from appliance.sharing import roster as rosters
from appliance.sharing.errors import QuorumError
from appliance.sharing.issue import HolderSpec, issue_activation_set, issue_backup_set
from appliance.sharing.membership import add_holder
from appliance.sharing.ports import HolderCard
from appliance.sharing.quorum import QuorumSession, activate_hsm, with_backup_key
from appliance.sharing.rekey import rekey_activation, rekey_backup
from appliance.sharing.roster import Roster
from tests.support.softhsm import SO_PIN, SoftHsm
from tests.unit.test_sharing_quorum import NOW, World, pin_of, pins


def _forms(secret: bytes) -> list[bytes]:
    """How a secret could show up in a file: raw, hex, base64, base32."""
    forms = [
        secret,
        secret.hex().encode(),
        secret.hex().upper().encode(),
        base64.b64encode(secret).rstrip(b"="),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
        base64.b32encode(secret).rstrip(b"="),
    ]
    return [f for f in forms if len(f) >= 6]


def scan(paths: Iterable[Path], texts: Iterable[str], secrets: Iterable[bytes]) -> list[str]:
    needles = [(s, f) for s in secrets for f in _forms(s)]
    hits: list[str] = []
    blobs: list[tuple[str, bytes]] = [(f"log/{i}", t.encode()) for i, t in enumerate(texts)]
    for root in paths:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                blobs.append((str(p), p.read_bytes()))
    for name, data in blobs:
        for secret, form in needles:
            if form in data:
                hits.append(f"{name} holds a secret of {len(secret)} bytes")
    return hits


def open_shares(roster: Roster, set_id: str, cards: Iterable[HolderCard]) -> list[bytes]:
    """The test's own look at the shares (to search for them), through the cards."""
    out = []
    for card in cards:
        m = roster.get_set(set_id).member_by_serial(card.serial)
        if m is None:
            continue
        card.verify_pin(pin_of(card.serial))
        share = envelope.open_with_card(card, bytes.fromhex(m.envelope))
        out += [bytes(share), slip39.to_words(share).encode()]
    return out


def present(roster: Roster, set_id: str, cards: Iterable[HolderCard]) -> QuorumSession:
    s = QuorumSession(roster, set_id)
    for c in cards:
        s.present(c, pin_of(c.serial))
    return s


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def test_officers_activate_a_softhsm_token(
    softhsm: SoftHsm,
    tmp_path: Path,
    logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    label = "sharing-officers"
    world = World("vcard")
    cards = world.cards("C1", 7)
    seen_pins: list[bytes] = []

    def init_token(pin: bytearray) -> None:
        seen_pins.append(bytes(pin))
        token_init.init_softhsm_token(softhsm.module, label, so_pin=bytearray(SO_PIN), user_pin=pin)

    issued = issue_activation_set(
        Roster(),
        token_label=label,
        threshold=3,
        holders=[HolderSpec("CO", f"Officer {i + 1}", c) for i, c in enumerate(cards)],
        choose_pins=pins,
        set_user_pin=init_token,
        now=NOW,
    )
    roster, set_id = issued.roster, issued.set_id

    def login(pin: bytearray) -> str:
        with Token(softhsm.module, label=label).open(pin) as session:
            return session.info.label

    for order in [(0, 1, 2), (6, 4, 2), (5, 0, 3)]:
        with present(roster, set_id, [cards[i] for i in order]) as s:
            assert activate_hsm(s, login) == label
    with (
        present(roster, set_id, [cards[3], cards[1]]) as s,
        pytest.raises(QuorumError, match="2 of 3 cards"),
    ):
        activate_hsm(s, login)
    with QuorumSession(roster, set_id) as s:
        s.present(cards[0], pin_of(cards[0].serial))
        with pytest.raises(QuorumError, match="already presented"):
            s.present(cards[0], pin_of(cards[0].serial))

    # Rekey: a new token PIN through C_SetPIN; the old officers' secret no longer logs in.
    def change_pin(old: bytearray, new: bytearray) -> None:
        seen_pins.append(bytes(new))
        with Token(softhsm.module, label=label).open(old) as session:
            session.change_user_pin(old, new)

    old_roster = roster
    with present(roster, set_id, cards[4:7]) as s:
        done = rekey_activation(roster, s, change_pin, now=NOW)
    roster = done.roster
    with present(roster, done.new_set_id, [cards[1], cards[5], cards[3]]) as s:
        assert activate_hsm(s, login) == label
    with present(old_roster, set_id, cards[:3]) as s, pytest.raises(PinError):
        activate_hsm(s, login)

    # Files and logs: the roster (signed), an attestation; then the scan.
    signer = _ceremony_signer()
    rosters.save(tmp_path / "roster.json", roster, signer)
    att = attest.make_attestation(roster, cards[2], pin_of(cards[2].serial), now=NOW)
    att.write(tmp_path)
    secrets = [*seen_pins, *(pin_of(c.serial) for c in cards)]
    secrets += open_shares(roster, done.new_set_id, cards)
    secrets += open_shares(old_roster, set_id, cards)
    out, err = capfd.readouterr()
    assert scan([tmp_path, softhsm.tokens], [logs.text, out, err], secrets) == []
    softhsm.delete_token(label)


def _ceremony_signer() -> object:
    from appliance import signing

    return signing.SoftwareSigner()


def test_recovery_set_wraps_restores_replaces_and_rekeys_a_softhsm_backup(
    softhsm: SoftHsm,
    tmp_path: Path,
    logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    label = "sharing-recovery"
    live_serial = softhsm.init_token(label)

    def live() -> Session:  # reopened each time: initialising a token resets the module
        return Token(softhsm.module, serial=live_serial).open(softhsm.pin())

    with live() as session:
        keygen.generate_ceremony_key(session)
        keygen.generate_key(session, 13, role="zsk", zone="example.")
    world = World("vcard")
    cards = world.cards("A1", 7)
    backups_dir = tmp_path / "backups"
    made: list[Path] = []
    keys_seen: list[bytes] = []

    def make_backup(key: bytearray) -> None:
        keys_seen.append(bytes(key))
        with live() as session:
            made.append(create_backup(session, key, backups_dir, lock=False).backup.path)

    issued = issue_backup_set(
        Roster(),
        backup_name="backup-1",
        threshold=4,
        holders=[HolderSpec("RKSH", f"Holder {i + 1}", c) for i, c in enumerate(cards)],
        choose_pins=pins,
        make_backup=make_backup,
        now=NOW,
    )
    roster, set_id = issued.roster, issued.set_id
    as_issued = roster

    def restore_into_fresh_token(path: Path) -> object:
        serial = softhsm.init_token(label)
        try:
            with Token(softhsm.module, serial=serial).open(softhsm.pin()) as target:
                return with_backup_key(session, lambda key: restore_backup(target, path, key))
        finally:
            softhsm.delete_token(label, serial=serial)

    # Restore with 4 cards.
    with present(roster, set_id, [cards[6], cards[2], cards[0], cards[4]]) as session:
        result = restore_into_fresh_token(made[0])
    assert isinstance(result, RestoreResult) and len(result.keys) == 2  # ceremony key + ZSK

    # Holder 5's card is destroyed; a replacement is issued with 4 others.
    replacement = world.card("A1000099")
    with present(roster, set_id, cards[:4]) as s:
        roster = add_holder(
            roster,
            s,
            HolderSpec("RKSH", "Holder 5b", replacement),
            pins,
            replaces=cards[4].serial,
            reason="card destroyed",
            now=NOW,
        )
    with present(roster, set_id, [replacement, cards[5], cards[6], cards[0]]) as session:
        restore_into_fresh_token(made[0])

    # Rekey: re-wrap (a new backup under the new key), retire the old set.
    def rewrap(old: bytearray, new: bytearray) -> None:
        keys_seen.extend([bytes(old), bytes(new)])
        with live() as session:
            made.append(create_backup(session, new, tmp_path / "backups-2", lock=False).backup.path)

    with present(roster, set_id, [cards[0], cards[1], cards[2], replacement]) as s:
        done = rekey_backup(roster, s, rewrap, now=NOW)
    roster = done.roster
    assert roster.get_set(set_id).status == "retired"
    with present(roster, done.new_set_id, [cards[3], cards[5], cards[6], replacement]) as session:
        restore_into_fresh_token(made[1])
    # The old cards (holder 5's destroyed card included) rebuild only the old key,
    # which does not open the new backup.
    with (
        present(as_issued, set_id, [cards[4], cards[0], cards[1], cards[2]]) as session,
        pytest.raises(RestoreError, match="wrapping key is not the one"),
    ):
        restore_into_fresh_token(made[1])
    with pytest.raises(QuorumError, match="retired"):
        QuorumSession(roster, set_id)

    with live() as session:  # the roster is signed by the ceremony key in the HSM
        ceremony = keys.ceremony_key(session)
        rosters.save(tmp_path / "roster.json", roster, ceremony)
        trusted = ceremony.public_key_der()
    loaded = rosters.load(tmp_path / "roster.json", trusted_public_key=trusted)
    assert loaded.get_set(done.new_set_id).threshold == 4
    secrets = [*keys_seen, *(pin_of(c.serial) for c in (*cards, replacement))]
    secrets += open_shares(roster, done.new_set_id, [*cards, replacement])
    secrets += open_shares(as_issued, set_id, cards)
    out, err = capfd.readouterr()
    assert scan([tmp_path, softhsm.tokens], [logs.text, out, err], secrets) == []
    softhsm.delete_token(label, serial=live_serial)


def test_the_scan_finds_a_planted_secret(tmp_path: Path) -> None:
    secret = bytes(range(32))
    (tmp_path / "a.txt").write_text("x " + base64.b64encode(secret).decode())
    assert scan([tmp_path], [], [secret]) != []
    assert scan([tmp_path], [secret.hex()], [secret]) != []
