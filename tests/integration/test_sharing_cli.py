"""`appliance attest` and `appliance attest verify` through the real stack: pyscard ->
pcscd -> vpcd -> virtual OpenPGP cards (the cards layer's harness)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from appliance import signing
from appliance.cards.openpgp import OpenPgpSession
from appliance.cli import main
from appliance.sharing import roster as rosters
from appliance.sharing.envelope import Purpose
from appliance.sharing.issue import HolderSpec, issue_set
from appliance.sharing.openpgp_card import OpenPgpHolderCard
from appliance.sharing.roster import Roster
from tests.support.pcsc import CardRoom
from tests.unit.test_sharing_quorum import NOW, pin_of, pins


def _pin_fd(pin: bytes) -> int:
    r, w = os.pipe()
    os.write(w, pin + b"\n")
    os.close(w)
    return r


def test_attest_at_home_then_verify(
    card_room: CardRoom, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = card_room.new_card("rksh-a"), card_room.new_card("rksh-b")
    card_room.insert(a.name, 0)
    card_room.insert(b.name, 1)
    cards = [OpenPgpHolderCard(card_room.session(0)), OpenPgpHolderCard(card_room.session(1))]
    issued = issue_set(
        Roster(),
        purpose=Purpose.BACKUP_KEY,
        subject="backup-cli",
        threshold=2,
        holders=[HolderSpec("RKSH", f"Holder {i}", c) for i, c in enumerate(cards)],
        choose_pins=pins,
        now=NOW,
    )
    signer = signing.SoftwareSigner()
    roster_path = tmp_path / "roster.json"
    rosters.save(roster_path, issued.roster, signer)
    fp = signing.fingerprint(signer.public_key_der())
    card_room.close()  # the holder takes one card home: only card b in the reader
    card_room.insert(b.name, 0)
    out_dir = tmp_path / "out"
    args = ["attest", "--roster", str(roster_path), "--ceremony-fingerprint", fp]
    code = main([*args, "--out", str(out_dir), "--pin-fd", str(_pin_fd(bytes(pin_of(b.serial))))])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "Attested: Holder 1, share 1" in printed.out
    made = sorted(out_dir.iterdir())
    assert [p.suffix for p in made] == [".json", ".png"]

    verify = ["attest", "verify"]
    for path in made:  # the file and the QR image both verify
        assert (
            main([*verify, str(path), "--roster", str(roster_path), "--ceremony-fingerprint", fp])
            == 0
        )
        assert f"card {b.serial}" in capsys.readouterr().out

    doc = json.loads(made[0].read_text())
    doc["attestation"]["index"] = 0
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(doc))
    assert (
        main([*verify, str(forged), "--roster", str(roster_path), "--ceremony-fingerprint", fp])
        == 1
    )
    assert "Attestation:" in capsys.readouterr().err
    # A wrong PIN is reported with the tries left, and no file is written.
    code = main([*args, "--out", str(tmp_path / "none"), "--pin-fd", str(_pin_fd(b"wrong-pin"))])
    assert code == 1 and "2 tries left" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()
    # Another ceremony key's fingerprint: the roster is not trusted.
    other = signing.fingerprint(signing.SoftwareSigner().public_key_der())
    assert (
        main([*verify, str(made[0]), "--roster", str(roster_path), "--ceremony-fingerprint", other])
        == 1
    )
    assert "Compare the fingerprint" in capsys.readouterr().err
    session = OpenPgpSession(card_room.transport(0))
    assert session.serial == b.serial
