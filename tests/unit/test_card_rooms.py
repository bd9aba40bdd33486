"""The card rooms (headless VirtualCardRoom, the console's DirectTray) and a card left half
reset: refused unless the flow is about to reset the card anyway, then finished and said."""

from __future__ import annotations

from pathlib import Path

import pytest
from vcard.card import VirtualCard

from appliance.ceremony.virtual_cards import VirtualCardRoom
from appliance.sharing.errors import CardError
from appliance.sharing.ports import ProvisionableCard
from appliance.tui.cardroom import DirectTray, TrayCard

SERIAL = "0000D00D"


def _half_reset_card(folder: Path) -> Path:
    """A card pulled between TERMINATE DF and ACTIVATE FILE, holding a name beforehand."""
    path = folder / "torn.json"
    card = VirtualCard.open(path, SERIAL)
    card.state.name = "Holder<<Old"
    card.state.terminated = True
    card.save()
    return path


def _virtual_room(folder: Path) -> VirtualCardRoom:
    room = VirtualCardRoom(folder)
    room.insert("torn")
    return room


def _tray(folder: Path) -> DirectTray:
    tray = DirectTray(folder, (TrayCard("torn", SERIAL, "RKSH1", "Holder"),))
    tray.insert("torn", 0)
    return tray


ROOMS = [_virtual_room, _tray]


@pytest.mark.parametrize("room", ROOMS, ids=["virtual-room", "direct-tray"])
def test_a_half_reset_card_is_refused_where_no_reset_is_meant(tmp_path: Path, room: object) -> None:
    path = _half_reset_card(tmp_path)
    opened = room(tmp_path)  # type: ignore[operator]
    with pytest.raises(Exception) as refused:
        opened.holder_card()
    assert "terminated" in str(refused.value) and "6285" in str(refused.value)
    assert VirtualCard.open(path).state.terminated, "the card was left as it was found"


@pytest.mark.parametrize("room", ROOMS, ids=["virtual-room", "direct-tray"])
def test_a_flow_that_resets_finishes_the_reset_and_says_so(tmp_path: Path, room: object) -> None:
    path = _half_reset_card(tmp_path)
    opened = room(tmp_path)  # type: ignore[operator]
    card: ProvisionableCard = opened.holder_card(finish_reset=True)
    assert card.serial == SERIAL
    assert card.completed_reset is True
    assert card.pin_tries_left() == 3
    state = VirtualCard.open(path).state
    assert not state.terminated and state.name == "", "factory state: the old data is gone"


def test_a_sound_card_opened_for_a_reset_reports_no_completed_reset(tmp_path: Path) -> None:
    VirtualCard.open(tmp_path / "torn.json", SERIAL).save()
    card = _virtual_room(tmp_path).holder_card(finish_reset=True)
    assert card.completed_reset is False


def test_the_error_type_for_a_refused_half_reset_card_is_the_ports(tmp_path: Path) -> None:
    """Actions catch the credential port's errors; a raw cards-layer error would escape them."""
    _half_reset_card(tmp_path)
    with pytest.raises(CardError):
        _tray(tmp_path).holder_card()
