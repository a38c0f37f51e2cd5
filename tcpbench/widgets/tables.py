"""The listeners and connections tables.

Both are DataTables redrawn from the engine's state on the app's timer: rows
are added for new listeners/sessions and only cells whose text changed are
updated (`update_width=False`, the columns have fixed widths), so a busy
session costs a few cell updates per table sync, never one per chunk.
Cells are `Content` objects: DataTable parses plain strings as markup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from textual.content import Content
from textual.widgets import DataTable

if TYPE_CHECKING:
    from tcpbench.engine.manager import Listener, SessionManager
    from tcpbench.engine.session import Session

AddressFormatter = Callable[[tuple[str, int]], str]

MAX_ENDED_ROWS = 200
"""Ended sessions kept in the table (oldest dropped first); live ones always stay."""


def human_bytes(count: int) -> str:
    """A short byte count: 999, 1.2K, 34.5M, 1.0G."""
    if count < 1000:
        return str(count)
    value = float(count)
    for unit in "KMGTP":
        value /= 1024
        if value < 999.5:
            return f"{value:.1f}{unit}" if value < 99.95 else f"{value:.0f}{unit}"
    return f"{value:.0f}E"


def human_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def human_rate(per_second: float | None) -> str:
    if per_second is None:
        return "-"
    return human_bytes(int(per_second)) + "/s"


def state_text(session: Session) -> str:
    """The state, and for an ended session who ended it: 'closed by peer', 'aborted by us'."""
    state = session.state
    if state == "closed" and session.closed_by:
        return f"closed by {session.closed_by}"
    if state == "reset":
        return "reset by peer"
    if state == "aborted":
        return "aborted by us"
    return state


class _SyncedTable(DataTable):
    """A DataTable whose rows mirror engine objects, updated cell by cell."""

    DEFAULT_CSS = """
    _SyncedTable { height: 1fr; }
    """

    COLUMNS: tuple[tuple[str, str, int], ...] = ()
    """(key, label, width) of every column."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self._cells: dict[int, tuple[str, ...]] = {}

    def on_mount(self) -> None:
        for key, label, width in self.COLUMNS:
            self.add_column(label, width=width, key=key)

    @property
    def selected_key(self) -> int | None:
        """The id of the engine object under the cursor, or None for an empty table."""
        if not self.row_count:
            return None
        try:
            row_key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        except Exception:  # the cursor can sit past the end for a moment after a removal
            return None
        return int(row_key.value) if row_key.value is not None else None

    def _put(self, key: int, cells: tuple[str, ...]) -> None:
        old = self._cells.get(key)
        if old == cells:
            return
        self._cells[key] = cells
        if old is None:
            self.add_row(*(Content(text) for text in cells), key=str(key))
            return
        for (column, _, _), before, after in zip(self.COLUMNS, old, cells):
            if before != after:
                self.update_cell(str(key), column, Content(after), update_width=False)

    def _drop(self, key: int) -> None:
        if self._cells.pop(key, None) is not None:
            self.remove_row(str(key))


class ListenersTable(_SyncedTable):
    """One row per listener this app started, stopped ones included."""

    COLUMNS = (("id", "#", 3), ("service", "service", 7), ("address", "address", 21),
               ("state", "state", 9), ("conns", "conns", 7), ("in", "in", 7), ("out", "out", 7),
               ("refused", "refused", 7))
    """`refused`: connections its admission rules turned away (after the byte columns: at 80
    columns the rest stays where it was)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.known: dict[int, Listener] = {}

    def track(self, listener: Listener) -> None:
        self.known[listener.id] = listener

    def sync(self, manager: SessionManager, address: AddressFormatter) -> None:
        for listener_id, listener in list(self.known.items()):
            total_in, total_out = manager.listener_totals(listener)
            live = len(listener.sessions)
            self._put(listener_id, (
                str(listener_id), listener.service_name, address(listener.address), listener.state,
                f"{live}/{listener.accepted}", human_bytes(total_in), human_bytes(total_out),
                str(listener.refused) if listener.admission is not None else "-"))


class ConnectionsTable(_SyncedTable):
    """One row per session: live ones, and the latest ended ones with how they ended."""

    COLUMNS = (("id", "#", 4), ("peer", "peer", 21), ("state", "state", 19), ("in", "in", 6),
               ("out", "out", 6), ("rate", "rate", 7), ("age", "age", 6), ("origin", "from", 6),
               ("local", "local", 21))
    """Most telling first: at 80 columns everything up to the rate is visible."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._seen_at: dict[int, float] = {}
        self._rate: dict[int, tuple[float, int, float | None]] = {}
        self._ended: list[int] = []
        self._live: dict[int, None] = {}
        """Ids of sessions not yet drawn in a final state, in opening order."""

    def sync(self, manager: SessionManager, address: AddressFormatter, now: float,
             opened: list[int] | tuple[int, ...] = ()) -> None:
        """Redraw changed rows. `now` is the app's (injectable) clock, in seconds.

        `opened` holds the ids of SessionOpened events since the last sync, so a
        session that opened and ended between two syncs still gets its row.
        Costs O(live sessions + rows not yet final), never O(history).
        """
        for session_id in opened:
            if session_id not in self._cells:
                self._live[session_id] = None
        for session_id in manager.sessions:
            if session_id not in self._live and session_id not in self._cells:
                self._live[session_id] = None
        for session_id in list(self._live):
            session = manager.history.get(session_id)
            if session is None:
                self._live.pop(session_id, None)
                continue
            self._sync_one(session, address, now)
            if session.is_finished:
                self._live.pop(session_id, None)
                self._ended.append(session_id)
        while len(self._ended) > MAX_ENDED_ROWS:
            self._drop(self._ended.pop(0))

    def _sync_one(self, session: Session, address: AddressFormatter, now: float) -> None:
        first_seen = self._seen_at.setdefault(session.id, now)
        total = session.bytes_in + session.bytes_out
        last_time, last_total, rate = self._rate.get(session.id, (now, total, None))
        if now - last_time >= 1.0:
            rate = (total - last_total) / (now - last_time)
            last_time, last_total = now, total
        self._rate[session.id] = (last_time, last_total, rate)
        if session.is_finished:
            rate = None
        origin = "client" if session.listener_id is None else f"L{session.listener_id}"
        ended = session.ended_at if session.is_finished else None
        age = (session.ended_at - session.opened_at) if ended is not None else now - first_seen
        self._put(session.id, (
            str(session.id), address(session.peer), state_text(session), human_bytes(session.bytes_in),
            human_bytes(session.bytes_out), human_rate(rate), human_age(age), origin,
            address(session.local)))

    def _drop(self, key: int) -> None:
        super()._drop(key)
        self._seen_at.pop(key, None)
        self._rate.pop(key, None)
