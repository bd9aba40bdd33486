"""Power cuts during the real ceremonies: ksk-generate then ksr-sign, SIGKILLed and resumed.

Each `appliance run` process is killed at its first journal write that makes progress (the
resume entry and the re-established HSM session do not count) once that write is durable
(every few writes, first with the line torn in half); the next process resumes. So a kill
lands at every journal write of the ceremony. And the first time each action runs, the
process is killed inside it, after its side effect and before the journal records it. At
the end the journals verify and are signed by the ceremony key, each step's action result
is recorded once, the token holds one KSK and one ceremony key, one backup was written, and
the SKR's RRSIGs are exactly those a fresh signing produces (RSA PKCS#1 v1.5 signatures are
deterministic).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.ceremony import journal
from appliance.signing import fingerprint
from tests.e2e.test_ceremony_ksk_ksr import PEOPLE, ZONE, World, build_world, user_pin
from tests.support.softhsm import SoftHsm

ROOT = Path(__file__).resolve().parents[2]
#: Every write is killed once it is durable; every TORN_EVERY-th also torn first (the mini
#: power-cut test tears every write; here each process costs ~1 s).
TORN_EVERY = 10


def _answers(world: World, inputs: dict[str, str]) -> Path:
    lines = ["[attendance]"] + [f'{seat} = "{name}"' for seat, name in PEOPLE.items()]
    lines += ["", "[inputs]"] + [f'{k} = "{v}"' for k, v in inputs.items()]
    for seat, card in world.seats.items():
        lines += [
            "",
            f"[cards.{seat}]",
            f'card = "{card}"',
            f'pin = "{user_pin(world.serials[card])}"',
        ]
    path = world.folder / f"answers-{len(inputs)}.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(world: World, script: str, answers: Path, ws: Path, kill: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != "APPLIANCE_KILL_AT"}
    if kill:
        env["APPLIANCE_KILL_AT"] = kill
    argv = [
        sys.executable,
        "-m",
        "appliance",
        "--config",
        str(world.config),
        "run",
        str(ROOT / "scripts" / f"{script}.toml"),
        "--workspace",
        str(ws),
        "--answers",
        str(answers),
        "--virtual-cards",
        str(world.cards),
        "--airgap-root",
        str(world.folder / "root"),
        "--ceremony-key",
        fingerprint(world.ceremony_key),
        "--quiet",
    ]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode == 1 and (ws / "journal.jsonl").exists():
        state = journal.read(ws / "journal.jsonl")
        if state.finished and state.entries[-1].kind == "signature":
            return 0  # killed right after the final signature: the ceremony had ended
    if proc.returncode not in (0, -9):
        raise AssertionError(f"{script} {kill}: rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode


def _next_action(ws: Path, action_steps: list[str], killed: set[str]) -> str | None:
    """The step whose action the next process would run first, if it is still to be killed
    there: the journal's last progress entry is that step's step_start."""
    path = ws / "journal.jsonl"
    if not path.exists():
        return None
    entries = [e for e in journal.read(path).entries if e.kind not in ("resume", "signature")]
    entries = [e for e in entries if not e.data.get("reestablished")]
    last = entries[-1] if entries else None
    if last is not None and last.kind == "step_start" and last.step in action_steps:
        return None if last.step in killed else str(last.step)
    return None


def _chain(world: World, script: str, answers: Path, ws: Path, action_steps: list[str]) -> int:
    """Kill every process at its first journal write that makes progress (durable; every
    TORN_EVERY-th time torn first), and inside each action the first time it is reached;
    resume until a process runs to the end. Returns the number of kills."""
    kills = 0
    killed: set[str] = set()
    progress = 0
    while True:
        step = _next_action(ws, action_steps, killed)
        if step is not None:
            assert _run(world, script, answers, ws, f"action:{step}") == -9, step
            killed.add(step)
            kills += 1
            continue
        progress += 1
        if progress % TORN_EVERY == 0:
            assert _run(world, script, answers, ws, "journal:1:torn") == -9
            kills += 1
        if _run(world, script, answers, ws, "journal:1:after") == 0:
            assert killed == set(action_steps), killed
            return kills
        kills += 1


def _check_journal(ws: Path, world: World) -> dict[str, Any]:
    v = journal.verify(ws / "journal.jsonl", world.ceremony_key)
    assert v.state.outcome == "ended" and v.unsigned_tail == 0
    entries = v.state.entries
    results: dict[str, Any] = {}
    for e in entries:
        if e.kind == "action" and e.data["ok"] and not e.data.get("reestablished"):
            assert e.step not in results, f"{e.step}: action recorded twice"
            results[str(e.step)] = e.data
    done = [e.step for e in entries if e.kind == "step_done"]
    assert len(done) == len(set(done))
    assert not any(e.kind == "action" and not e.data["ok"] for e in entries)
    return results


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A folder in memory when the machine has one: a SIGKILL keeps the page cache anyway,
    so tmpfs tests the same thing while each of the ~100 processes skips slow fsyncs."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="ceremony-powercut-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_power_cuts_during_ksk_generate_and_ksr_sign(softhsm: SoftHsm, fast_tmp: Path) -> None:
    from appliance.dnssec import formats
    from tests.support.knot import KnotZsk

    tmp_path = fast_tmp
    began = time.monotonic()
    world = build_world(softhsm, tmp_path, token="ceremony-powercut")
    roster = str(world.media / "roster.json")
    ws1 = tmp_path / "ws-ksk"
    ksk_actions = [
        "airgap",
        "activate",
        "generate-ksk",
        "publish",
        "backup",
        "coverage",
        "bundle",
        "print",
    ]
    kills = _chain(world, "ksk-generate", _answers(world, {"roster": roster}), ws1, ksk_actions)
    results = _check_journal(ws1, world)
    label = results["generate-ksk"]["result"]["label"]
    backups = sorted((world.media / "backups").iterdir())
    assert len(backups) == 2  # the one the world was built with, and this ceremony's

    knot = KnotZsk(
        tmp_path / "zsk", ZONE, 8, zsk_lifetime="40d", rrsig_lifetime="30d", rrsig_refresh="10d"
    )
    ksr = tmp_path / "interop.ksr"
    ksr.write_bytes(knot.make_ksr((int(time.time()) // 3600) * 3600, 60))
    zones = tmp_path / "zones.toml"
    zones.write_text(
        f'[zone."{ZONE}"]\nksk = ["{label}"]\nalgorithms = [8]\nrrsig_lifetime = "30d"\n'
        'rrsig_refresh = "10d"\ncds_cdnskey = true\nmax_bundle_interval = "180d"\n'
    )
    ws2 = tmp_path / "ws-ksr"
    answers = _answers(world, {"roster": roster, "ksr": str(ksr), "zones": str(zones)})
    kills += _chain(
        world,
        "ksr-sign",
        answers,
        ws2,
        ["airgap", "load-ksr", "check-ksr", "activate", "sign-ksr", "bundle", "print"],
    )
    results2 = _check_journal(ws2, world)
    skr_path = ws2 / "outputs" / results2["sign-ksr"]["result"]["skr"]
    assert knot.validate_skr(skr_path).stderr == ""

    # The token: one KSK with the step's label, one ceremony key, nothing generated twice.
    session = softhsm_session(world, softhsm)
    try:
        labels = sorted(o.label for o in session.key_objects())
        assert labels == sorted(["appliance-ceremony-key", label]), labels
        fresh = fresh_skr(session, ksr, zones)
    finally:
        session.close()
    skr, _ = formats.load_document(skr_path)

    def rrsigs(doc: Any) -> list[list[str]]:
        return [[s.rrsig.to_text() for s in b.signatures] for b in doc.bundles]

    assert rrsigs(skr) == rrsigs(fresh) and rrsigs(skr)[0]
    writes = sum(len((ws / "journal.jsonl").read_bytes().splitlines()) for ws in (ws1, ws2))
    print(
        f"\npower cuts during ksk-generate + ksr-sign: {kills} kill points tried "
        f"({writes} journal entries in the two journals), "
        f"{time.monotonic() - began:.0f} s"
    )


def softhsm_session(world: World, softhsm: SoftHsm) -> Any:
    """Activate the token as the officers would (test side, same cards and PINs)."""
    from appliance.hsm.pkcs11_adapter import Token
    from appliance.sharing import roster as rosters
    from appliance.sharing.envelope import Purpose
    from appliance.sharing.quorum import QuorumSession, activate_hsm
    from tests.e2e.test_ceremony_ksk_ksr import _holder

    roster = rosters.load(world.media / "roster.json", trusted_public_key=world.ceremony_key)
    cset = roster.set_for(Purpose.HSM_ACTIVATION, world.token)
    qs = QuorumSession(roster, cset.set_id)
    for i in range(1, 4):
        card = _holder(world.cards, f"co{i}", world.serials[f"co{i}"])
        qs.present(card, bytearray(user_pin(card.serial).encode()))
    try:
        return activate_hsm(qs, lambda pin: Token(softhsm.module, label=world.token).open(pin))
    finally:
        qs.close()


def fresh_skr(session: Any, ksr: Path, zones: Path) -> Any:
    from datetime import UTC, datetime

    from appliance.dnssec import formats
    from appliance.dnssec.sign import Ksk, sign_request
    from appliance.dnssec.zones import load_zones
    from appliance.hsm import keys

    doc, _ = formats.load_document(ksr)
    entry = load_zones(zones)[doc.domain]
    ksks = [Ksk(keys.dnssec_key(session, label), label) for label in entry.ksk_labels]
    return sign_request(doc, entry.policy, ksks, now=datetime.now(UTC))


def test_power_cut_inside_each_action_of_rksh_enroll_issues_one_set(
    softhsm: SoftHsm, fast_tmp: Path
) -> None:
    """Killed inside every action of rksh-enroll in turn (after the cards are provisioned
    and the shares sealed, before the journal says so): one set is issued, once."""
    from appliance.sharing import roster as rosters
    from appliance.sharing.envelope import Purpose
    from tests.e2e.test_ceremony_ksk_ksr import _holder

    world = build_world(softhsm, fast_tmp, token="powercut-enrol", backup_set=False)
    lines = ["[attendance]"] + [f'{s} = "{n}"' for s, n in {**PEOPLE, "RKSH5": "Rosa"}.items()]
    lines += ["", "[inputs]", f'roster = "{world.media / "roster.json"}"']
    for seat, card in world.seats.items():
        if seat.startswith("CO"):
            pin = user_pin(world.serials[card])
            lines += ["", f"[cards.{seat}]", f'card = "{card}"', f'pin = "{pin}"']
    for i in range(1, 6):
        serial = f"E2E3{i:04X}"
        _holder(world.cards, f"blank{i}", serial)
        lines += [
            "",
            f"[cards.RKSH{i}]",
            f'card = "blank{i}"',
            f'pin = "pin-{serial}"',
            f'admin_pin = "admin-pin-{serial}"',
        ]
    answers = fast_tmp / "answers-enrol.toml"
    answers.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ws = fast_tmp / "ws-enrol"
    steps = ["airgap", "enroll-rksh", "activate", "issue", "emergency-contacts", "bundle", "print"]
    for step in steps:
        assert _run(world, "rksh-enroll", answers, ws, f"action:{step}") == -9, step
    assert _run(world, "rksh-enroll", answers, ws, None) == 0
    results = _check_journal(ws, world)
    roster = rosters.load(world.media / "roster.json", trusted_public_key=world.ceremony_key)
    sets = [s for s in roster.sets if s.purpose == Purpose.BACKUP_KEY]
    assert len(sets) == 1 and sets[0].set_id == results["issue"]["result"]["set_id"]
    assert len(sets[0].members) == 5
    assert results["issue"]["already"] is True  # the resumed step found its own set
    assert len(list((world.media / "backups").iterdir())) == 1  # one backup key, one backup
