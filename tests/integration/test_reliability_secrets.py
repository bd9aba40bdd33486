"""Secret hygiene: full headless ceremonies leave no secret in any file, log or temp folder.

The world (officers' cards splitting the token PIN, shareholders' cards holding the backup
key, the signed roster, a first backup) is built with the layers' APIs, then four library
ceremonies run headless as their own processes (exercise, ksk-generate, ksr-sign, backup),
with HOME and TMPDIR pointed at folders of this test. Then every file under the world
folder (roster, backups, workspaces: journals, inputs, outputs, bundles, PDF sheets, and
the text pdftotext extracts from each PDF), the private HOME and TMPDIR, and the
processes' stdout and stderr are scanned for every secret of the run: every holder's
PIN and admin PIN, every share (opened back through the cards), the activation and backup
master secrets, the token user PIN derived from them, the backup wrapping key and the
token's SO PIN; each in raw, hex (both cases), base32, base45 and base64 (standard and
URL-safe) forms, at every byte alignment. Zero hits. Card state files (the card's own
memory) and SoftHSM's token folder are the devices' state and are left out, as the issue
says.

Also shown: the appliance process runs with RLIMIT_CORE = 0 (no core dump can hold a
secret), and the flows wipe the bytearrays that held PINs, shares, the token PIN and the
wrapping key once they are done with them.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from appliance.outputs import base45

ROOT = Path(__file__).resolve().parents[2]


def _cores(encode: Any, secret: bytes, group: int, out_group: int) -> Iterator[bytes]:
    """The part of encode(prefix + secret + suffix) that any alignment must contain."""
    for pad in range(group):
        text = encode(bytes(pad) + secret + bytes(group))
        start = -(-pad // group) * out_group if pad else 0
        full = (pad + len(secret)) // group * out_group
        core = text[start:full]
        if len(core) >= 8:
            yield core


def forms(secret: bytes) -> set[bytes]:
    out = {secret, secret.hex().encode(), secret.hex().upper().encode()}
    out |= set(_cores(base64.b64encode, secret, 3, 4))
    out |= set(_cores(base64.urlsafe_b64encode, secret, 3, 4))
    out |= set(_cores(base64.b32encode, secret, 5, 8))
    out |= set(_cores(lambda b: base45.encode(b).encode(), secret, 2, 3))
    return {f for f in out if len(f) >= 6}


def scan(roots: list[Path], texts: list[str], secrets: list[bytes]) -> list[str]:
    patterns = {f: s for s in secrets for f in forms(s)}
    blobs: list[tuple[str, bytes]] = [(f"text#{i}", t.encode()) for i, t in enumerate(texts)]
    scanned = 0
    for root in roots:
        for path in sorted(root.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            blobs.append((str(path), data))
            scanned += 1
            if path.suffix == ".pdf":
                text = subprocess.run(
                    ["pdftotext", str(path), "-"], capture_output=True, check=False
                ).stdout
                blobs.append((f"{path} (text)", text))
    hits = []
    for where, data in blobs:
        low = data.lower()
        for pattern in patterns:
            if pattern in data or (
                pattern.isascii() and pattern.lower() in low and pattern.lower() != pattern.upper()
            ):
                hits.append(f"{where}: a form of a secret ({len(pattern)} chars)")
    scan.files = scanned  # type: ignore[attr-defined]
    return hits


def test_the_forms_are_found_at_any_alignment() -> None:
    secret = b"\x01\x02pin-E2E00001\xfe"
    for pad in range(6):
        blob = bytes(range(pad)) + secret + b"tail"
        encoded = [
            blob,
            blob.hex().encode(),
            base64.b64encode(blob),
            base64.b32encode(blob),
            base45.encode(blob).encode(),
        ]
        for enc in encoded:
            assert any(f in enc for f in forms(secret)), (pad, enc)


def test_full_ceremonies_leave_no_secret_behind(softhsm: Any, tmp_path: Path) -> None:
    from appliance.sharing import envelope
    from appliance.sharing import roster as rosters
    from appliance.sharing.derive import backup_wrapping_key, hsm_user_pin
    from appliance.sharing.envelope import Purpose
    from tests.e2e import test_ceremony_ksk_ksr as e2e
    from tests.integration import test_reliability_powercut as pc
    from tests.support.knot import KnotZsk
    from tests.support.softhsm import SO_PIN

    need_pdftotext = shutil.which("pdftotext")
    assert need_pdftotext, "poppler-utils (pdftotext) is in deps/apt-packages.txt"
    world = pc.build_world(softhsm, tmp_path / "world", "reliability-secrets")
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    roster_path = world.media / "roster.json"
    practice = tmp_path / "world" / "practice.txt"
    practice.write_bytes(b"practice input\n")
    logs: list[str] = []

    def run(script: str, inputs: dict[str, str]) -> dict[str, Any]:
        ws = world.folder / f"ws-{script}"
        spec = pc._spec(world.folder, world, script, inputs, ws)
        env = {k: v for k, v in os.environ.items() if k != "APPLIANCE_KILL_AT"}
        env.update(PYTHONPATH=str(ROOT), HOME=str(home), TMPDIR=str(tmp))
        code = (
            "import sys; from tests.integration.test_reliability_powercut import child; "
            "child(sys.argv[1])"
        )
        done = subprocess.run(
            [sys.executable, "-c", code, str(spec)],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        logs.extend([done.stdout, done.stderr])
        assert done.returncode == 0, done.stderr[-3000:]
        return pc._facts(ws, world.ceremony_key, script != "exercise")["results"]

    run("exercise", {"practice": str(practice)})
    results = run("ksk-generate", {"roster": str(roster_path)})
    label = results["generate-ksk"]["label"]
    knot = KnotZsk(
        tmp_path / "zsk", e2e.ZONE, 8, zsk_lifetime="40d", rrsig_lifetime="30d", rrsig_refresh="10d"
    )
    ksr = world.folder / "in.ksr"
    import time

    ksr.write_bytes(knot.make_ksr((int(time.time()) // 3600) * 3600, 30))
    zones = world.folder / "zones.toml"
    zones.write_text(
        f'[zone."{e2e.ZONE}"]\nksk = ["{label}"]\nalgorithms = [8]\nrrsig_lifetime = "30d"\n'
        'rrsig_refresh = "10d"\ncds_cdnskey = true\nmax_bundle_interval = "180d"\n'
    )
    run("ksr-sign", {"roster": str(roster_path), "ksr": str(ksr), "zones": str(zones)})
    run("backup", {"roster": str(roster_path)})

    # every secret of the run, opened back through the cards (test side)
    roster = rosters.load(roster_path, trusted_public_key=world.ceremony_key)
    secrets: list[bytes] = [bytes(SO_PIN)]
    master: dict[str, list[bytearray]] = {}
    for cset in roster.sets:
        for m in cset.members:
            name = next(n for n, s in world.serials.items() if s == m.card_serial)
            card = e2e._holder(world.cards, name, m.card_serial)
            pin = e2e.user_pin(m.card_serial).encode()
            secrets += [pin, f"admin-{m.card_serial}".encode()]
            card.verify_pin(bytearray(pin))
            share = envelope.open_with_card(card, bytes.fromhex(m.envelope))
            secrets.append(bytes(share))
            master.setdefault(cset.set_id, []).append(share)
    from appliance.sharing import slip39

    for cset in roster.sets:
        secret = slip39.combine(master[cset.set_id][: cset.threshold])
        secrets.append(bytes(secret))
        if cset.purpose is Purpose.HSM_ACTIVATION:
            secrets.append(bytes(hsm_user_pin(secret, cset.subject)))
        else:
            secrets.append(bytes(backup_wrapping_key(secret, cset.subject)))
    assert len(secrets) >= 1 + 2 * 7 + 7 + 4

    cards_dir = world.cards.resolve()
    roots = [p for p in world.folder.iterdir() if p.resolve() != cards_dir]
    roots = [r for r in roots if r.is_dir()] + [home, tmp]
    loose = [p for p in world.folder.iterdir() if p.is_file()]
    hits = scan(roots, logs + [p.read_text(errors="replace") for p in loose], secrets)
    files = scan.files + len(loose)  # type: ignore[attr-defined]
    pdfs = len(list(world.folder.rglob("*.pdf")))
    print(
        f"\nsecret scan: {len(secrets)} secrets x "
        f"{sum(len(forms(s)) for s in secrets)} forms over {files} files ({pdfs} PDFs, "
        f"their text too) and {len(logs)} process logs: {len(hits)} hits"
    )
    assert pdfs >= 3
    assert hits == []
    # the scan is not blind: one share, base64-encoded inside a file, is found
    (tmp / "planted.txt").write_bytes(b"x" + base64.b64encode(b"\0" + secrets[16]) + b"\n")
    assert scan([tmp], [], secrets)


def test_the_appliance_process_runs_without_core_dumps() -> None:
    """Started with unlimited core dumps, the CLI lowers the limit to 0 before any work."""
    import resource

    code = (
        "import resource\n"
        "from appliance.cli import main\n"
        "print(*resource.getrlimit(resource.RLIMIT_CORE))\n"
        "rc = main(['script', 'actions'])\n"
        "print(*resource.getrlimit(resource.RLIMIT_CORE), rc)\n"
    )

    def unlimited() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY,) * 2)

    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        preexec_fn=unlimited,
        check=False,
    )  # noqa: PLW1509
    lines = done.stdout.strip().splitlines()
    assert lines[0] == f"{resource.RLIM_INFINITY} {resource.RLIM_INFINITY}", done.stderr
    assert lines[-1] == "0 0 0", lines[-1]


def test_the_flows_wipe_what_held_secrets() -> None:
    """PINs, shares, the token PIN and the wrapping key are bytearrays wiped after use."""
    from vcard.card import VirtualCard
    from vcard.direct import DirectTransport
    from vcard.state import CardState

    from appliance.cards.openpgp import OpenPgpSession
    from appliance.sharing import quorum
    from appliance.sharing.issue import HolderPins, HolderSpec, issue_backup_set
    from appliance.sharing.openpgp_card import OpenPgpHolderCard
    from appliance.sharing.retest import retest
    from appliance.sharing.roster import Roster

    cards = [
        OpenPgpHolderCard(
            OpenPgpSession(DirectTransport(VirtualCard(CardState.factory(f"A1F0000{i}"))))
        )
        for i in range(1, 4)
    ]
    handed: list[bytearray] = []

    def pins(spec: HolderSpec) -> HolderPins:
        p = HolderPins(
            bytearray(f"pin-{spec.card.serial}".encode()),
            bytearray(f"admin-{spec.card.serial}".encode()),
        )
        handed.extend([p.user, p.admin])
        return p

    used: list[bytearray] = []
    done = issue_backup_set(
        Roster(),
        backup_name="w",
        threshold=2,
        holders=[HolderSpec("RKSH", f"H{i}", c, login=f"R{i}") for i, c in enumerate(cards)],
        choose_pins=pins,
        make_backup=used.append,
    )
    assert handed and all(not any(b) for b in handed), "chosen PINs wiped after enrolment"
    assert used and not any(used[0]), "the master secret is wiped after the backup"
    typed = [bytearray(f"pin-{c.serial}".encode()) for c in cards]
    session = quorum.QuorumSession(done.roster, done.set_id)
    session.present(cards[0], typed[0])
    session.present(cards[1], typed[1])
    assert not any(typed[0]) and not any(typed[1]), "typed PINs wiped by present()"
    shares = list(session._shares.values())
    keys: list[bytearray] = []
    quorum.with_backup_key(session, keys.append)
    assert len(keys[0]) == 32 and not any(keys[0]), "wrapping key wiped after use"
    session.close()
    assert all(not any(s) for s in shares), "shares wiped when the session closes"
    retest_pin = bytearray(f"pin-{cards[2].serial}".encode())
    result, _ = retest(done.roster, done.set_id, cards[2], retest_pin)
    assert result.ok and not any(retest_pin), "retest wipes the PIN"
