"""Verification worker processes: check RRSIG signatures on other cores while the HSM signs.

cryptography holds the GIL while it verifies, so a thread cannot overlap verification with
signing; a child process can. The child gets public data only (the DNSKEY and the signed
data with its signature) over a pipe, in length-prefixed frames, and answers each frame with
the indexes that failed. It imports `cryptography` alone (not dnspython), so it is verifying
within a few hundredths of a second of its start. Run as `python -m appliance.dnssec.verifier`.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import select
import struct
import subprocess
import sys
from collections.abc import Callable
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


@functools.lru_cache(maxsize=16)  # a worker gets the same key with every batch
def public_verifier(algorithm: int, key: bytes) -> Callable[[bytes, bytes], bool]:
    """A check (data, DNSSEC signature) -> verifies? for a DNSKEY's public key (RFC 3110,
    RFC 6605, RFC 8080 encodings), built once; the same in the worker and the parent."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

    if algorithm in (13, 14):
        size = 32 if algorithm == 13 else 48
        curve = ec.SECP256R1() if algorithm == 13 else ec.SECP384R1()
        # hashed here and verified as pre-hashed: a few microseconds less per RRSIG
        digest_of = hashlib.sha256 if algorithm == 13 else hashlib.sha384
        scheme = ec.ECDSA(Prehashed(hashes.SHA256() if algorithm == 13 else hashes.SHA384()))
        ec_key = ec.EllipticCurvePublicKey.from_encoded_point(curve, b"\x04" + key)

        def ecdsa(data: bytes, signature: bytes) -> bool:
            if len(signature) != 2 * size:
                return False
            der = encode_dss_signature(
                int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            )
            try:
                ec_key.verify(der, digest_of(data).digest(), scheme)
            except InvalidSignature:
                return False
            return True

        return ecdsa
    if algorithm in (8, 10):
        at, length = (3, int.from_bytes(key[1:3], "big")) if key[0] == 0 else (1, key[0])
        rsa_key = rsa.RSAPublicNumbers(
            int.from_bytes(key[at : at + length], "big"), int.from_bytes(key[at + length :], "big")
        ).public_key()
        digest = hashes.SHA256() if algorithm == 8 else hashes.SHA512()

        def rsassa(data: bytes, signature: bytes) -> bool:
            try:
                rsa_key.verify(signature, data, padding.PKCS1v15(), digest)
            except InvalidSignature:
                return False
            return True

        return rsassa
    if algorithm in (15, 16):
        ed_key = (
            ed25519.Ed25519PublicKey if algorithm == 15 else ed448.Ed448PublicKey
        ).from_public_bytes(key)

        def eddsa(data: bytes, signature: bytes) -> bool:
            try:
                ed_key.verify(signature, data)
            except InvalidSignature:
                return False
            return True

        return eddsa
    raise ValueError(f"DNSSEC algorithm {algorithm} is not verified here")


def verify_batch(algorithm: int, key: bytes, items: list[tuple[bytes, bytes]]) -> list[int]:
    """Indexes of the (data, signature) pairs that do not verify."""
    check = public_verifier(algorithm, key)
    return [i for i, (data, signature) in enumerate(items) if not check(data, signature)]


def serve(stdin: IO[bytes], stdout: IO[bytes]) -> None:
    while True:
        head = _read_exactly(stdin, 4)
        if head is None:
            return
        payload = _read_exactly(stdin, _U32.unpack(head)[0]) or b""
        failed = verify_batch(*decode_batch(payload))
        stdout.write(_U32.pack(len(failed)) + b"".join(_U32.pack(i) for i in failed))
        stdout.flush()


class VerifierProcess:
    """The parent's handle on one worker: submit batches, collect the answers in order."""

    def __init__(self) -> None:
        # Public data only: no secret reaches the worker, not even through its environment.
        env = {k: v for k, v in os.environ.items() if "PIN" not in k.upper()}
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = package_root + os.pathsep + env.get("PYTHONPATH", "")
        self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "appliance.dnssec.verifier"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert self._proc.stdin is not None  # noqa: S101 - set by Popen(stdin=PIPE)
        with contextlib.suppress(OSError):  # room for every batch in flight: a submit
            fcntl.fcntl(self._proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, 1 << 20)  # never waits
        self._pending = 0
        self._received = bytearray()

    @property
    def in_flight(self) -> int:
        """Batches submitted and not yet answered."""
        return self._pending

    def submit(self, algorithm: int, dnskey_key: bytes, items: list[tuple[bytes, bytes]]) -> None:
        assert self._proc.stdin is not None  # noqa: S101 - set by Popen(stdin=PIPE)
        payload = encode_batch(algorithm, dnskey_key, items)
        self._proc.stdin.write(_U32.pack(len(payload)) + payload)
        self._proc.stdin.flush()
        self._pending += 1

    def collect(self, *, wait: bool) -> list[list[int]]:
        """Failed indexes of each batch answered so far, oldest first; with `wait`, at
        least one (while any is pending). Raises RuntimeError if the worker died."""
        assert self._proc.stdout is not None  # noqa: S101 - set by Popen(stdout=PIPE)
        fd = self._proc.stdout.fileno()
        answers: list[list[int]] = []
        while self._pending:
            answer = self._next_answer()
            if answer is not None:
                answers.append(answer)
                self._pending -= 1
                continue
            if (answers or not wait) and not select.select([fd], [], [], 0)[0]:
                break
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise RuntimeError(f"verifier process ended with code {self._proc.wait()}")
            self._received += chunk
        return answers

    def _next_answer(self) -> list[int] | None:
        if len(self._received) < 4:
            return None
        count = _U32.unpack_from(self._received, 0)[0]
        if len(self._received) < 4 + 4 * count:
            return None
        failed = [_U32.unpack_from(self._received, 4 + 4 * i)[0] for i in range(count)]
        del self._received[: 4 + 4 * count]
        return failed

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer)
