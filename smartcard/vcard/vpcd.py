"""The card's end of vsmartcard's vpcd reader driver.

vpcd (loaded by pcscd) listens on TCP 35963 for reader 0 and 35964 for reader 1. A card is
"inserted" by connecting and "removed" by closing the connection. Each message either way
is a 2-byte big-endian length and a payload; a 1-byte payload from the reader is a control
code (0 power off, 1 power on, 2 reset, 4 send the ATR), anything longer is an APDU.

vpcd writes the length and the payload in two segments: without TCP_QUICKACK before each
recv the kernel's delayed ACK adds ~40 ms to every APDU.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from vcard.card import VirtualCard

BASE_PORT = 35963
POWER_OFF, POWER_ON, RESET, GET_ATR = 0, 1, 2, 4


def port_of(reader: int) -> int:
    if reader not in (0, 1):
        raise ValueError("vpcd has two readers: 0 and 1")
    return BASE_PORT + reader


class VpcdLink:
    """One card inserted into one vpcd reader, served on its own thread."""

    def __init__(
        self, card: VirtualCard, reader: int, host: str = "127.0.0.1", port: int | None = None
    ) -> None:
        self.card = card
        self.reader = reader
        self._lock = threading.Lock()
        self._sock = socket.create_connection((host, port or port_of(reader)), timeout=5)
        self._sock.settimeout(None)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._closed = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, name=f"vpcd-{reader}-{card.state.serial}", daemon=True
        )
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _recv_exact(self, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            with contextlib.suppress(OSError):
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            chunk = self._sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _send(self, payload: bytes) -> None:
        self._sock.sendall(len(payload).to_bytes(2, "big") + payload)

    def _serve(self) -> None:
        try:
            while not self._closed.is_set():
                head = self._recv_exact(2)
                if head is None:
                    break
                size = int.from_bytes(head, "big")
                payload = self._recv_exact(size) if size else b""
                if payload is None:
                    break
                with self._lock:
                    if len(payload) == 1:
                        code = payload[0]
                        if code in (POWER_OFF, POWER_ON, RESET):
                            self.card.reset()
                        elif code == GET_ATR:
                            self._send(self.card.atr)
                    elif payload:
                        self._send(self.card.process(payload))
        except OSError:
            pass
        finally:
            self._closed.set()
            with contextlib.suppress(OSError):
                self._sock.close()

    def remove(self) -> None:
        """Pull the card: close the connection (vpcd reports the slot empty).

        Waits for an APDU in progress to finish, so the card's memory is never half
        written, as a real card finishes its EEPROM write on the capacitor.
        """
        with self._lock:
            self._closed.set()
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
