"""The top line: app name and totals across every listener and session."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.content import Content
from textual.widgets import Static

from tcpbench.widgets.tables import human_bytes

if TYPE_CHECKING:
    from tcpbench.engine.manager import SessionManager


class TotalsHeader(Static):
    """`tcpbench  listeners 2  open 3/10  in 1.2M  out 3.4K`, redrawn only when it changes."""

    DEFAULT_CSS = """
    TotalsHeader {
        dock: top;
        height: 1;
        background: $panel;
        color: $foreground;
        padding: 0 1;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("tcpbench", id=id, markup=False)
        self._last = ""

    def sync(self, manager: SessionManager) -> None:
        text = (f"listeners {len(manager.listeners)}   "
                f"connections open {len(manager.sessions)} / total {len(manager.history)}   "
                f"in {human_bytes(manager.bytes_in)}   out {human_bytes(manager.bytes_out)}")
        if text == self._last:
            return
        self._last = text
        self.update(Content.assemble(("tcpbench", "bold"), "   ", text))
