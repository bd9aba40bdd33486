"""Top bar: what this is, and the time in UTC (the journal's time), ticking."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from textual.widgets import Static


def utc_now() -> datetime:
    return datetime.now(UTC)


class ClockBar(Static):
    DEFAULT_CSS = """
    ClockBar { dock: top; height: 1; background: $primary; color: $text; text-style: bold;
               padding: 0 1; }
    """

    def __init__(self, title: str, clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__()
        self.title_text = title
        self.clock = clock

    def on_mount(self) -> None:
        self.tick()
        self.set_interval(1.0, self.tick)

    def tick(self) -> None:
        now = self.clock()
        self.update(f"{self.title_text}    {now:%Y-%m-%d %H:%M:%S} UTC")
