"""A hash to read aloud: hex in groups of four and PGP words, large and numbered."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from appliance import pgpwords


def readout_table(digest: bytes) -> Table:
    """Rows of 4 bytes: position, hex, words. Positions let two readers keep their place."""
    table = Table.grid(padding=(0, 2))
    table.add_column(justify="right", style="dim")
    table.add_column()
    table.add_column()
    words = pgpwords.words(digest)
    for row in range(0, len(digest), 4):
        chunk = digest[row : row + 4]
        table.add_row(
            f"{row + 1:>2}-{row + len(chunk):<2}",
            Text(chunk.hex(" ", 2).upper(), style="bold"),
            " ".join(words[row : row + 4]),
        )
    return table


class HashReadout(Static):
    DEFAULT_CSS = """
    HashReadout { padding: 1 2; border: heavy $accent; height: auto; }
    """

    def __init__(self, label: str, digest: bytes, *, id: str | None = None) -> None:  # noqa: A002
        super().__init__(id=id)
        self.label = label
        self.digest = digest

    def on_mount(self) -> None:
        self.border_title = f"Read aloud: {self.label} (SHA-256)"
        self.update(readout_table(self.digest))
