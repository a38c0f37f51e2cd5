"""The first-frame reference: the smallest Textual app that shows what tcpbench's first
frame shows (a header titled `tcpbench`, a `listeners` table, a `Byte log` panel and a
footer with `Quit`), on the same Textual, so `part_ui` can report tcpbench's start-up as a
ratio to Textual's own floor on the machine it runs on.

    python benchmarks/ref_textual_app.py

No engine, no sockets, no timers: it is the cost of importing Textual, starting its
driver and painting four widgets.
"""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Header, RichLog


class FirstFrameReference(App[None]):
    TITLE = "tcpbench"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical():
            table = DataTable()
            table.border_title = "listeners"
            yield table
            log = RichLog()
            log.border_title = "Byte log"
            yield log
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("#", "service", "address", "state")
        for widget in self.query("DataTable, RichLog"):
            widget.styles.border = ("round", "white")


if __name__ == "__main__":
    FirstFrameReference().run()
