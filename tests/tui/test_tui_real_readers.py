"""The console outside the demo: the readers pcscd shows, filled by hand.

The demo world's officers' cards are copied to the card server of the test readers (vpcd in
pcscd); a "person" inserts each card when the console asks and takes it out when told, and
the console reads them through `PcscReaders` (pyscard -> pcscd -> reader -> card), with no
card tray and no knowledge of the cards' names: the production path.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from appliance import demo
from appliance.ceremony import journal
from appliance.config import Config
from appliance.tui.cardroom import PcscReaders
from appliance.tui.screens.ceremony import CeremonyScreen
from tests.support.services import need_tool
from tests.tui.demo_driver import REPO, choose_script, demo_config, drive, make_app, softhsm_env

if TYPE_CHECKING:
    from vcard.harness import World

SCRIPT = REPO / "scripts" / "ksr-sign.toml"


class Person:
    """Puts one card at a time into the first reader, as a holder would."""

    def __init__(self, world: World, names: dict[str, str]) -> None:
        self.world, self.names = world, names
        self.current: str | None = None

    def insert(self, name: str) -> bool:
        if self.current == name:
            return False
        self.remove()
        self.world.client.insert(self.names[name], 0)
        self.current = name
        return True

    def remove(self) -> None:
        if self.current is not None:
            self.world.client.remove(0)
            self.current = None


@pytest.fixture
def ceremony_world(tmp_path: Path, card_world: World) -> Iterator[tuple[Config, Person]]:
    need_tool("softhsm2-util", "softhsm2")
    config = demo_config(tmp_path)
    restore = softhsm_env(config)
    world = demo.build_world(config)
    names = {}
    for card in demo.CARDS:  # the officers' cards, moved to the test readers' card server
        name = f"readers-{card.name}-{os.getpid()}"
        shutil.copyfile(world.card_path(card), card_world.state_dir / f"{name}.json")
        names[card.name] = name
    person = Person(card_world, names)
    try:
        yield config, person
    finally:
        card_world.client.remove_all()
        restore()


async def test_a_signing_ceremony_on_real_readers_filled_by_hand(
    ceremony_world: tuple[Config, Person], card_world: World, tmp_path: Path
) -> None:
    config, person = ceremony_world
    readers = PcscReaders(tuple(card_world.readers))
    app = make_app(config, tmp_path, tray=readers, demo=False)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            await choose_script(pilot, SCRIPT)
            seen = await drive(pilot, hands=person)
            screens = [s for s in app.screen_stack if isinstance(s, CeremonyScreen)]
            screen = screens[-1]
            assert screen.outcome is not None and screen.outcome.status == "ended", screen.notes
            assert "CardTrayDialog" not in seen.screens, "no demo tray outside the demo"
            assert sorted(set(seen.tray_inserts)) == ["co1", "co2", "co3"]
            entries = journal.read(screen.workspace / "journal.jsonl").entries
    finally:
        readers.close()
    activate = next(e for e in entries if e.kind == "action" and e.step == "activate")
    presented = activate.data["result"]["presented"]
    assert sorted(p["seat"] for p in presented) == ["CO1", "CO2", "CO3"]
    assert sorted(p["serial"] for p in presented) == [c.serial for c in demo.CARDS]


def test_the_readers_watch_and_read_but_never_insert(card_world: World, card_room: object) -> None:
    from appliance.ceremony.errors import OperatorCancelled

    readers = PcscReaders(tuple(card_world.readers))
    try:
        assert readers.held() == [None, None]
        card = card_room.new_card("watch")  # type: ignore[attr-defined]
        card_room.insert(card.name, 1)  # type: ignore[attr-defined]
        assert readers.held() == [None, card_world.readers[1]]
        assert readers.holder_card().serial == card.serial
        with pytest.raises(OperatorCancelled, match="real card readers"):
            readers.insert(card.name, 0)
        with pytest.raises(OperatorCancelled, match="real card readers"):
            readers.remove(1)
        readers.close()
        card_room.remove(1)  # type: ignore[attr-defined]
        assert readers.held() == [None, None]
        with pytest.raises(OperatorCancelled, match="No card is in the reader"):
            readers.holder_card()
    finally:
        readers.close()


def test_only_the_readers_the_config_names_are_watched(
    card_world: World, card_room: object
) -> None:
    second = card_world.readers[1]
    readers = PcscReaders(prefixes=(second,))
    try:
        assert readers.held() == [None]
        card = card_room.new_card("prefix")  # type: ignore[attr-defined]
        card_room.insert(card.name, 0)  # type: ignore[attr-defined]
        assert readers.held() == [None], "a card in another reader is not this room's"
        card_room.remove(0)  # type: ignore[attr-defined]
        card_room.insert(card.name, 1)  # type: ignore[attr-defined]
        assert readers.held() == [second]
        assert readers.holder_card().serial == card.serial
    finally:
        readers.close()


def test_no_reader_at_all_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    from appliance.cards import pcsc
    from appliance.cards.errors import NoReader

    monkeypatch.setattr(pcsc, "list_readers", lambda: ["Other Reader 00 00"])
    assert PcscReaders().prefixes == ()
    with pytest.raises(NoReader, match=r"no card reader named Yubico\.\.\. is connected"):
        PcscReaders(prefixes=("Yubico",)).held()
    monkeypatch.setattr(pcsc, "list_readers", lambda: [])
    with pytest.raises(NoReader, match="no card reader is connected"):
        PcscReaders().held()


def test_the_console_outside_the_demo_watches_the_real_readers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`appliance tui` on a ceremony config: the readers pcscd shows, closed on the way out."""
    from appliance.config import load_config
    from appliance.tui import app as app_module
    from appliance.tui import command

    cfg = tmp_path / "appliance.toml"
    cfg.write_text(
        '[hsm]\nmodule = "/usr/lib/softhsm/libsofthsm2.so"\n[cards]\nreaders = ["Yubico"]\n'
    )
    made: dict[str, object] = {}
    closed: list[bool] = []

    class Ran:
        def run(self) -> None:
            tray = made["tray"]
            assert isinstance(tray, PcscReaders) and tray.readers is None
            assert tray.prefixes == ("Yubico",)
            monkeypatch.setattr(tray, "close", lambda: closed.append(True))

    def create_app(config: Config, *, console: bool, **parts: object) -> Ran:
        made.update(parts)
        return Ran()

    monkeypatch.setattr(app_module, "create_app", create_app)
    assert command.start_tui(load_config(cfg)) == 0
    assert made.get("demo") is None and closed == [True]
