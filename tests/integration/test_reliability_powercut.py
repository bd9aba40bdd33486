"""Power cuts at seeded random points across every library script that runs headless.

The library scripts whose actions are all bound (exercise, ksk-generate, ksr-sign, backup)
run on SoftHSM and virtual OpenPGP cards in the world the e2e tests build (officers' cards
activating the token, shareholders' cards holding the backup key, a signed roster). For
each script one uninterrupted reference run counts the journal writes; then a seeded RNG
draws kill points over all scripts: `journal:N:before|torn|after` for every write N of the
reference run and `action:STEP` inside every action (appliance/ceremony/killpoints.py).
Each point runs in a fresh workspace as its own process, is SIGKILLed there, and the same
command resumes it. Every resumed ceremony must end with a valid chain (signed by the
ceremony key where the script activates the HSM), every action recorded once, and the
same outputs as the reference: identical results for exercise and backup (keys covered),
identical SKR bytes for ksr-sign (RSA PKCS#1 v1.5 is deterministic), and for ksk-generate
exactly one new KSK in the token whatever the interruption.

CI runs POINTS=24 points (seed 12, ~50 s); `APPLIANCE_POWERCUT_POINTS=100` runs the full
hundred (about 4 minutes on 2 cores), `APPLIANCE_POWERCUT_SEED` picks other points.
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
POINTS = int(os.environ.get("APPLIANCE_POWERCUT_POINTS", "24"))
SEED = int(os.environ.get("APPLIANCE_POWERCUT_SEED", "12"))
SCRIPTS = ("exercise", "ksk-generate", "ksr-sign", "backup")
TOKEN = "reliability-powercut"


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
        out[f.name] = value.hex() if isinstance(value, bytes) else (
            str(value) if isinstance(value, Path) else value)
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


def child(spec_path: str) -> None:
    """Run one ceremony in this process (the kill hook reads APPLIANCE_KILL_AT)."""
    from tests.e2e import test_ceremony_ksk_ksr as e2e

    spec = json.loads(Path(spec_path).read_text())
    world = _world_from(spec["world"])
    outcome, op = e2e.run_script(world, spec["script"], spec["inputs"], Path(spec["ws"]))
    if outcome.status != "ended":
        print("\n".join(op.transcript[-20:]), file=sys.stderr)
        raise SystemExit(1)


def _spec(tmp: Path, world: Any, script: str, inputs: dict[str, str], ws: Path) -> Path:
    path = tmp / f"spec-{ws.name}.json"
    path.write_text(json.dumps({
        "world": _world_json(world),
        "script": script, "inputs": inputs, "ws": str(ws),
    }))
    return path


def _run(spec: Path, kill: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "APPLIANCE_KILL_AT"}
    env["PYTHONPATH"] = str(ROOT)
    if kill:
        env["APPLIANCE_KILL_AT"] = kill
    code = "import sys; from tests.integration.test_reliability_powercut import child; " \
           "child(sys.argv[1])"
    return subprocess.run([sys.executable, "-c", code, str(spec)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=180, check=False)


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
            knot = KnotZsk(tmp_path / "zsk", e2e.ZONE, 8, zsk_lifetime="40d",
                           rrsig_lifetime="30d", rrsig_refresh="10d")
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

    everywhere = [
        (script, f"journal:{n}:{phase}")
        for script in SCRIPTS
        for n in range(1, writes[script] + 1)
        for phase in ("before", "torn", "after")
    ] + [(script, f"action:{step}") for script in SCRIPTS for step in actions[script]]
    rng = random.Random(SEED)
    chosen = rng.sample(everywhere, min(POINTS, len(everywhere)))
    if len(SCRIPTS) <= POINTS:  # every script gets at least one point
        for script in SCRIPTS:
            if not any(s == script for s, _ in chosen):
                chosen[-1 - SCRIPTS.index(script)] = rng.choice(
                    [p for p in everywhere if p[0] == script])
    # ksk-generate points last: each makes the day's KSK anew, and the ksr-sign points
    # must sign with the reference's KSK
    chosen.sort(key=lambda p: p[0] == "ksk-generate")
    tally: Counter[str] = Counter()
    torn = 0
    for i, (script, point) in enumerate(chosen):
        ws = tmp_path / f"cut-{i:03d}-{script}"
        spec = _spec(tmp_path, world, script, inputs[script], ws)
        before = (
            _token_keys(softhsm, world, drop=ksk_label) if script == "ksk-generate" else None
        )
        killed = _run(spec, point)
        assert killed.returncode == -9, (script, point, killed.returncode, killed.stderr[-2000:])
        state = journal.read(ws / "journal.jsonl") if (ws / "journal.jsonl").exists() else None
        torn += bool(state and state.torn)
        again = _run(spec)
        if again.returncode != 0:
            # killed after the final signature: the ceremony had already ended and is kept
            assert state is not None and state.finished, (script, point, again.stderr[-2000:])
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
    print(f"\npower cuts (seed {SEED}): {len(chosen)} kill points of {len(everywhere)} "
          f"possible across {len(SCRIPTS)} scripts ({dict(tally)}), {torn} torn lines "
          f"resumed, every run resumed to a valid chain with the reference outputs, "
          f"{time.monotonic() - began:.0f} s")
