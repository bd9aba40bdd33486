"""SLIP-39 interop with shamir-mnemonic's own command line tool, both ways."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from appliance.sharing import slip39
from tests.support.services import need

SHAMIR = Path(sys.executable).parent / "shamir"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _shamir(*args: str, stdin: str = "") -> str:
    need(SHAMIR.exists(), "shamir-mnemonic's `shamir` CLI", "Install shamir-mnemonic[cli].")
    proc = subprocess.run(
        [str(SHAMIR), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return ANSI.sub("", proc.stdout)


def test_appliance_words_recover_with_shamir_recover() -> None:
    secret = bytearray(bytes.fromhex("5f" * 16 + "a0" * 16))
    shares = slip39.split(secret, 3, 5)
    words = [slip39.to_words(shares[i]) for i in (4, 0, 2)]
    out = _shamir("recover", stdin="\n".join(words) + "\n")
    assert "SUCCESS" in out
    found = re.search(r"Your master secret is: ([0-9a-f]+)", out)
    assert found is not None and found.group(1) == secret.hex()


def test_extended_share_recovers_with_shamir_recover() -> None:
    secret = bytearray(range(100, 132))
    shares = slip39.split(secret, 2, 3)
    new = slip39.extend(shares[:2], 9)
    out = _shamir("recover", stdin=slip39.to_words(new) + "\n" + slip39.to_words(shares[2]) + "\n")
    assert f"Your master secret is: {secret.hex()}" in out


def test_shamir_create_shares_combine_in_the_appliance() -> None:
    secret_hex = "0123456789abcdef" * 4
    out = _shamir("create", "3of5", "-S", secret_hex)
    lines = [ln.strip() for ln in out.splitlines() if len(ln.split()) == 33]
    assert len(lines) == 5
    shares = [slip39.from_words(lines[i]) for i in (3, 1, 4)]
    assert slip39.combine(shares).hex() == secret_hex
    assert {slip39.identify(s).threshold for s in shares} == {3}
