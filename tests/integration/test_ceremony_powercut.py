"""Power cuts: SIGKILL the engine at every journal write and inside each action, resume.

The engine runs as a subprocess (`appliance run`) so SIGKILL is a real, unclean death. The
hook `APPLIANCE_KILL_AT` (appliance/ceremony/killpoints.py) names the point. After each
kill the same command resumes; every run must end with a verified, signed chain, the same
outputs as an uninterrupted run, and each step's action recorded exactly once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.ceremony import journal

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "tests/data/ceremony/mini.toml"


def _setup(tmp: Path) -> tuple[list[str], bytes]:
    (tmp / "root/sys/class/net/lo").mkdir(parents=True)
    (tmp / "doc.txt").write_bytes(b"KSR-like input that the ceremony reads aloud\n")
    (tmp / "config.toml").write_text(
        '[hsm]\nmodule = "/usr/lib/softhsm/libsofthsm2.so"\n[airgap]\nrequired = true\n'
    )
    (tmp / "answers.toml").write_text(
        '[attendance]\nCA = "Alice"\nIW = "Ian"\nCO1 = "Carol"\nCO2 = "Chris"\n'
        '[inputs]\ndoc = "doc.txt"\n'
    )
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    argv = [
        sys.executable,
        "-m",
        "appliance",
        "--config",
        str(tmp / "config.toml"),
        "run",
        str(MINI),
        "--answers",
        str(tmp / "answers.toml"),
        "--signing-key",
        str(tmp / "key.pem"),
        "--airgap-root",
        str(tmp / "root"),
        "--quiet",
        "--workspace",
    ]
    return argv, public


def _run(argv: list[str], ws: Path, kill: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "APPLIANCE_KILL_AT"}
    if kill:
        env["APPLIANCE_KILL_AT"] = kill
    return subprocess.run(
        [*argv, str(ws)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def _facts(ws: Path, public: bytes) -> dict[str, object]:
    """What must be identical whatever the interruptions: outputs and one result per step."""
    v = journal.verify(ws / "journal.jsonl", public)
    assert v.state.outcome == "ended", v.state.outcome
    assert v.unsigned_tail == 0 and v.signatures
    entries = v.state.entries
    actions = [e for e in entries if e.kind == "action"]
    assert all(e.data["ok"] for e in actions)
    steps = [e.step for e in actions]
    assert len(steps) == len(set(steps)), f"an action ran twice: {steps}"
    done = [e.step for e in entries if e.kind == "step_done"]
    assert len(done) == len(set(done)) == 4
    end = next(e for e in entries if e.kind == "end")
    return {
        "results": {e.step: e.data["result"] for e in actions},
        "outputs": end.data["outputs"],
        "input": (ws / "inputs/doc").read_bytes(),
    }


@pytest.fixture
def fast_tmp(tmp_path: Path) -> Iterator[Path]:
    """A folder in memory when the machine has one: SIGKILL keeps the page cache anyway, so
    tmpfs tests the same thing while the ~100 processes skip slow fsyncs."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="ceremony-powercut-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_sigkill_at_every_journal_write_and_in_every_action(fast_tmp: Path) -> None:
    tmp_path = fast_tmp
    argv, public = _setup(tmp_path)
    reference_ws = tmp_path / "reference"
    first = _run(argv, reference_ws)
    assert first.returncode == 0, first.stderr
    reference = _facts(reference_ws, public)
    writes = len((reference_ws / "journal.jsonl").read_bytes().splitlines())

    points = [
        f"journal:{n}:{phase}"
        for n in range(1, writes + 1)
        for phase in ("before", "torn", "after")
    ]
    points += ["action:airgap", "action:load-doc", "action:seal"]
    resumed_torn = 0
    for point in points:
        ws = tmp_path / point.replace(":", "-")
        killed = _run(argv, ws, kill=point)
        assert killed.returncode == -9, (point, killed.returncode, killed.stderr)
        state = journal.read(ws / "journal.jsonl")
        if state.torn:
            resumed_torn += 1
        again = _run(argv, ws)
        if again.returncode != 0:
            # killed after the final signature: the ceremony had already ended
            assert state.finished and state.entries[-1].kind == "signature", (point, again.stderr)
        assert _facts(ws, public) == reference, point
    print(
        f"\npower-cut test: {len(points)} kill points tried ({writes} journal writes x "
        f"before/torn/after + {len(points) - 3 * writes} inside actions), "
        f"{resumed_torn} torn lines resumed"
    )
    assert resumed_torn >= writes - 1
