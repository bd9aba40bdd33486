"""Virtual cards through the real pcscd, for integration tests.

`card_world` (session scope): pcscd with the vpcd readers (started if not running) and a
card server on a private folder of card state files and a private run directory.
`card_room` (per test): make cards, insert/remove them, open sessions by serial; at the end
every session is closed and every card removed (an open pyscard handle on a card that stays
inserted can hang the process at exit).

Locally a missing pcscd/vpcd skips; in CI it fails (services.need).
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.services import need

if TYPE_CHECKING:
    from vcard.harness import World

    from appliance.cards.openpgp import OpenPgpSession
    from appliance.cards.pcsc import PcscTransport

_serials = itertools.count(0x5E000001)


@pytest.fixture(scope="session")
def card_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from vcard import harness

    need(
        shutil.which("pcscd", path=os.environ.get("PATH", "") + ":/usr/sbin") is not None,
        "the tool 'pcscd'",
        "Install the Debian package pcscd (make setup).",
    )
    need(
        harness.VPCD_DRIVER.exists(),
        "the vpcd reader driver",
        "Install the Debian package vsmartcard-vpcd.",
    )
    base = tmp_path_factory.mktemp("vcard")
    run = base / "run"
    with _machine_lock():
        try:
            world = harness.up(base / "cards", run)
        except harness.HarnessError as exc:
            need(False, "pcscd with the vpcd readers", exc.operator_text())
            raise
        try:
            world.client.remove_all()
            yield world
        finally:
            harness.down(run)


@contextlib.contextmanager
def _machine_lock(timeout: float = 600.0) -> Iterator[None]:
    """pcscd and vpcd's two readers are one per machine: test sessions take turns."""
    path = Path(tempfile.gettempdir()) / "vcard-tests.lock"
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail("another test session holds the virtual card readers")
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@dataclass(frozen=True)
class Card:
    name: str
    serial: str


@dataclass
class CardRoom:
    """One test's view of the readers."""

    world: World
    transports: list[PcscTransport] = field(default_factory=list)

    def new_card(self, label: str, serial: str | None = None) -> Card:
        """A factory-fresh card; its name is made unique in the session's card folder."""
        serial = serial or f"{next(_serials):08X}"
        name = f"{label}-{serial.lower()}"
        self.world.client.create(name, serial)
        return Card(name, serial)

    def insert(self, name: str, reader: int = 0) -> str:
        return self.world.client.insert(name, reader)

    def remove(self, reader: int) -> None:
        self.world.client.remove(reader)

    def reader(self, index: int) -> str:
        return self.world.readers[index]

    def transport(self, index: int) -> PcscTransport:
        from appliance.cards.pcsc import connect

        transport = connect(self.reader(index))
        self.transports.append(transport)
        return transport

    def session(self, index: int = 0) -> OpenPgpSession:
        from appliance.cards.openpgp import OpenPgpSession

        return OpenPgpSession(self.transport(index))

    def state_file(self, name: str) -> Path:
        return self.world.state_dir / f"{name}.json"

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
        self.transports.clear()
        self.world.client.remove_all()


@pytest.fixture
def card_room(card_world: World, request: pytest.FixtureRequest) -> Iterator[CardRoom]:
    room = CardRoom(card_world)
    try:
        yield room
    finally:
        room.close()
