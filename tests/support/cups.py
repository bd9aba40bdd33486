"""A private cupsd for printing tests: its own config, socket, spool and a PDF-writing queue.

Nothing touches the system's CUPS: cupsd runs in the foreground from a temporary folder with
ServerBin pointing at a copy of the system's that adds one backend, `pdfdir`, which writes
each job's document into a folder (a raw queue passes our PDF through unchanged). Needs
root (cupsd drops filters and backends to the `lp` user).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.services import need, need_tool

SYSTEM_SERVERBIN = Path("/usr/lib/cups")

_BACKEND = """#!/bin/sh
# Test backend: write the job's document into the folder named by the device URI.
if [ $# -eq 0 ]; then echo 'file pdfdir "Unknown" "Write jobs to a folder"'; exit 0; fi
dir="${DEVICE_URI#pdfdir:}"
if [ -n "$6" ]; then cat "$6"; else cat; fi > "$dir/job-$1.pdf.tmp" || exit 1
mv "$dir/job-$1.pdf.tmp" "$dir/job-$1.pdf" || exit 1
"""

_CUPSD_CONF = """Listen {socket}
LogLevel info
WebInterface No
Browsing No
DefaultAuthType None
<Location />
  Order allow,deny
  Allow all
</Location>
<Location /admin>
  Order allow,deny
  Allow all
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
"""

_FILES_CONF = """ServerRoot {root}/conf
ServerBin {root}/serverbin
RequestRoot {root}/spool
TempDir {root}/tmp
StateDir {root}/state
CacheDir {root}/cache
AccessLog {root}/log/access_log
ErrorLog {root}/log/error_log
PageLog {root}/log/page_log
Printcap {root}/state/printcap
User lp
Group lp
SystemGroup root
"""


@dataclass
class Cups:
    root: Path
    socket: str
    out: Path
    queue: str

    def env(self) -> dict[str, str]:
        return {**os.environ, "CUPS_SERVER": self.socket}

    def add_queue(self, name: str, device_folder: Path, error_policy: str = "abort-job") -> None:
        subprocess.run(
            [
                "lpadmin", "-p", name, "-v", f"pdfdir:{device_folder}", "-E", "-m", "raw",
                "-o", f"printer-error-policy={error_policy}",
            ],
            env=self.env(), check=True, capture_output=True, text=True,
        )  # fmt: skip

    def printed(self) -> list[Path]:
        return sorted(self.out.glob("job-*.pdf"))

    def log(self) -> str:
        path = self.root / "log" / "error_log"
        return path.read_text(errors="replace") if path.exists() else ""


def _serverbin(target: Path) -> None:
    target.mkdir()
    for entry in SYSTEM_SERVERBIN.iterdir():
        if entry.name != "backend":
            (target / entry.name).symlink_to(entry)
    backends = target / "backend"
    backends.mkdir()
    for entry in (SYSTEM_SERVERBIN / "backend").iterdir():
        (backends / entry.name).symlink_to(entry)
    script = backends / "pdfdir"
    script.write_text(_BACKEND)
    script.chmod(0o755)


def _wait_for_socket(path: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"cupsd exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(path)
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("cupsd did not open its socket within 15 s")


@pytest.fixture(scope="module")
def cups() -> Iterator[Cups]:
    """A running private cupsd with queue 'ceremony-pdf' writing jobs into `out`."""
    cupsd = need_tool("cupsd", "cups-daemon")
    need_tool("lpadmin", "cups-client")
    need_tool("lp", "cups-client")
    need(os.geteuid() == 0, "root (cupsd must start as root)", "Run the tests as root.")
    # Not under pytest's tmp_path: its 0700 parents would lock out the `lp` user.
    root = Path(tempfile.mkdtemp(prefix="appliance-cups-"))
    root.chmod(0o755)
    for sub in ("conf", "spool", "state", "cache", "log"):
        (root / sub).mkdir(mode=0o755)
    for sub in ("tmp", "out"):
        (root / sub).mkdir()
        (root / sub).chmod(0o1777)
    _serverbin(root / "serverbin")
    sock = str(root / "cups.sock")
    (root / "conf" / "cupsd.conf").write_text(_CUPSD_CONF.format(socket=sock))
    (root / "conf" / "cups-files.conf").write_text(_FILES_CONF.format(root=root))
    log = root / "log" / "error_log"
    log.touch()
    proc = subprocess.Popen(
        [
            cupsd, "-f",
            "-c", str(root / "conf" / "cupsd.conf"),
            "-s", str(root / "conf" / "cups-files.conf"),
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_for_socket(sock, proc, log)
        server = Cups(root, sock, root / "out", "ceremony-pdf")
        server.add_queue(server.queue, server.out)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)
