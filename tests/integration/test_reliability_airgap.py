"""The air-gap refusal, shown in real network namespaces (root; `ip netns`).

Each case runs `appliance run` (the mini ceremony, headless) inside a namespace this test
creates and deletes: with a veth pair up it refuses to start and says why; with only the
loopback it starts and the journal's start entry holds the check; with the development
override ([airgap] required = false) it starts, warns, and the journal records the failed,
not-enforced check (the journal summary prints "NOT ENFORCED"). No addresses are assigned,
no packet is sent; `ip netns exec` gives the process its own /sys, so the check reads the
namespace's interfaces exactly as it reads the appliance's on the live image.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.ceremony import journal
from tests.support.services import need

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "tests/data/ceremony/mini.toml"


@contextlib.contextmanager
def namespace(name: str, veth: bool) -> Iterator[str]:
    ip = shutil.which("ip", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    need(ip is not None, "the tool 'ip'", "Install the Debian package iproute2.")
    need(os.geteuid() == 0, "root (to create network namespaces)", "Run the tests as root.")
    assert ip is not None
    subprocess.run([ip, "netns", "del", name], capture_output=True, check=False)
    made = subprocess.run([ip, "netns", "add", name], capture_output=True, text=True)
    need(made.returncode == 0, "network namespaces", made.stderr.strip())
    try:
        subprocess.run([ip, "-n", name, "link", "set", "lo", "up"], check=True)
        if veth:
            subprocess.run(
                [ip, "-n", name, "link", "add", "relv0", "type", "veth", "peer", "name", "relv1"],
                check=True,
            )
            subprocess.run([ip, "-n", name, "link", "set", "relv0", "up"], check=True)
            subprocess.run([ip, "-n", name, "link", "set", "relv1", "up"], check=True)
        yield ip
    finally:
        subprocess.run([ip, "netns", "del", name], capture_output=True, check=False)


def _files(tmp: Path, required: bool) -> list[str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    (tmp / "doc.txt").write_bytes(b"document\n")
    (tmp / "config.toml").write_text(
        '[hsm]\nmodule = "/usr/lib/softhsm/libsofthsm2.so"\n'
        f"[airgap]\nrequired = {'true' if required else 'false'}\n"
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
    return [
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
        "--workspace",
        str(tmp / "ws"),
    ]


def _run_in(ip: str, name: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "APPLIANCE_KILL_AT"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [ip, "netns", "exec", name, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        check=False,
    )


def test_a_veth_interface_up_refuses_the_ceremony(tmp_path: Path) -> None:
    argv = _files(tmp_path, required=True)
    with namespace(f"rel-veth-{os.getpid()}", veth=True) as ip:
        seen = _run_in(ip, f"rel-veth-{os.getpid()}", ["cat", "/proc/net/dev"])
        assert "relv0" in seen.stdout, seen  # the namespace is what the check will read
        run = _run_in(ip, f"rel-veth-{os.getpid()}", argv)
    assert run.returncode != 0
    assert "air-gap check failed" in run.stderr and "relv0" in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "ws/journal.jsonl").exists(), "nothing may start"


def test_only_loopback_starts_and_the_journal_holds_the_check(tmp_path: Path) -> None:
    argv = _files(tmp_path, required=True)
    with namespace(f"rel-lo-{os.getpid()}", veth=False) as ip:
        run = _run_in(ip, f"rel-lo-{os.getpid()}", argv)
    assert run.returncode == 0, run.stderr
    state = journal.read(tmp_path / "ws/journal.jsonl")
    air = state.entries[0].data["airgap"]
    assert air["ok"] is True and air["interfaces"] == ["lo"] and air["enforced"] is True
    step = next(e for e in state.entries if e.kind == "action" and e.step == "airgap")
    assert step.data["ok"] and step.data["result"]["interfaces"] == ["lo"]


def test_the_development_override_is_recorded_loudly(tmp_path: Path) -> None:
    argv = _files(tmp_path, required=False)
    name = f"rel-dev-{os.getpid()}"
    with namespace(name, veth=True) as ip:
        run = _run_in(ip, name, argv)
    assert run.returncode == 0, run.stderr
    assert "AIR GAP NOT ENFORCED" in run.stdout + run.stderr
    state = journal.read(tmp_path / "ws/journal.jsonl")
    air = state.entries[0].data["airgap"]
    assert air["ok"] is False and air["enforced"] is False
    assert any("relv0" in p for p in air["problems"])
    step = next(e for e in state.entries if e.kind == "action" and e.step == "airgap")
    assert step.data["result"]["enforced"] is False
    verify = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance",
            "verify",
            "journal",
            str(tmp_path / "ws/journal.jsonl"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert "NOT ENFORCED" in verify.stdout, verify.stdout


@pytest.mark.parametrize("veth", [True])
def test_no_namespace_is_left_behind(veth: bool) -> None:
    ip = shutil.which("ip", path="/usr/sbin:/sbin:" + os.environ.get("PATH", ""))
    need(ip is not None, "the tool 'ip'", "Install the Debian package iproute2.")
    assert ip is not None
    listed = subprocess.run([ip, "netns", "list"], capture_output=True, text=True).stdout
    assert f"rel-veth-{os.getpid()}" not in listed and f"rel-dev-{os.getpid()}" not in listed
