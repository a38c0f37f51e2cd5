"""The top line: app name, totals across every listener and session, the total rate and its sparkline."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.content import Content
from textual.widgets import Static

from tcpbench.widgets.tables import human_bytes, human_rate
from tcpbench.widgets.throughput import Throughput, sparkline

if TYPE_CHECKING:
    from tcpbench.engine.manager import SessionManager

SPARK_CELLS = (8, 30)
"""The header's sparkline of the last 60 s: at least 8 cells (else none), at most 30 (2 s each)."""


class TotalsHeader(Static):
    """`tcpbench  listeners 2  connections open 3 / total 10  in 1.2M  out 3.4K  rate 5K/s ▁▃█`.

    Sampled from the engine's exact totals on the screen's timer (O(1) per
    sync); redrawn only when the text changes. Narrow terminals get short labels,
    and the sparkline takes what width is left.
    """

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
        self._last: tuple = ()
        self._numbers: tuple[int, int, int, int, int] | None = None
        self.throughput: Throughput | None = None
        """The totals' rate and 60 s history (None until the first sync)."""

    def sync(self, manager: SessionManager, now: float | None = None) -> None:
        """Sample the totals at `now` (the app's clock; None: no rate) and redraw if changed."""
        if now is not None:
            if self.throughput is None:
                self.throughput = Throughput(now)
            self.throughput.sample(now, manager.bytes_in, manager.bytes_out)
        self._numbers = (len(manager.listeners), len(manager.sessions), len(manager.history),
                         manager.bytes_in, manager.bytes_out)
        self._draw()

    def on_resize(self, event: events.Resize) -> None:
        self._draw()

    def _draw(self) -> None:
        if self._numbers is None:
            return
        listeners, open_now, total, bytes_in, bytes_out = self._numbers
        rate = human_rate(self.throughput.rate()) if self.throughput is not None else "-"
        room = self.size.width - 10  # "tcpbench" and its gap
        text = (f"listeners {listeners}   connections open {open_now} / total {total}   "
                f"in {human_bytes(bytes_in)}   out {human_bytes(bytes_out)}   rate {rate}")
        if len(text) + 1 + SPARK_CELLS[0] > room:  # the sparkline tells more than long labels
            text = (f"listeners {listeners}  open {open_now}/{total}  in {human_bytes(bytes_in)}  "
                    f"out {human_bytes(bytes_out)}  rate {rate}")
        cells = min(SPARK_CELLS[1], room - len(text) - 1)
        spark = ""
        if cells >= SPARK_CELLS[0] and self.throughput is not None:
            spark = sparkline(self.throughput.history(), cells)
        state = (text, spark)
        if state == self._last:
            return
        self._last = state
        parts: list = [("tcpbench", "bold"), "  ", text]
        if spark:
            parts += [" ", (spark, "$text-success")]
        self.update(Content.assemble(*parts))
