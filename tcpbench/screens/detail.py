"""The detail view of one connection: every field the table folds away at narrow widths.

Opened with `d` (or Enter on a connection row, or the palette's "Connection
details"), closed with Escape. It redraws four times a second from the
session's exact counters and from the connections table's `Throughput`
(the table samples it on the screen's timer; the view only reads), so it
follows the connection live and ends with it: how it ended and who closed
first stay on screen.

Every text here is either ours or a socket address / OS message, and all of
it goes through `Content` (no markup parser) after `escape_text`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Label, Sparkline, Static

from tcpbench.safetext import escape_text
from tcpbench.widgets.tables import human_age, human_bytes, human_rate, state_text

if TYPE_CHECKING:
    from tcpbench.engine.manager import SessionManager
    from tcpbench.engine.session import Session
    from tcpbench.widgets.tables import ConnectionsTable

REFRESH_SECONDS = 0.25

FIELDS = ("peer", "local", "listener", "state", "received", "sent", "age", "closed first",
          "ended", "FIN")
"""The rows of the view, in order (each is a label and a value)."""


def closed_first(session: Session) -> str:
    """Who started the close, in TCP terms."""
    if session.closed_by == "peer":
        return "the peer (its FIN came before ours)"
    if session.closed_by == "us":
        return "we did (our FIN went first)"
    if session.state == "reset":
        return "nobody closed: the peer reset the connection"
    if session.state == "aborted":
        return "we aborted it (RST), nobody sent FIN"
    return "nobody yet"


def ended_text(session: Session) -> str:
    """How the connection ended, with the reason the engine gave (or 'still open')."""
    if not session.is_finished:
        return "still open"
    text = state_text(session)
    reason = session.end_reason
    return f"{text}: {reason}" if reason and reason not in text else text


class ConnectionDetail(ModalScreen[None]):
    """Every field of one connection, updated live; Escape closes it."""

    BINDINGS = [
        Binding("escape,d,q", "close", "Close", id="detail.close", tooltip="Back to the workbench"),
    ]

    DEFAULT_CSS = """
    ConnectionDetail #detail {
        width: 90;
        max-width: 96%;
    }
    ConnectionDetail .detail-row {
        height: 1;
    }
    ConnectionDetail .detail-label {
        width: 14;
        color: $text-muted;
    }
    ConnectionDetail .detail-value {
        width: 1fr;
    }
    ConnectionDetail .spark-row {
        height: 1;
        margin-top: 1;
    }
    ConnectionDetail Sparkline {
        width: 1fr;
        height: 1;
    }
    ConnectionDetail #spark-in > .sparkline--max-color { color: $success; }
    ConnectionDetail #spark-in > .sparkline--min-color { color: $success 50%; }
    ConnectionDetail #spark-out > .sparkline--max-color { color: $warning; }
    ConnectionDetail #spark-out > .sparkline--min-color { color: $warning 50%; }
    ConnectionDetail #detail-hint {
        margin-top: 1;
        color: $text-muted;
    }
    """

    def __init__(self, manager: SessionManager, session_id: int, table: ConnectionsTable, *,
                 clock: Callable[[], float], address: Callable[[tuple[str, int]], str]) -> None:
        super().__init__()
        self.manager = manager
        self.session_id = session_id
        self.table = table
        self.clock = clock
        self.address = address

    def compose(self) -> ComposeResult:
        with Vertical(id="detail", classes="dialog"):
            yield Label(f"Connection #{self.session_id}", classes="dialog-title", id="detail-title")
            for field in FIELDS:
                with Horizontal(classes="detail-row"):
                    yield Static(field, classes="detail-label", markup=False)
                    yield Static("", classes="detail-value", id=f"field-{field.replace(' ', '-')}",
                                 markup=False)
            with Horizontal(classes="spark-row"):
                yield Static("in, 60 s", classes="detail-label", markup=False)
                yield Sparkline([0.0], id="spark-in")
            with Horizontal(classes="detail-row"):
                yield Static("out, 60 s", classes="detail-label", markup=False)
                yield Sparkline([0.0], id="spark-out")
            yield Static("Escape: back", id="detail-hint", markup=False)

    def on_mount(self) -> None:
        self.refresh_fields()
        self.set_interval(REFRESH_SECONDS, self.refresh_fields, name="detail")

    @property
    def session(self) -> Session | None:
        return self.manager.history.get(self.session_id)

    def values(self) -> dict[str, str]:
        """Every field's text, as shown (also what tests read)."""
        session = self.session
        if session is None:
            return {field: "-" for field in FIELDS} | {"state": "no longer kept (forgotten)"}
        throughput = self.table.throughput.get(session.id)
        rates = throughput.rates() if throughput is not None and not session.is_finished else None
        rate_in, rate_out = (None, None) if rates is None else rates
        listener_text = "none: a client session opened from here"
        if session.listener_id is not None:
            listener = self.manager.listeners.get(session.listener_id)
            listener_text = (f"L{session.listener_id} {listener.service_name} on "
                             f"{self.address(listener.address)}" if listener is not None
                             else f"L{session.listener_id} (stopped)")
        return {
            "peer": self.address(session.peer),
            "local": self.address(session.local),
            "listener": listener_text,
            "state": state_text(session),
            "received": f"{human_bytes(session.bytes_in)} ({session.bytes_in:,} bytes)   "
                        f"rate {human_rate(rate_in)}",
            "sent": f"{human_bytes(session.bytes_out)} ({session.bytes_out:,} bytes)   "
                    f"rate {human_rate(rate_out)}",
            "age": human_age(self.table.age(session, self.clock())),
            "closed first": closed_first(session),
            "ended": ended_text(session),
            "FIN": f"from the peer: {'yes' if session.peer_fin else 'no'}   "
                   f"from us: {'yes' if session.our_fin else 'no'}",
        }

    def refresh_fields(self) -> None:
        for field, text in self.values().items():
            widget = self.query_one(f"#field-{field.replace(' ', '-')}", Static)
            widget.update(Content(escape_text(text)))
        throughput = self.table.throughput.get(self.session_id)
        if throughput is not None:
            self.query_one("#spark-in", Sparkline).data = [float(v) for v in throughput.history("in")]
            self.query_one("#spark-out", Sparkline).data = [float(v) for v in throughput.history("out")]

    def action_close(self) -> None:
        self.dismiss(None)
