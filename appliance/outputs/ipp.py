"""Just enough IPP to ask CUPS what happened to a job (Get-Job-Attributes, RFC 8011).

`lpstat` lists finished jobs without saying whether they completed, were cancelled or were
aborted; the operator must know whether the sheet actually printed. The request goes to
the same server `lp` uses: $CUPS_SERVER (a socket path or host[:port]) or the local socket.
"""

from __future__ import annotations

import http.client
import os
import socket
import struct
from pathlib import Path

from appliance.outputs.errors import PrintError

DEFAULT_SOCKET = Path("/run/cups/cups.sock")
#: RFC 8011 job-state values.
JOB_STATES = {
    3: "pending",
    4: "pending-held",
    5: "processing",
    6: "processing-stopped",
    7: "canceled",
    8: "aborted",
    9: "completed",
}


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def _connection(server: str | None, timeout: float) -> http.client.HTTPConnection:
    server = server or os.environ.get("CUPS_SERVER") or ""
    if not server and DEFAULT_SOCKET.exists():
        server = str(DEFAULT_SOCKET)
    if server.startswith("/"):
        return _UnixConnection(server, timeout)
    host, _, port = (server or "localhost").partition(":")
    return http.client.HTTPConnection(host, int(port or 631), timeout=timeout)


def _attr(tag: int, name: str, value: bytes) -> bytes:
    raw = name.encode()
    return struct.pack(">BH", tag, len(raw)) + raw + struct.pack(">H", len(value)) + value


def _request(queue: str, job_id: int) -> bytes:
    body = struct.pack(">BBHI", 2, 0, 0x0009, 1) + b"\x01"
    body += _attr(0x47, "attributes-charset", b"utf-8")
    body += _attr(0x48, "attributes-natural-language", b"en")
    body += _attr(0x45, "printer-uri", f"ipp://localhost/printers/{queue}".encode())
    body += _attr(0x21, "job-id", struct.pack(">i", job_id))
    body += _attr(0x44, "requested-attributes", b"job-state")
    body += _attr(0x44, "", b"job-state-reasons")
    return body + b"\x03"


def _parse(data: bytes) -> dict[str, list[bytes]]:
    if len(data) < 8:
        raise PrintError("CUPS sent a truncated IPP response")
    status = struct.unpack(">H", data[2:4])[0]
    if status >= 0x0400:
        raise PrintError(f"CUPS answered the job query with IPP status 0x{status:04x}")
    attrs: dict[str, list[bytes]] = {}
    pos, name = 8, ""
    while pos < len(data):
        tag = data[pos]
        pos += 1
        if tag == 0x03:
            break
        if tag < 0x10:  # a group delimiter
            continue
        (nlen,) = struct.unpack(">H", data[pos : pos + 2])
        if nlen:
            name = data[pos + 2 : pos + 2 + nlen].decode("utf-8", "replace")
        pos += 2 + nlen
        (vlen,) = struct.unpack(">H", data[pos : pos + 2])
        attrs.setdefault(name, []).append(data[pos + 2 : pos + 2 + vlen])
        pos += 2 + vlen
    return attrs


def job_state(
    queue: str, job_id: int, server: str | None = None, timeout: float = 10.0
) -> tuple[str, list[str]]:
    """(state name, state reasons) of a job, e.g. ('completed', ['job-completed-successfully'])."""
    conn = _connection(server, timeout)
    try:
        conn.request(
            "POST",
            "/jobs/",
            body=_request(queue, job_id),
            headers={"Content-Type": "application/ipp"},
        )
        response = conn.getresponse()
        data = response.read()
    except OSError as exc:
        raise PrintError(
            f"cannot ask CUPS about job {job_id}: {exc}", hint="Check that cupsd is running."
        ) from None
    finally:
        conn.close()
    if response.status != 200:
        raise PrintError(f"CUPS answered the job query with HTTP {response.status}")
    try:
        attrs = _parse(data)
    except struct.error:
        raise PrintError("CUPS sent a malformed IPP response") from None
    states = attrs.get("job-state")
    if not states or len(states[0]) != 4:
        raise PrintError(f"CUPS did not report the state of job {job_id}")
    state = JOB_STATES.get(struct.unpack(">i", states[0])[0], "unknown")
    reasons = [r.decode("utf-8", "replace") for r in attrs.get("job-state-reasons", [])]
    return state, reasons
