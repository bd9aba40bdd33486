"""The reader harness: pcscd with the vpcd driver, and the card server, as one world.

    world = up(Path("demo/cards"))     # pcscd (if not running) + card server; idempotent
    world.client.insert("co1", 0)
    down()                             # stops what up() started, nothing else

pcscd runs in the foreground of its own session (setsid) with a pid file, never with -a or
-d (they log every APDU, PINs included). If a pcscd already answers, it is used and left
alone. Works as root without systemd or udev. Run files live in VCARD_RUN_DIR (default
/run/vcard as root, else /tmp/vcard-<uid>).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from appliance.cards import pcsc
from appliance.errors import CardsError
from vcard.server import READER_PREFIX, CardServerClient

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
VPCD_CONF = Path("/etc/reader.conf.d/vpcd")


class HarnessError(CardsError):
    title = "Card readers"


def run_dir() -> Path:
    configured = os.environ.get("VCARD_RUN_DIR")
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/run/vcard")
    return Path(f"/tmp/vcard-{os.getuid()}")  # noqa: S108 - per-user, mode 0700


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is gone for our purposes


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _terminate(pid: int, timeout: float = 5.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.02)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def vpcd_readers() -> list[str]:
    try:
        return sorted(r for r in pcsc.list_readers() if r.startswith(READER_PREFIX))
    except pcsc.PcscUnavailable:
        return []


def pcscd_answers() -> bool:
    try:
        pcsc.list_readers()
    except pcsc.PcscUnavailable:
        return False
    return True


def start_pcscd(directory: Path | None = None, timeout: float = 10.0) -> bool:
    """Make sure pcscd runs with the two vpcd readers. True if this call started it."""
    directory = directory or run_dir()
    if len(vpcd_readers()) >= 2:
        return False
    binary = shutil.which("pcscd", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if binary is None:
        raise HarnessError(
            "pcscd is not installed",
            hint="Install it: `apt-get install pcscd vsmartcard-vpcd` (or `make setup`).",
        )
    if not VPCD_DRIVER.exists() or not VPCD_CONF.exists():
        raise HarnessError(
            "the vpcd reader driver (vsmartcard-vpcd) is not installed",
            hint="Install it: `apt-get install vsmartcard-vpcd` (or `make setup`).",
        )
    if pcscd_answers():
        raise HarnessError(
            "pcscd runs but shows no vpcd readers",
            hint="Stop it (`pkill -x pcscd` as root, or stop the pcscd service) and run "
            "`python -m vcard up` again so it starts with the vpcd driver.",
        )
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    log = open(directory / "pcscd.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(  # noqa: S603 - fixed program, no -a/-d (they log PINs)
            [binary, "--foreground"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    finally:
        log.close()
    (directory / "pcscd.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while len(vpcd_readers()) < 2:
        if proc.poll() is not None:
            (directory / "pcscd.pid").unlink(missing_ok=True)
            tail = (directory / "pcscd.log").read_text(errors="replace")[-400:]
            raise HarnessError(f"pcscd exited at start (code {proc.returncode}): {tail}")
        if time.monotonic() > deadline:
            raise HarnessError(f"pcscd did not show the vpcd readers within {timeout:.0f} s")
        time.sleep(0.02)
    return True


def stop_pcscd(directory: Path | None = None) -> bool:
    """Stop the pcscd that start_pcscd() started (never another one). True if stopped."""
    pid_file = (directory or run_dir()) / "pcscd.pid"
    pid = _read_pid(pid_file)
    if pid is None:
        return False
    if _alive(pid) and "pcscd" in _cmdline(pid):
        _terminate(pid)
    pid_file.unlink(missing_ok=True)
    return True


@dataclass(frozen=True)
class World:
    """The demo world's card readers, ready to use."""

    state_dir: Path
    run_dir: Path
    client: CardServerClient
    readers: tuple[str, ...]
    started_pcscd: bool


def control_socket(directory: Path | None = None) -> Path:
    return (directory or run_dir()) / "server.sock"


def start_server(state_dir: Path, directory: Path | None = None, timeout: float = 10.0) -> bool:
    """Start the card server on `state_dir` unless one runs already. True if started."""
    directory = directory or run_dir()
    client = CardServerClient(control_socket(directory))
    if client.ping():
        running = client.listing()["state"]
        if Path(running) != state_dir.resolve():
            raise HarnessError(
                f"a card server already runs on {running}",
                hint="Stop it first: `python -m vcard down`.",
            )
        return False
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    state_dir.mkdir(parents=True, exist_ok=True)
    log = open(directory / "server.log", "ab")  # noqa: SIM115 - handed to the child
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (root, str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH")) if p
    )
    try:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "vcard",
                "serve",
                "--state",
                str(state_dir.resolve()),
                "--control",
                str(control_socket(directory)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    finally:
        log.close()
    (directory / "server.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while not client.ping():
        if proc.poll() is not None:
            tail = (directory / "server.log").read_text(errors="replace")[-600:]
            raise HarnessError(f"the card server exited at start: {tail}")
        if time.monotonic() > deadline:
            raise HarnessError(f"the card server did not answer within {timeout:.0f} s")
        time.sleep(0.02)
    return True


def stop_server(directory: Path | None = None) -> bool:
    directory = directory or run_dir()
    client = CardServerClient(control_socket(directory), timeout=20)
    pid = _read_pid(directory / "server.pid")
    stopped = False
    if client.ping():
        with contextlib.suppress(Exception):
            client.request("shutdown")
        stopped = True
    if pid is not None:
        deadline = time.monotonic() + 10
        while _alive(pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.02)
        if _alive(pid) and "vcard" in _cmdline(pid):
            _terminate(pid)
        (directory / "server.pid").unlink(missing_ok=True)
        stopped = True
    return stopped


def up(state_dir: Path, directory: Path | None = None) -> World:
    """pcscd + vpcd readers + card server on `state_dir`. Calling it twice is harmless."""
    directory = directory or run_dir()
    started = start_pcscd(directory)
    start_server(state_dir, directory)
    (directory / "world.json").write_text(
        json.dumps({"state": str(state_dir.resolve()), "started_pcscd": started})
    )
    return World(
        state_dir=state_dir.resolve(),
        run_dir=directory,
        client=CardServerClient(control_socket(directory)),
        readers=tuple(vpcd_readers()),
        started_pcscd=started or (directory / "pcscd.pid").exists(),
    )


def down(directory: Path | None = None) -> None:
    """Remove the cards, stop the card server, stop pcscd if up() started it."""
    directory = directory or run_dir()
    stop_server(directory)
    stop_pcscd(directory)
    (directory / "world.json").unlink(missing_ok=True)
