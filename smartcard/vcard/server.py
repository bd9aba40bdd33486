"""The card server: a process holding the demo world's virtual cards.

Cards live as JSON state files in one folder (`<name>.json`). The server inserts a card
into vpcd reader 0 or 1 and removes it on request; requests come as JSON lines on a Unix
socket, so tests, the demo and the TUI's card tray script the room:

    {"op": "insert", "card": "co1", "reader": 0}      -> {"ok": true, "serial": "..."}
    {"op": "remove", "reader": 0}  or {"op": "remove", "card": "co1"}
    {"op": "create", "card": "co1", "serial": "0000C001"}
    {"op": "list"}  {"op": "ping"}  {"op": "shutdown"}

Insert and remove return only when pcscd has seen the change (its event counter moved),
so the next step can talk to the card, or insert another one, right away.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import socketserver
import threading
from pathlib import Path
from typing import Any

from appliance.cards import pcsc
from appliance.errors import ApplianceError
from vcard.card import VirtualCard
from vcard.state import CardState
from vcard.vpcd import VpcdLink, port_of

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
READER_PREFIX = "Virtual PCD"


class ServerError(Exception):
    """A request the server refuses; the text goes back to the client."""


def reader_names() -> list[str]:
    """pcscd's names of vpcd reader 0 and 1."""
    return sorted(r for r in pcsc.list_readers() if r.startswith(READER_PREFIX))


class CardServer:
    def __init__(self, state_dir: Path, *, sync_pcscd: bool = True) -> None:
        self.state_dir = state_dir
        self.sync_pcscd = sync_pcscd
        self.links: dict[int, VpcdLink] = {}
        self._lock = threading.Lock()
        self.stopping = threading.Event()

    # -- operations -------------------------------------------------------------

    def _path(self, card: str) -> Path:
        if not isinstance(card, str) or not NAME.match(card):
            raise ServerError(f"bad card name {card!r}: letters, digits, '.', '_', '-'")
        return self.state_dir / f"{card}.json"

    def cards(self) -> list[dict[str, Any]]:
        out = []
        for path in sorted(self.state_dir.glob("*.json")):
            try:
                serial = CardState.load(path).serial
            except (ValueError, TypeError, OSError) as exc:
                serial = f"unreadable: {exc}"
            out.append({"card": path.stem, "serial": serial})
        return out

    def create(self, card: str, serial: str | None = None) -> dict[str, Any]:
        path = self._path(card)
        if path.exists():
            raise ServerError(f"card '{card}' exists already")
        try:
            state = CardState.factory(serial)
        except ValueError as exc:
            raise ServerError(str(exc)) from None
        state.save(path)
        return {"card": card, "serial": state.serial}

    def _slot(self, reader: int) -> tuple[str, pcsc.SlotState] | None:
        if not self.sync_pcscd:
            return None
        names = reader_names()
        if len(names) <= reader:
            raise ServerError(f"pcscd shows no vpcd reader {reader} (readers: {names})")
        name = names[reader]
        return name, pcsc.slot_states([name])[0]

    def insert(self, card: str, reader: int) -> dict[str, Any]:
        path = self._path(card)
        if reader not in (0, 1):
            raise ServerError("reader must be 0 or 1 (vpcd has two readers)")
        with self._lock:
            if reader in self.links:
                held = self.links[reader].card.path
                raise ServerError(f"reader {reader} holds card '{held and held.stem}'; remove it")
            for other, link in self.links.items():
                if link.card.path == path:
                    raise ServerError(f"card '{card}' sits in reader {other}; remove it first")
            if not path.exists():
                known = ", ".join(c["card"] for c in self.cards()) or "none"
                raise ServerError(f"no card '{card}' in {self.state_dir} (cards: {known})")
            before = self._slot(reader)
            try:
                link = VpcdLink(VirtualCard.open(path), reader)
            except OSError as exc:
                raise ServerError(
                    f"vpcd is not listening on port {port_of(reader)} ({exc}); "
                    "start pcscd with the vpcd driver (python -m vcard up)"
                ) from None
            self.links[reader] = link
            if before is not None:
                pcsc.wait_slot(before[0], present=True, not_counter=before[1].counter)
            return {"card": card, "reader": reader, "serial": link.card.state.serial}

    def remove(self, reader: int | None = None, card: str | None = None) -> dict[str, Any]:
        with self._lock:
            if reader is None and card is not None:
                path = self._path(card)
                matches = [r for r, link in self.links.items() if link.card.path == path]
                if not matches:
                    raise ServerError(f"card '{card}' is not in a reader")
                reader = matches[0]
            if reader is None or reader not in self.links:
                raise ServerError(f"reader {reader} is empty")
            before = self._slot(reader)
            link = self.links.pop(reader)
            link.remove()
            if before is not None:
                pcsc.wait_slot(before[0], present=False, not_counter=before[1].counter)
            name = link.card.path.stem if link.card.path else ""
            return {"card": name, "reader": reader, "serial": link.card.state.serial}

    def listing(self) -> dict[str, Any]:
        readers: list[dict[str, Any] | None] = [None, None]
        for r, link in sorted(self.links.items()):
            readers[r] = {
                "card": link.card.path.stem if link.card.path else "",
                "serial": link.card.state.serial,
            }
        return {"readers": readers, "cards": self.cards(), "state": str(self.state_dir)}

    def remove_all(self) -> None:
        for reader in sorted(self.links):
            with contextlib.suppress(ServerError, ApplianceError):
                self.remove(reader)
        for link in self.links.values():
            link.remove()
        self.links.clear()

    # -- requests ---------------------------------------------------------------

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        try:
            if op == "ping":
                return {"ok": True, "pid": os.getpid()}
            if op == "list":
                return {"ok": True, **self.listing()}
            if op == "create":
                return {"ok": True, **self.create(request.get("card", ""), request.get("serial"))}
            if op == "insert":
                return {
                    "ok": True,
                    **self.insert(request.get("card", ""), int(request.get("reader", 0))),
                }
            if op == "remove":
                reader = request.get("reader")
                return {
                    "ok": True,
                    **self.remove(None if reader is None else int(reader), request.get("card")),
                }
            if op == "shutdown":
                self.stopping.set()
                return {"ok": True}
            raise ServerError(f"unknown op {op!r}: use insert, remove, create, list, ping")
        except (ServerError, ValueError, TypeError) as exc:
            return {"ok": False, "error": str(exc)}
        except ApplianceError as exc:
            return {"ok": False, "error": exc.message}


def serve(state_dir: Path, control: Path, *, sync_pcscd: bool = True) -> None:
    """Run the server until a shutdown request or SIGTERM; remove every card on the way out."""
    state_dir.mkdir(parents=True, exist_ok=True)
    server = CardServer(state_dir, sync_pcscd=sync_pcscd)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            for line in self.rfile:
                try:
                    request = json.loads(line)
                    if not isinstance(request, dict):
                        raise ValueError("a request is a JSON object")
                    reply = server.handle(request)
                except ValueError as exc:
                    reply = {"ok": False, "error": f"bad request: {exc}"}
                self.wfile.write(json.dumps(reply).encode() + b"\n")
                self.wfile.flush()
                if server.stopping.is_set():
                    break

    control.unlink(missing_ok=True)
    listener = socketserver.ThreadingUnixStreamServer(str(control), Handler)
    listener.daemon_threads = True
    os.chmod(control, 0o600)
    signal.signal(signal.SIGTERM, lambda *_: server.stopping.set())
    thread = threading.Thread(target=listener.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        while not server.stopping.wait(0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        listener.shutdown()
        thread.join()
        listener.server_close()
        server.remove_all()
        control.unlink(missing_ok=True)


class CardServerClient:
    """Script the room: insert, remove, list cards in the running card server."""

    def __init__(self, control: Path, timeout: float = 15.0) -> None:
        self.control = control
        self.timeout = timeout

    def request(self, op: str, **args: Any) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            try:
                sock.connect(str(self.control))
            except OSError as exc:
                raise ServerError(
                    f"the card server is not running ({self.control}: {exc.strerror}); "
                    "start it with `python -m vcard up --state DIR`"
                ) from None
            sock.sendall(json.dumps({"op": op, **args}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        reply: dict[str, Any] = json.loads(data)
        if not reply.get("ok"):
            raise ServerError(str(reply.get("error", "the card server refused")))
        return reply

    def ping(self) -> bool:
        try:
            self.request("ping")
        except (ServerError, OSError, ValueError):
            return False
        return True

    def create(self, card: str, serial: str | None = None) -> str:
        return str(self.request("create", card=card, serial=serial)["serial"])

    def insert(self, card: str, reader: int = 0) -> str:
        """Insert `card` into vpcd reader 0 or 1; returns its serial once pcscd sees it."""
        return str(self.request("insert", card=card, reader=reader)["serial"])

    def remove(self, reader: int | None = None, card: str | None = None) -> None:
        args: dict[str, Any] = {"reader": reader} if reader is not None else {"card": card}
        self.request("remove", **args)

    def listing(self) -> dict[str, Any]:
        return self.request("list")

    def remove_all(self) -> None:
        for reader, held in enumerate(self.listing()["readers"]):
            if held is not None:
                self.remove(reader)
