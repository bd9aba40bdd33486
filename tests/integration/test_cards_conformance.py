"""Standard tools read a card the appliance provisioned: gpg (scdaemon via pcscd) and
OpenSC's openpgp-tool show the serial, name and fingerprints the appliance reports, and a
signature made through the appliance verifies with the public key gpg reads off the card."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance import signing
from appliance.cards.openpgp import KeySlot, Pin
from appliance.cards.provision import parse_cardholder_name, provision
from tests.support.pcsc import CardRoom
from tests.support.services import need_tool

TIMESTAMP = 1_750_000_000
OID_P256 = bytes.fromhex("2A8648CE3D030107")


@pytest.fixture
def gnupg(card_room: CardRoom) -> Iterator[dict[str, str]]:
    """A private GNUPGHOME whose scdaemon shares the reader; scdaemon killed at the end."""
    need_tool("gpg", "gnupg")
    need_tool("gpg-connect-agent", "gnupg")
    need_tool("gpgconf", "gnupg")
    home = Path(tempfile.mkdtemp(prefix="gpg-", dir="/tmp"))  # short: agent socket paths
    home.chmod(0o700)
    (home / "scdaemon.conf").write_text(
        f"pcsc-shared\ndisable-ccid\nreader-port {card_room.reader(0)}\n"
    )
    env = {**os.environ, "GNUPGHOME": str(home), "LC_ALL": "C"}
    try:
        yield env
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False, timeout=20)
        shutil.rmtree(home, ignore_errors=True)


def run(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def gpg_card_status(env: dict[str, str]) -> dict[str, list[str]]:
    out = run(["gpg", "--batch", "--card-status", "--with-colons"], env)
    return {line.split(":")[0]: line.split(":")[1:] for line in out.splitlines() if ":" in line}


def gpg_read_key(env: dict[str, str], keyref: str) -> bytes:
    """The public point gpg's scdaemon reads from the card (assuan data, percent-escaped)."""
    out = run(["gpg-connect-agent", "--hex", f"SCD READKEY {keyref}", "/bye"], env)
    raw = b"".join(
        bytes.fromhex(line.split("]", 1)[1][:51].replace(" ", ""))
        for line in out.splitlines()
        if line.startswith("D[")
    )
    raw = re.sub(rb"%([0-9A-F]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)
    start = raw.index(b"1:q65:") + 6
    return raw[start : start + 65]


def gpg_keyid(point: bytes, algo: int, env: dict[str, str], folder: Path) -> str:
    """gpg's own key id for a v4 key packet built from the card's point (independent of the
    appliance's fingerprint code)."""
    body = struct.pack(">BIB", 4, TIMESTAMP, algo) + bytes([8]) + OID_P256
    body += struct.pack(">H", 515) + point
    if algo == 18:
        body += bytes([3, 1, 8, 7])
    packet = folder / f"key-{algo}.pgp"
    packet.write_bytes(b"\x99" + struct.pack(">H", len(body)) + body)
    out = run(["gpg", "--list-packets", str(packet)], env)
    match = re.search(r"keyid: ([0-9A-F]{16})", out)
    assert match, out
    return match.group(1)


def test_gpg_and_opensc_agree_with_the_appliance(
    card_room: CardRoom, gnupg: dict[str, str], tmp_path: Path
) -> None:
    card = card_room.new_card("conformance")
    card_room.insert(card.name, 0)
    session = card_room.session(0)
    made = provision(
        session,
        bytearray(b"12345678"),
        role="CO1",
        role_id="co1",
        holder="Alice Example",
        timestamp=TIMESTAMP,
        url="https://example.org/ksk",
    )
    session.verify(Pin.SIGN, bytearray(b"123456"))
    signature = session.sign(b"attestation of CO1")
    fprs = [made.fingerprints[s].hex().upper() for s in (KeySlot.SIG, KeySlot.DEC, KeySlot.AUT)]
    assert made.serial == card.serial and session.name() == "CO1<<Alice<Example"
    assert parse_cardholder_name(session.name()) == ("CO1", "Alice Example")

    status = gpg_card_status(gnupg)
    assert status["serial"][0] == card.serial
    assert status["name"][:2] == ["Alice Example", "CO1"]
    assert status["login"][0] == "co1"
    assert status["fpr"][:3] == fprs
    assert status["fprtime"][:3] == [str(TIMESTAMP)] * 3
    colons = run(["gpg", "--batch", "--card-status", "--with-colons"], gnupg)
    for key, algo in (("1", "19"), ("2", "18"), ("3", "19")):
        assert f"keyattr:{key}:{algo}:NIST P-256:" in colons
    human = run(["gpg", "--batch", "--card-status"], gnupg)
    assert "Name of cardholder: Alice Example CO1" in human
    assert "Key attributes ...: nistp256 nistp256 nistp256" in human

    sig_point = gpg_read_key(gnupg, "OPENPGP.1")
    gpg_public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sig_point)
    gpg_der = gpg_public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert gpg_der == made.public_keys[KeySlot.SIG]
    signing.verify(gpg_der, b"attestation of CO1", signature)
    # The fingerprints the appliance wrote are the ones gpg computes from the card's keys.
    assert gpg_keyid(sig_point, 19, gnupg, tmp_path) == fprs[0][-16:]
    dec_point = gpg_read_key(gnupg, "OPENPGP.2")
    assert gpg_keyid(dec_point, 18, gnupg, tmp_path) == fprs[1][-16:]

    need_tool("openpgp-tool", "opensc")
    opensc = run(["openpgp-tool", "--reader", "0", "-C", "-U", "-K"], gnupg)
    fields = dict(
        (k.strip(), v.strip()) for k, v in (line.split(":", 1) for line in opensc.splitlines())
    )
    assert fields["Serial number"] == card.serial
    assert fields["Name"] == "CO1 Alice Example"
    assert fields["Account"] == "co1"
    for label, fpr in zip(("Sig", "Dec", "Aut"), fprs, strict=True):
        assert fields[f"{label} Fingerprint"].replace(":", "").upper() == fpr
