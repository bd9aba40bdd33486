"""The appliance check as a table. Status is a word (OK / WARN / FAIL), never colour alone."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from appliance.doctor import CheckResult

_STYLE = {"OK": "bold", "WARN": "bold reverse", "FAIL": "bold reverse blink"}


class StatusTable(DataTable[Text]):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("Status", "Check", "Detail / what to do")

    def show(self, results: list[CheckResult]) -> None:
        self.clear()
        for r in results:
            detail = r.detail if r.status == "OK" or not r.fix else f"{r.detail} -> {r.fix}"
            self.add_row(Text(f" {r.status} ", style=_STYLE[r.status]), Text(r.name), Text(detail))
