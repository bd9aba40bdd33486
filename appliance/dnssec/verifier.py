"""A verification worker process: checks RRSIG signatures on another core while the HSM signs.

cryptography holds the GIL while it verifies, so a thread cannot overlap verification with
signing; a child process can. The child gets public data only (the DNSKEY and the signed
data with its signature) over a pipe, in length-prefixed frames, and answers with the
indexes that failed. Run as `python -m appliance.dnssec.verifier`.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import IO

_U32 = struct.Struct("!I")


def encode_batch(algorithm: int, dnskey_key: bytes, items: list[tuple[bytes, bytes]]) -> bytes:
    parts = [struct.pack("!BH", algorithm, len(dnskey_key)), dnskey_key, _U32.pack(len(items))]
    for data, signature in items:
        parts += [_U32.pack(len(data)), data, struct.pack("!H", len(signature)), signature]
    return b"".join(parts)


def decode_batch(payload: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    algorithm, key_len = struct.unpack_from("!BH", payload, 0)
    at = 3
    key = payload[at : at + key_len]
    at += key_len
    (count,) = _U32.unpack_from(payload, at)
    at += 4
    items: list[tuple[bytes, bytes]] = []
    for _ in range(count):
        (data_len,) = _U32.unpack_from(payload, at)
        at += 4
        data = payload[at : at + data_len]
        at += data_len
        (sig_len,) = struct.unpack_from("!H", payload, at)
        at += 2
        items.append((data, payload[at : at + sig_len]))
        at += sig_len
    return algorithm, key, items


def _read_exactly(stream: IO[bytes], size: int) -> bytes | None:
    data = stream.read(size)
    if not data:
        return None
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            raise EOFError("truncated frame")
        data += more
    return data


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    from appliance.dnssec.sign import verify_batch

    while True:
        head = _read_exactly(stdin, 4)
        if head is None:
            return
        payload = _read_exactly(stdin, _U32.unpack(head)[0]) or b""
        failed = verify_batch(*decode_batch(payload))
        stdout.write(_U32.pack(len(failed)) + b"".join(_U32.pack(i) for i in failed))
        stdout.flush()


class VerifierProcess:
    """The parent's handle: submit batches, then `finish()` returns the failures per batch."""

    def __init__(self) -> None:
        # Public data only: no secret reaches the worker, not even through its environment.
        env = {k: v for k, v in os.environ.items() if "PIN" not in k.upper()}
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = package_root + os.pathsep + env.get("PYTHONPATH", "")
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "appliance.dnssec.verifier"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )
        self._batches = 0

    def submit(self, algorithm: int, dnskey_key: bytes, items: list[tuple[bytes, bytes]]) -> None:
        assert self._proc.stdin is not None  # noqa: S101 - set by Popen(stdin=PIPE)
        payload = encode_batch(algorithm, dnskey_key, items)
        self._proc.stdin.write(_U32.pack(len(payload)) + payload)
        self._batches += 1

    def finish(self) -> list[list[int]]:
        """Failed indexes per submitted batch; raises RuntimeError if the worker died."""
        assert self._proc.stdin is not None and self._proc.stdout is not None  # noqa: S101
        self._proc.stdin.close()
        out: list[list[int]] = []
        for _ in range(self._batches):
            head = _read_exactly(self._proc.stdout, 4)
            if head is None:
                break
            count = _U32.unpack(head)[0]
            body = _read_exactly(self._proc.stdout, 4 * count) if count else b""
            out.append([_U32.unpack_from(body or b"", 4 * i)[0] for i in range(count)])
        code = self._proc.wait()
        if code != 0 or len(out) != self._batches:
            raise RuntimeError(f"verifier process ended with code {code}")
        return out

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
