from __future__ import annotations

from textual.app import App
from textual.widgets import Input, Static

from appliance.tui.dialogs.confirm import ConfirmDestructive
from appliance.tui.dialogs.pin import PinDialog
from appliance.tui.widgets.pin_field import PinField


class Host(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.results: list[object] = []


async def test_pin_is_returned_as_bytearray_and_field_is_wiped() -> None:
    app = Host()
    async with app.run_test() as pilot:
        dialog = PinDialog("CO2 (Alice)", "000A1234", tries_left=3)
        app.push_screen(dialog, app.results.append)
        await pilot.pause()
        field = dialog.query_one(PinField)
        await pilot.press("1", "2", "3", "4", "5", "6", "backspace", "7", "enter")
        await pilot.pause()
    assert app.results == [bytearray(b"123457")]
    assert isinstance(app.results[0], bytearray)
    assert field._digits == bytearray()


async def test_one_try_left_needs_typed_confirmation() -> None:
    app = Host()
    async with app.run_test() as pilot:
        dialog = PinDialog("RKSH5", "000B0005", tries_left=1)
        app.push_screen(dialog, app.results.append)
        await pilot.pause()
        await pilot.press("9", "9", "9", "9", "9", "9", "enter")
        await pilot.pause()
        assert app.results == []  # not submitted: no try spent
        assert "LAST TRY" in str(dialog.query_one("#problem", Static).render())
        dialog.query_one("#last-try", Input).value = "last try"
        dialog.query_one(PinField).focus()
        await pilot.press("enter")
        await pilot.pause()
    assert app.results == [bytearray(b"999999")]


async def test_escape_cancels_without_a_pin() -> None:
    app = Host()
    async with app.run_test() as pilot:
        app.push_screen(PinDialog("CO1", "1", tries_left=3), app.results.append)
        await pilot.pause()
        await pilot.press("1", "2", "escape")
        await pilot.pause()
    assert app.results == [None]


async def test_destructive_step_needs_the_word() -> None:
    app = Host()
    async with app.run_test() as pilot:
        dialog = ConfirmDestructive("Factory reset", "All keys on card 0005 are erased.", "ERASE")
        app.push_screen(dialog, app.results.append)
        await pilot.pause()
        await pilot.press("e", "r", "a", "s", "e", "enter")
        await pilot.pause()
        assert app.results == []
        dialog.query_one(Input).value = "ERASE"
        await pilot.press("enter")
        await pilot.pause()
    assert app.results == [True]
