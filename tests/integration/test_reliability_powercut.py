"""Power cuts at seeded random points across every library script that runs headless.

All eleven library scripts run on SoftHSM and virtual OpenPGP cards in the world the e2e
tests build (officers' cards activating the token, shareholders' cards holding the backup
key, a signed roster). exercise, ksk-generate, ksr-sign and backup share one world (they
leave the roster and cards as they found them); hsm-init, restore, rksh-enroll,
credential-retest, credential-rekey, holder-replace and location-hint change the token,
cards or roster, so each of their runs gets a world of its own (own token, cards, media).
For each script one uninterrupted reference run counts the journal writes; then a seeded
RNG draws kill points over all scripts: `journal:N:before|torn|after` for every write N of the
reference run and `action:STEP` inside every action (appliance/ceremony/killpoints.py).
Each point runs in a fresh workspace as its own process, is SIGKILLed there, and the same
command resumes it. Every resumed ceremony must end with a valid chain (signed by the
ceremony key where the script activates the HSM), every action recorded once, and the
same outputs as the reference: identical results for exercise and backup (keys covered),
identical SKR bytes for ksr-sign (RSA PKCS#1 v1.5 is deterministic), for ksk-generate
exactly one new KSK in the token whatever the interruption; for the scripts whose outputs
are random by nature (fresh secrets, shares, set ids) what must be equal: the steps done,
the roster's shape (serial, sets by purpose/subject/status/threshold/members/revoked,
notes: one set issued, one retest recorded, one card replaced), the backups on the media,
the keys restored, and the ceremony key named by hsm-init signing its own journal.

The sample is stratified: two points of every script first, then the rest drawn from the
whole pool. CI runs POINTS=26 (seed 12); `APPLIANCE_POWERCUT_POINTS=100` runs the full
hundred, `APPLIANCE_POWERCUT_SEED` picks other points.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from appliance.ceremony import journal

ROOT = Path(__file__).resolve().parents[2]
POINTS = int(os.environ.get("APPLIANCE_POWERCUT_POINTS", "26"))
SEED = int(os.environ.get("APPLIANCE_POWERCUT_SEED", "12"))
SHARED = ("exercise", "ksk-generate", "ksr-sign", "backup")  # one world for all their runs
FRESH = (  # scripts that change the token, cards or roster: a world per run
    "hsm-init",
    "restore",
    "rksh-enroll",
    "credential-retest",
    "credential-rekey",
    "holder-replace",
    "location-hint",
)
SCRIPTS = SHARED + FRESH
TOKEN = "reliability-powercut"
HINT = "Safe-deposit box 1207, First Bank, Main Street branch"


def build_world(softhsm: Any, folder: Path, token: str) -> Any:
    """The e2e tests' world on a token of our own (the SoftHSM fixture is shared)."""
    from tests.e2e import test_ceremony_ksk_ksr as e2e

    if "token" in inspect.signature(e2e.build_world).parameters:
        return e2e.build_world(softhsm, folder, token=token)
    saved = e2e.TOKEN
    e2e.TOKEN = token
    try:
        return e2e.build_world(softhsm, folder)
    finally:
        e2e.TOKEN = saved


def _world_json(world: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(world):
        value = getattr(world, f.name)
        out[f.name] = (
            value.hex()
            if isinstance(value, bytes)
            else (str(value) if isinstance(value, Path) else value)
        )
    return out


def _world_from(data: dict[str, Any]) -> Any:
    from tests.e2e import test_ceremony_ksk_ksr as e2e

    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(e2e.World):
        value = data[f.name]
        if f.name == "ceremony_key":
            value = bytes.fromhex(value)
        elif f.name in ("folder", "config", "cards", "media"):
            value = Path(value)
        kwargs[f.name] = value
    return e2e.World(**kwargs)


def _run_headless(world: Any, spec: dict[str, Any]) -> tuple[Any, Any]:
    """As the e2e tests' run_script, plus card overrides, attendance and step answers."""
    from appliance.ceremony.answers import Answers, AnswersOperator, CardAnswer
    from appliance.ceremony.context import Services
    from appliance.ceremony.engine import Engine
    from appliance.ceremony.loader import load_script
    from appliance.ceremony.registry import default_registry
    from appliance.ceremony.virtual_cards import VirtualCardRoom
    from appliance.config import load_config
    from tests.e2e import test_ceremony_ksk_ksr as e2e

    registry = default_registry()
    loaded = load_script(ROOT / "scripts" / f"{spec['script']}.toml", registry)
    room = VirtualCardRoom(world.cards)
    cards = {
        seat: CardAnswer(name, (e2e.user_pin(world.serials[name]),))
        for seat, name in world.seats.items()
    }
    for seat, c in spec.get("cards", {}).items():
        cards[seat] = CardAnswer(c["card"], tuple(c["pins"]), admin_pin=c.get("admin_pin", ""))
    answers = Answers(
        attendance=spec.get("people") or e2e.PEOPLE,
        inputs=spec["inputs"],
        cards=cards,
        steps=spec.get("steps", {}),
    )
    operator = AnswersOperator(answers, card_slots=room)
    engine = Engine(
        loaded,
        registry,
        operator,
        Path(spec["ws"]),
        config=load_config(world.config),
        services=Services(cards=room, card_slots=room, airgap_root=world.folder / "root"),
        inputs=spec["inputs"],
    )
    return engine.run(), operator


def child(spec_path: str) -> None:
    """Run one ceremony in this process (the kill hook reads APPLIANCE_KILL_AT)."""
    spec = json.loads(Path(spec_path).read_text())
    world = _world_from(spec["world"])
    outcome, op = _run_headless(world, spec)
    if outcome.status != "ended":
        print("\n".join(op.transcript[-20:]), file=sys.stderr)
        raise SystemExit(1)


def _spec(
    tmp: Path,
    world: Any,
    script: str,
    inputs: dict[str, str],
    ws: Path,
    extra: dict[str, Any] | None = None,
) -> Path:
    path = tmp / f"spec-{ws.name}.json"
    path.write_text(
        json.dumps(
            {
                "world": _world_json(world),
                "script": script,
                "inputs": inputs,
                "ws": str(ws),
                **(extra or {}),
            }
        )
    )
    return path


def _run(spec: Path, kill: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "APPLIANCE_KILL_AT"}
    env["PYTHONPATH"] = str(ROOT)
    if kill:
        env["APPLIANCE_KILL_AT"] = kill
    code = (
        "import sys; from tests.integration.test_reliability_powercut import child; "
        "child(sys.argv[1])"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(spec)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _facts(ws: Path, key: bytes | None, signed: bool) -> dict[str, Any]:
    v = journal.verify(ws / "journal.jsonl", key if signed else None)
    assert v.state.outcome == "ended", v.state.outcome
    if signed:
        assert v.signatures and v.unsigned_tail == 0
    results: dict[str, Any] = {}
    for e in v.state.entries:
        if e.kind == "action" and not e.data.get("reestablished"):
            assert e.data["ok"], (e.step, e.data)
            assert e.step not in results, f"{e.step}: action recorded twice"
            results[str(e.step)] = e.data["result"]
    done = [e.step for e in v.state.entries if e.kind == "step_done"]
    assert len(done) == len(set(done))
    return {"results": results, "steps": sorted(map(str, done))}


def _comparable(script: str, facts: dict[str, Any], ws: Path) -> Any:
    """What must be identical to the reference run, per script."""
    r = facts["results"]
    if script == "exercise":
        return {k: v for k, v in r.items()}
    if script == "ksr-sign":
        skr = (ws / "outputs" / r["sign-ksr"]["skr"]).read_bytes().splitlines()
        # every byte but the trailer's "generated at <time>" line
        return [line for line in skr if b" generated at " not in line]
    if script == "backup":
        return sorted(r["backup"]["keys"]), r["coverage-after"]["ok"], facts["steps"]
    if script == "ksk-generate":
        ksk = r["generate-ksk"]
        assert r["publish"]["key_tag"] == ksk["key_tag"]
        assert ksk["label"] in r["backup"]["keys"] and r["coverage"]["ok"] is True
        return sorted(r), facts["steps"]
    raise AssertionError(script)


def _token_keys(softhsm: Any, world: Any, drop: str = "") -> list[tuple[str, str]]:
    """The token's keys (label, SHA-256 of the public key), read as the officers would open
    it (same cards and PINs); `drop` destroys the key with that label first, so the next
    key-generation ceremony of the day makes it anew."""
    from appliance.hsm.pkcs11_adapter import Token
    from appliance.sharing import roster as rosters
    from appliance.sharing.envelope import Purpose
    from appliance.sharing.quorum import QuorumSession, activate_hsm
    from tests.e2e import test_ceremony_ksk_ksr as e2e

    roster = rosters.load(world.media / "roster.json", trusted_public_key=world.ceremony_key)
    qs = QuorumSession(roster, roster.set_for(Purpose.HSM_ACTIVATION, TOKEN).set_id)
    for i in range(1, 4):
        card = e2e._holder(world.cards, f"co{i}", world.serials[f"co{i}"])
        qs.present(card, bytearray(e2e.user_pin(card.serial).encode()))
    try:
        session = activate_hsm(qs, lambda pin: Token(softhsm.module, label=TOKEN).open(pin))
    finally:
        qs.close()
    try:
        for o in session.key_objects():
            if drop and o.label == drop:
                session.destroy_key(o.id)
        return sorted(
            (o.label, hashlib.sha256(o.public_key_der or b"").hexdigest())
            for o in session.key_objects()
        )
    finally:
        session.close()


def fresh_world(softhsm: Any, folder: Path, script: str, token: str) -> tuple[Any, Path]:
    """A world of its own for one run of a FRESH script, and the spec of that run (what
    the e2e test of the script presents: blank cards, a new holder, the hint's text)."""
    from appliance.hsm import module as hsm_module
    from tests.e2e import test_ceremony_ksk_ksr as e2e

    extra: dict[str, Any] = {}
    if script == "hsm-init":
        cards, media = folder / "cards", folder / "media"
        cards.mkdir(parents=True)
        media.mkdir()
        (folder / "root/sys/class/net/lo").mkdir(parents=True)
        config = folder / "appliance.toml"
        config.write_text(
            f'[hsm]\nmodule = "{softhsm.module}"\ntoken = "{token}"\n\n'
            f'[paths]\nmedia = "{media}"\nworkspace = "{folder / "ws"}"\n',
            encoding="utf-8",
        )
        seats = {f"CO{i}": f"blank-co{i}" for i in range(1, 4)}
        serials = {name: f"E2E2{i:04X}" for i, name in enumerate(seats.values(), start=1)}
        for name, serial in serials.items():
            e2e._holder(cards, name, serial)
        world = e2e.World(folder, config, cards, media, b"", token, seats, serials)
        extra["cards"] = {
            seat: {
                "card": name,
                "pins": [f"pin-{serials[name]}"],
                "admin_pin": f"admin-{serials[name]}",
            }
            for seat, name in seats.items()
        }
        return world, _spec(folder, world, script, {}, folder / "ws", extra)
    world = (
        build_world(softhsm, folder, token)
        if script != "rksh-enroll"
        else (e2e.build_world(softhsm, folder, token=token, backup_set=False))
    )
    roster = str(world.media / "roster.json")
    inputs = {"roster": roster}
    if script == "restore":
        softhsm.delete_token(token)
        hsm_module.reload(softhsm.module)
        inputs["backup"] = str(next((world.media / "backups").iterdir()) / "manifest.json")
    elif script == "rksh-enroll":
        extra["cards"] = {}
        for i in range(1, 6):
            serial = f"E2E1{i:04X}"
            e2e._holder(world.cards, f"blank{i}", serial)
            extra["cards"][f"RKSH{i}"] = {
                "card": f"blank{i}",
                "pins": [f"pin-{serial}"],
                "admin_pin": f"admin-pin-{serial}",
            }
        extra["people"] = {**e2e.PEOPLE, "RKSH5": "Rosa"}
    elif script == "holder-replace":
        e2e._holder(world.cards, "rksh4-new", "E2E0FFFF")
        extra["cards"] = {
            "RKSH4": {"card": "rksh4-new", "pins": ["new-pin-4"], "admin_pin": "new-admin-4"}
        }
    elif script == "location-hint":
        extra["steps"] = {"seal-hint": {"text": HINT}}
    return world, _spec(folder, world, script, inputs, folder / "ws", extra)


def _fresh_comparable(script: str, world: Any, ws: Path) -> Any:
    """What a FRESH script's resumed run must share with its reference run: the steps done,
    every action once, the roster's shape, the backups on the media, and what the script
    must not change after a cut (keys restored, cards named, the hsm-init ceremony key)."""
    from appliance.sharing import roster as rosters

    key = world.ceremony_key
    fingerprint = ""
    if script == "hsm-init":
        state = journal.read(ws / "journal.jsonl")
        fingerprint = next(
            e.data["result"]["ceremony_key"]
            for e in state.entries
            if e.kind == "action" and e.step == "init-token"
        )
        signatures = [e for e in state.entries if e.kind == "signature"]
        assert signatures and {e.data["key"] for e in signatures} == {fingerprint}
        key = None
    facts = _facts(ws, key, key is not None)
    r = facts["results"]
    if script == "hsm-init":
        assert r["ceremony-key"]["fingerprint"] == fingerprint
        roster = rosters.load(world.media / "roster.json", trusted_fingerprint=fingerprint)
    else:
        roster = rosters.load(world.media / "roster.json", trusted_public_key=key)
    shape = (
        roster.serial,
        sorted(
            (
                str(c.purpose),
                c.subject.replace(world.token, "<token>"),
                c.status,
                c.threshold,
                len(c.members),
                sum(1 for m in c.members if m.revoked),
            )
            for c in roster.sets
        ),
        sorted(n.about for n in roster.notes),
    )
    backups = world.media / "backups"
    n_backups = len(list(backups.iterdir())) if backups.exists() else 0
    own: Any = None
    if script == "hsm-init":
        own = [p["seat"] for p in r["activate"]["presented"]]
    elif script == "restore":
        own = r["restore"]["keys"], r["coverage"]["ok"]
    elif script == "rksh-enroll":
        own = r["enroll-rksh"]["cards"]
        assert roster.get_set(r["issue"]["set_id"]).status == "active"
    elif script == "credential-retest":
        own = [(x["seat"], x["outcome"]) for x in r["retest"]["results"]]
    elif script == "credential-rekey":
        assert roster.get_set(r["rekey"]["old_set"]).status == "retired"
        assert roster.get_set(r["rekey"]["new_set"]).status == "active"
        own = r["rekey"]["old_set"] != r["rekey"]["new_set"]
    elif script == "holder-replace":
        x = r["replace"]
        own = x["revoked"], x["new_card"], [p["seat"] for p in x["presented"]]
    elif script == "location-hint":
        assert r["open-hint"]["note_id"] == r["seal-hint"]["note_id"]
        assert roster.get_note(r["seal-hint"]["note_id"]).about == world.serials["rksh1"]
        own = [p["seat"] for p in r["open-hint"]["presented"]]
    return facts["steps"], sorted(r), shape, n_backups, own


def _roster_serial(world: Any) -> int:
    from appliance.sharing import roster as rosters

    return rosters.load(world.media / "roster.json", trusted_public_key=world.ceremony_key).serial


def _recorded(ws: Path) -> set[str]:
    """The steps whose action the (possibly torn) journal holds."""
    if not (ws / "journal.jsonl").exists():
        return set()
    return {str(e.step) for e in journal.read(ws / "journal.jsonl").entries if e.kind == "action"}


def test_seeded_power_cuts_across_the_headless_library(softhsm: Any, tmp_path: Path) -> None:
    from tests.e2e import test_ceremony_ksk_ksr as e2e
    from tests.support.knot import KnotZsk

    began = time.monotonic()
    world = build_world(softhsm, tmp_path / "world", TOKEN)
    roster = str(world.media / "roster.json")
    practice = tmp_path / "practice.txt"
    practice.write_bytes(b"practice input read aloud\n")
    inputs: dict[str, dict[str, str]] = {
        "exercise": {"practice": str(practice)},
        "ksk-generate": {"roster": roster},
        "backup": {"roster": roster},
    }

    # references: ksk-generate first (its KSK signs the ksr-sign reference and kill runs)
    refs: dict[str, Any] = {}
    ksk_label = ""
    writes: dict[str, int] = {}
    actions: dict[str, list[str]] = {}

    def reference(script: str) -> None:
        nonlocal ksk_label
        ws = tmp_path / f"ref-{script}"
        run = _run(_spec(tmp_path, world, script, inputs[script], ws))
        assert run.returncode == 0, run.stderr[-3000:]
        facts = _facts(ws, world.ceremony_key, script != "exercise")
        refs[script] = _comparable(script, facts, ws)
        writes[script] = len((ws / "journal.jsonl").read_bytes().splitlines())
        actions[script] = list(facts["results"])
        if script == "ksk-generate":
            label = ksk_label = facts["results"]["generate-ksk"]["label"]
            knot = KnotZsk(
                tmp_path / "zsk",
                e2e.ZONE,
                8,
                zsk_lifetime="40d",
                rrsig_lifetime="30d",
                rrsig_refresh="10d",
            )
            ksr = tmp_path / "powercut.ksr"
            ksr.write_bytes(knot.make_ksr((int(time.time()) // 3600) * 3600, 60))
            zones = tmp_path / "zones.toml"
            zones.write_text(
                f'[zone."{e2e.ZONE}"]\nksk = ["{label}"]\nalgorithms = [8]\n'
                'rrsig_lifetime = "30d"\nrrsig_refresh = "10d"\ncds_cdnskey = true\n'
                'max_bundle_interval = "180d"\n'
            )
            inputs["ksr-sign"] = {"roster": roster, "ksr": str(ksr), "zones": str(zones)}

    for script in ("ksk-generate", "exercise", "ksr-sign", "backup"):
        reference(script)
    fresh_refs: dict[str, Any] = {}
    for script in FRESH:
        folder = tmp_path / f"ref-{script}"
        ref_world, spec = fresh_world(softhsm, folder, script, f"pc-ref-{script}")
        run = _run(spec)
        assert run.returncode == 0, (script, run.stderr[-3000:])
        ws = folder / "ws"
        fresh_refs[script] = _fresh_comparable(script, ref_world, ws)
        writes[script] = len((ws / "journal.jsonl").read_bytes().splitlines())
        actions[script] = fresh_refs[script][1]

    everywhere = [
        (script, f"journal:{n}:{phase}")
        for script in SCRIPTS
        for n in range(1, writes[script] + 1)
        for phase in ("before", "torn", "after")
    ] + [(script, f"action:{step}") for script in SCRIPTS for step in actions[script]]
    rng = random.Random(SEED)
    # stratified: two points of every script, then the rest from the whole pool
    chosen: list[tuple[str, str]] = []
    for script in SCRIPTS:
        chosen += rng.sample([p for p in everywhere if p[0] == script], 2)
    rest = [p for p in everywhere if p not in chosen]
    chosen = chosen[:POINTS] + rng.sample(rest, min(max(POINTS - len(chosen), 0), len(rest)))
    # ksk-generate points last: each makes the day's KSK anew, and the ksr-sign points
    # must sign with the reference's KSK
    chosen.sort(key=lambda p: p[0] == "ksk-generate")
    tally: Counter[str] = Counter()
    torn = re_measured = 0
    for i, (script, point) in enumerate(chosen):
        if script in FRESH:
            folder = tmp_path / f"cut-{i:03d}-{script}"
            cut_world, spec = fresh_world(softhsm, folder, script, f"pc-{i:03d}-{script}"[:32])
            ws = folder / "ws"
            before = None
        else:
            cut_world = world
            ws = tmp_path / f"cut-{i:03d}-{script}"
            spec = _spec(tmp_path, world, script, inputs[script], ws)
            before = (
                _token_keys(softhsm, world, drop=ksk_label) if script == "ksk-generate" else None
            )
        initial = _roster_serial(cut_world) if script == "credential-retest" else 0
        killed = _run(spec, point)
        assert killed.returncode == -9, (script, point, killed.returncode, killed.stderr[-2000:])
        # a retest cut after the roster was re-signed but before the journal holds the
        # results is re-measured on resume (the findings were never recorded): the roster
        # then has one more version, with the same sets and members
        extra_version = (
            script == "credential-retest"
            and _roster_serial(cut_world) > initial
            and "retest" not in _recorded(ws)
        )
        state = journal.read(ws / "journal.jsonl") if (ws / "journal.jsonl").exists() else None
        torn += bool(state and state.torn)
        again = _run(spec)
        if again.returncode != 0:
            # killed after the final signature: the ceremony had already ended and is kept
            assert state is not None and state.finished, (script, point, again.stderr[-2000:])
        if script in FRESH:
            got = _fresh_comparable(script, cut_world, ws)
            if extra_version:
                steps, acts, (serial, sets, notes), n, own = got
                got = steps, acts, (serial - 1, sets, notes), n, own
                re_measured += 1
            assert got == fresh_refs[script], (script, point, got, fresh_refs[script])
            tally[script] += 1
            continue
        facts = _facts(ws, world.ceremony_key, script != "exercise")
        got = _comparable(script, facts, ws)
        assert got == refs[script], (script, point)
        if before is not None:
            after = _token_keys(softhsm, world)
            new = sorted((Counter(after) - Counter(before)).elements())
            ksk = facts["results"]["generate-ksk"]
            # one key made, whatever the interruption, and it is the one the journal names
            assert new == [(ksk_label, ksk["public_key_sha256"])], (point, new)
        tally[script] += 1
    print(
        f"\npower cuts (seed {SEED}): {len(chosen)} kill points of {len(everywhere)} "
        f"possible across {len(SCRIPTS)} scripts ({dict(tally)}), {torn} torn lines "
        f"resumed, {re_measured} retests re-measured, every run resumed to a valid chain "
        f"with the reference outputs, "
        f"{time.monotonic() - began:.0f} s"
    )
