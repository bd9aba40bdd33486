"""Demo card tray: put the card of any holder into one of the two virtual readers.

Only in demo mode. Enter puts the highlighted card into reader 1, "2" into reader 2, "r"
takes it out. Inserting and removing go through the tray's adapter in a thread worker (the
card server waits until pcscd has seen the change). PINs are not typed here: they are typed
in the PIN dialog, as in a real room; the demo PINs are listed so a visitor can play.
"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList, Static
from textual.widgets.option_list import Option

from appliance.errors import ApplianceError
from appliance.tui.cardroom import CardTray


class CardTrayDialog(ModalScreen[str | None]):
    """Dismisses with a short description of what was done (None: closed unchanged)."""

    BINDINGS = [
        Binding("enter", "insert(0)", "Into reader 1", show=True, priority=True),
        Binding("2", "insert(1)", "Into reader 2"),
        Binding("r", "remove", "Take out"),
        Binding("escape", "close", "Close"),
    ]
    DEFAULT_CSS = """
    CardTrayDialog { align: center middle; }
    CardTrayDialog > Vertical { width: 76; height: auto; max-height: 100%;
                                border: thick $secondary; padding: 0 1; background: $surface; }
    CardTrayDialog .title { text-style: bold reverse; }
    CardTrayDialog OptionList { height: auto; max-height: 8; }
    CardTrayDialog #problem { text-style: bold; }
    """

    def __init__(self, tray: CardTray) -> None:
        super().__init__()
        self.tray = tray

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(" DEMO CARD TRAY (virtual cards) ", classes="title")
            yield Static("", id="readers")
            yield OptionList(
                *[
                    Option(
                        f"{c.name}  {c.seat} {c.holder}  serial {c.serial}"
                        + (f"  demo PIN {c.pin}" if c.pin else ""),
                        id=c.name,
                    )
                    for c in self.tray.cards
                ],
                id="cards",
            )
            yield Static("", id="problem")
            yield Static(
                "Enter: into reader 1   2: into reader 2   R: take out   Esc: close", classes="hint"
            )

    def on_mount(self) -> None:
        cards = self.query_one(OptionList)
        cards.highlighted = 0  # so the first arrow key moves from the first card, not onto it
        cards.focus()
        self.show_readers()

    @work(thread=True, exclusive=True, exit_on_error=False, group="tray-list")
    def show_readers(self) -> None:
        try:
            held = self.tray.held()
        except Exception as exc:  # noqa: BLE001 - shown in the dialog, not a crash
            self.app.call_from_thread(self._problem, f"The readers cannot be listed: {exc}")
            return
        text = "   ".join(f"Reader {i + 1}: {name or 'empty'}" for i, name in enumerate(held))
        self.app.call_from_thread(self._show_held, text, held)

    def _show_held(self, text: str, held: list[str | None]) -> None:
        self.query_one("#readers", Static).update(text)
        inserted = next((h for h in held if h), None)
        cards = self.query_one(OptionList)
        for i, card in enumerate(self.tray.cards):
            if card.name == inserted:  # a card is in: R takes it out without moving
                cards.highlighted = i

    def _problem(self, text: str) -> None:
        self.query_one("#problem", Static).update(text)

    def _chosen(self) -> str | None:
        cards = self.query_one(OptionList)
        if cards.highlighted is None:
            return None
        return cards.get_option_at_index(cards.highlighted).id

    def action_insert(self, reader: int) -> None:
        card = self._chosen()
        if card is not None:
            self._problem(f"Inserting {card} into reader {reader + 1}...")
            self.run_tray(card, reader, insert=True)

    def action_remove(self) -> None:
        card = self._chosen()
        if card is not None:
            self.run_tray(card, None, insert=False)

    @work(thread=True, exclusive=True, exit_on_error=False, group="tray-act")
    def run_tray(self, card: str, reader: int | None, *, insert: bool) -> None:
        try:
            if insert and reader is not None:
                self.tray.insert(card, reader)
                done = f"{card} inserted into reader {reader + 1}"
            else:
                held = self.tray.held()
                if card not in held:  # R takes out the card that is in, whichever
                    card = next((h for h in held if h), "")
                if not card:
                    self.app.call_from_thread(self._problem, "The readers are empty.")
                    return
                self.tray.remove(held.index(card))
                done = f"{card} taken out"
        except ApplianceError as exc:
            self.app.call_from_thread(self._problem, exc.operator_text())
            return
        except Exception as exc:  # noqa: BLE001 - the card server's refusal, shown as is
            self.app.call_from_thread(self._problem, f"The card tray failed: {exc}")
            return
        self.app.call_from_thread(self.dismiss, done)

    def action_close(self) -> None:
        self.dismiss(None)
