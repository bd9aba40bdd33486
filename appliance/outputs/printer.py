"""Printing through CUPS, with the PDF always kept on the media.

The sheet is first written to the media folder (so there is always a copy to print later),
then sent with `lp -d QUEUE`. The job is followed over IPP until CUPS says it completed
or it failed, or the wait ends while it is still queued (a printer out of paper). Without a
configured queue the operator is told where the PDF is.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from appliance import atomic
from appliance.outputs.errors import PrintError

Status = Literal["printed", "queued", "failed", "saved"]
_JOB = re.compile(r"request id is (\S+)")


@dataclass(frozen=True)
class PrintOutcome:
    status: Status
    pdf_path: Path
    queue: str = ""
    job_id: str = ""
    detail: str = ""

    def operator_text(self) -> str:
        if self.status == "saved":
            return (
                f"No printer is configured: the sheet was saved to {self.pdf_path}. "
                "Print it from there on a trusted printer."
            )
        if self.status == "printed":
            return f"Printed on {self.queue} (job {self.job_id}); a copy is on {self.pdf_path}."
        if self.status == "queued":
            return (
                f"Job {self.job_id} is still waiting on {self.queue}: check the printer "
                f"(paper, power, cable). A copy is on {self.pdf_path}."
            )
        return (
            f"Printing on {self.queue} failed: {self.detail}. The sheet is on "
            f"{self.pdf_path}; fix the printer and print it again."
        )


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise PrintError(
            f"the CUPS client '{name}' is missing",
            hint="Install the Debian package cups-client (and cups-bsd).",
        )
    return path


def _env(server: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if server:
        env["CUPS_SERVER"] = server
    return env


def _run(args: list[str], server: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - fixed CUPS tools, our arguments
        args, capture_output=True, text=True, check=False, env=_env(server), timeout=30
    )


def job_status(job_id: str, queue: str, server: str | None = None) -> tuple[Status, str]:
    """(status, CUPS state) of a job: printed once completed, failed if cancelled or
    aborted, else queued (pending, held, or on a stopped printer)."""
    from appliance.outputs import ipp

    number = int(job_id.rpartition("-")[2])
    state, reasons = ipp.job_state(queue, number, server)
    detail = state + (f" ({', '.join(reasons)})" if reasons else "")
    if state == "completed":
        return "printed", detail
    if state in ("canceled", "aborted"):
        return "failed", detail
    return "queued", detail


def print_or_save(
    pdf: bytes,
    media_dir: Path,
    filename: str,
    queue: str = "",
    *,
    title: str = "ceremony outputs",
    copies: int = 1,
    server: str | None = None,
    wait_seconds: float = 60.0,
) -> PrintOutcome:
    """Save `pdf` as media_dir/filename, then print it on `queue` if one is configured."""
    path = Path(media_dir) / filename
    atomic.write_bytes(path, pdf)
    if not queue:
        return PrintOutcome("saved", path)
    lp = _tool("lp")
    if not 1 <= copies <= 20:
        raise PrintError(f"{copies} copies: ask for 1 to 20")
    sent = _run([lp, "-d", queue, "-n", str(copies), "-t", title, str(path)], server)
    match = _JOB.search(sent.stdout)
    if sent.returncode != 0 or match is None:
        detail = (sent.stderr or sent.stdout).strip() or f"lp exited {sent.returncode}"
        return PrintOutcome("failed", path, queue, detail=detail)
    job = match.group(1)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            status, detail = job_status(job, queue, server)
        except PrintError as exc:
            return PrintOutcome(
                "queued", path, queue, job, f"sent, but its state is unknown: {exc.message}"
            )
        if status != "queued" or time.monotonic() >= deadline:
            return PrintOutcome(status, path, queue, job, f"CUPS reports the job {detail}")
        time.sleep(0.5)
