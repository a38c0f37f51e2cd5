"""The listeners and connections tables.

Both are DataTables redrawn from the engine's state on the app's timer: rows
are added for new listeners/sessions and only cells whose text changed are
updated (`update_width=False`, the columns have planned widths), so a busy
session costs a few cell updates per table sync, never one per chunk.
Cells are `Content` objects: DataTable parses plain strings as markup.

Responsive (`tcpbench.widgets.columns`): the columns are in priority order,
and only those that fit the table's width are shown, the least important
folding away first; nothing is cut at the end, and a narrow address is
shortened in the middle. Every field stays reachable in the connection's
detail view (`tcpbench.screens.detail`). Priorities:

- connections: `#`, peer, state, in, out, age, rate, from, local, 60 s sparkline
  (at 80 columns everything up to the rate shows);
- listeners: `#`, service, address, state, conns, in, out.

Rows leave in batches (`_drop_many`): `DataTable.remove_row` renumbers every
row, so a storm of 3,000 short connections cost 4.4 s of row removals (O(rows)
each) and froze the app for 220 ms at a time; one pass per sync costs O(rows).
"""

from __future__ import annotations

from collections import deque
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator

from textual import events
from textual.message import Message
from textual._two_way_dict import TwoWayDict
from textual.content import Content
from textual.widgets import DataTable
from textual.widgets._data_table import CellKey

from tcpbench.widgets.columns import ColumnSpec, plan_columns, shorten_middle
from tcpbench.widgets.throughput import Throughput, sparkline

if TYPE_CHECKING:
    from tcpbench.engine.listener import Listener
    from tcpbench.engine.manager import SessionManager
    from tcpbench.engine.session import Session

AddressFormatter = Callable[[tuple[str, int]], str]

MAX_ENDED_ROWS = 200
"""Ended sessions kept in the table (oldest dropped first); live ones always stay."""
MAX_NEW_ENDED_ROWS = 32
"""Sessions that ended before their first sync which one sync adds (the newest).
In a storm (thousands of connect-and-reset a second) each would be measured,
drawn and dropped again within a few syncs, faster than anyone can read; the
listener's counts and the byte log still have every one."""
MAX_NEW_ROWS = 48
"""Rows one sync adds at most; the others wait for the next sync (33 ms later).
Adding a row costs DataTable ~0.3 ms (it measures every cell), so 3,000 new
connections in one sync would freeze the app for a second."""


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


OWN_HIGHLIGHTS_KEPT = 64
"""Program-made highlights remembered until their message arrives (a few per sync at most)."""


class _SyncedTable(DataTable):
    """A DataTable whose rows mirror engine objects, updated cell by cell, columns fitted to its width."""

    DEFAULT_CSS = """
    _SyncedTable {
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    """

    COLUMNS: tuple[ColumnSpec, ...] = ()
    """Every column, most important first (also the display order)."""
    SPARK_COLUMN = ""
    """The key of a column whose value is a history (a tuple of ints) drawn as a sparkline."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self._cells: dict[int, tuple] = {}
        self._index = {column.key: i for i, column in enumerate(self.COLUMNS)}
        self._widths: dict[str, int] = {}
        """The columns shown now and their widths, in display order."""
        self._widest: dict[str, int] = {}
        self._fit_width = 0
        self._replan = False
        self._moving_itself = 0
        self._own_highlights: deque[Message] = deque(maxlen=OWN_HIGHLIGHTS_KEPT)
        self.person_moves_in_flight = 0
        """Highlights from the person's keys or clicks posted but not yet handled: the
        screen leaves the cursor where the person put it until they arrive."""

    def post_message(self, message: Message) -> bool:
        if type(message) is DataTable.RowHighlighted:
            if self._moving_itself:
                self._own_highlights.append(message)
            else:
                self.person_moves_in_flight += 1
        return super().post_message(message)

    @contextmanager
    def moving_itself(self) -> Iterator[None]:
        """Cursor moves made inside are the program's (a sync adding or dropping rows, a
        refit, a follow), not the person's: see `highlighted_by_itself`."""
        self._moving_itself += 1
        try:
            yield
        finally:
            self._moving_itself -= 1

    def highlighted_by_itself(self, message: DataTable.RowHighlighted) -> bool:
        """Whether this RowHighlighted came from a move the program made (`moving_itself`).

        Decided when the message is posted, so a screen busy for many ticks still tells
        the person's key or click from the program's moves when the message arrives.
        """
        own = self._own_highlights
        for index, kept in enumerate(own):
            if kept is message:
                del own[index]
                return True
        if self.person_moves_in_flight:
            self.person_moves_in_flight -= 1
        return False

    def on_mount(self) -> None:
        # Every column at its minimum until the first resize says how wide the table is.
        self._apply(plan_columns(self.COLUMNS, 10_000, 0))

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    @property
    def visible_columns(self) -> dict[str, int]:
        """The keys of the columns shown and their widths (padding excluded), in display order."""
        return dict(self._widths)

    def _available(self) -> int:
        # The vertical scrollbar is reserved even while hidden, so a growing table never
        # pushes its last column out of view.
        return self.size.width - self.styles.scrollbar_size_vertical

    def _fit(self) -> None:
        self._replan = False
        self._fit_width = self.size.width
        if self._fit_width <= 0:
            return
        widest = dict(self._widest)
        for column in self.COLUMNS:
            if column.key == self.SPARK_COLUMN:
                widest[column.key] = column.max_width or column.width  # a sparkline takes what is left
        self._apply(plan_columns(self.COLUMNS, self._available(), 2 * self.cell_padding, widest))

    def _apply(self, plan: list[tuple[str, int]]) -> None:
        with self.moving_itself():
            self._apply_plan(plan)

    def _apply_plan(self, plan: list[tuple[str, int]]) -> None:
        current = list(self._widths.items())
        if current == plan:
            return
        first = 0
        while first < min(len(current), len(plan)) and current[first] == plan[first]:
            first += 1
        # Only public DataTable API: remove the columns from the first change on, add the new ones.
        for key, _ in current[first:]:
            self.remove_column(key)
        self._widths = dict(plan)
        labels = {column.key: column.label for column in self.COLUMNS}
        for key, width in plan[first:]:
            self.add_column(labels[key], width=width, key=key, default=Content(""))
            index = self._index[key]
            for row, cells in self._cells.items():
                self.update_cell(str(row), key, Content(self._display(key, cells[index], width)),
                                 update_width=False)

    def _display(self, key: str, value, width: int) -> str:
        if key == self.SPARK_COLUMN:
            return sparkline(list(value), width)
        return shorten_middle(value, width)

    def value(self, key: int, column: str):
        """The full value of a row's cell (shown or folded away), or None for an unknown row."""
        cells = self._cells.get(key)
        return None if cells is None else cells[self._index[column]]

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

    def _put(self, key: int, cells: tuple) -> None:
        old = self._cells.get(key)
        if old == cells:
            return
        self._cells[key] = cells
        widths = self._widths
        self._note_widths(cells, widths)
        if old is None:
            self.add_row(*(Content(self._display(column, cells[self._index[column]], width))
                           for column, width in widths.items()), key=str(key))
            return
        for column, width in widths.items():
            index = self._index[column]
            if old[index] != cells[index]:
                self.update_cell(str(key), column, Content(self._display(column, cells[index], width)),
                                 update_width=False)

    def _note_widths(self, cells: tuple, widths: dict[str, int]) -> None:
        # A flexible column grows (on the next sync) when a wider value arrives and there is room.
        for column in self.COLUMNS:
            if not column.flexible or column.key == self.SPARK_COLUMN:
                continue
            length = len(cells[self._index[column.key]])
            if length > self._widest.get(column.key, 0):
                self._widest[column.key] = length
                shown = widths.get(column.key)
                if shown is not None and shown < min(length, column.max_width or 0):
                    self._replan = True

    def _end_sync(self) -> None:
        if self._replan or self.size.width != self._fit_width:
            self._fit()

    def _drop(self, key: int) -> None:
        self._drop_many([key])

    def _drop_many(self, keys: list[int]) -> None:
        """Remove these rows in one pass (what `remove_row` does, once for all of them).

        Textual is pinned exactly, so relying on DataTable's row bookkeeping
        (`_row_locations`, `rows`, `_data`, `_updated_cells`) is safe; the tests
        exercise it on every sync that ends connections.
        """
        doomed = {str(key) for key in keys if self._cells.pop(key, None) is not None}
        if not doomed:
            return
        locations = self._row_locations
        kept = sorted(((index, row_key) for row_key in locations
                       if (index := locations.get(row_key)) is not None
                       and row_key.value not in doomed), key=lambda pair: pair[0])
        self._row_locations = TwoWayDict({row_key: new for new, (_, row_key) in enumerate(kept)})
        for row_key in doomed:
            for column_key in self._data.get(row_key, ()):
                self._updated_cells.discard(CellKey(row_key, column_key))  # type: ignore[arg-type]
            del self.rows[row_key]  # type: ignore[arg-type]
            del self._data[row_key]  # type: ignore[arg-type]
        self._require_update_dimensions = True
        self.check_idle()
        self.cursor_coordinate = self.cursor_coordinate
        self.hover_coordinate = self.hover_coordinate
        self._update_count += 1
        self.refresh(layout=True)


class ListenersTable(_SyncedTable):
    """One row per listener this app started, stopped ones included."""

    COLUMNS = (ColumnSpec("id", "#", 3), ColumnSpec("service", "service", 7),
               ColumnSpec("address", "address", 15, 47), ColumnSpec("state", "state", 9),
               ColumnSpec("conns", "conns", 7, 13), ColumnSpec("in", "in", 5),
               ColumnSpec("out", "out", 5), ColumnSpec("refused", "refused", 7))
    """`refused`: connections its admission rules turned away (last: it folds first)."""

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
        self._end_sync()


SPARK_MIN = 8
"""Cells of the table's sparkline at least (7.5 s each); it grows with spare width."""


class ConnectionsTable(_SyncedTable):
    """One row per session: live ones, and the latest ended ones with how they ended."""

    COLUMNS = (ColumnSpec("id", "#", 5), ColumnSpec("peer", "peer", 15, 47),
               ColumnSpec("state", "state", 19), ColumnSpec("in", "in", 5),
               ColumnSpec("out", "out", 5), ColumnSpec("age", "age", 7),
               ColumnSpec("rate", "rate", 7), ColumnSpec("origin", "from", 6),
               ColumnSpec("local", "local", 15, 47), ColumnSpec("spark", "last 60 s", SPARK_MIN, 60))
    SPARK_COLUMN = "spark"

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._seen_at: dict[int, float] = {}
        self.throughput: dict[int, Throughput] = {}
        """Rates and 60 s history per session shown (the detail view reads them too)."""
        self._last_sync: float | None = None
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
        with self.moving_itself():
            self._sync_rows(manager, address, now, opened)

    def _sync_rows(self, manager: SessionManager, address: AddressFormatter, now: float,
                   opened: list[int] | tuple[int, ...]) -> None:
        # In id order, not event order: our client's id comes before its accepted end's,
        # which registers first, and rows in event order read "5, 7, 6".
        for session_id in sorted(opened):
            if session_id not in self._cells:
                self._live[session_id] = None
        for session_id in manager.sessions:
            if session_id not in self._live and session_id not in self._cells:
                self._live[session_id] = None
        history = manager.history
        unseen_ended = [session_id for session_id in self._live if session_id not in self._cells
                        and (session := history.get(session_id)) is not None and session.is_finished]
        skip = set(unseen_ended[:max(0, len(unseen_ended) - MAX_NEW_ENDED_ROWS)])
        cells = self._cells
        new_rows = 0
        for session_id in list(self._live):
            session = history.get(session_id)
            if session is None or session_id in skip:
                self._live.pop(session_id, None)
                continue
            if session_id not in cells:
                if new_rows >= MAX_NEW_ROWS:
                    continue  # its row comes with a later sync
                new_rows += 1
            self._sync_one(session, address, now)
            if session.is_finished:
                self._live.pop(session_id, None)
                self._ended.append(session_id)
        if len(self._ended) > MAX_ENDED_ROWS:
            excess = len(self._ended) - MAX_ENDED_ROWS
            self._drop_many(self._ended[:excess])
            del self._ended[:excess]
        self._last_sync = now
        self._end_sync()

    def _sync_one(self, session: Session, address: AddressFormatter, now: float) -> None:
        first_seen = self._seen_at.setdefault(session.id, now)
        throughput = self.throughput.get(session.id)
        if throughput is None:
            # Not there at the last sync, so it had sent nothing then: the first rate is
            # measured from there, and shows at once.
            since = self._last_sync if self._last_sync is not None else now
            throughput = self.throughput[session.id] = Throughput(min(since, now))
        throughput.sample(now, session.bytes_in, session.bytes_out)
        rate = None if session.is_finished else throughput.rate()
        spark = throughput.both() if "spark" in self._widths else ()
        origin = "client" if session.listener_id is None else f"L{session.listener_id}"
        ended = session.ended_at if session.is_finished else None
        age = (session.ended_at - session.opened_at) if ended is not None else now - first_seen
        self._put(session.id, (
            str(session.id), address(session.peer), state_text(session), human_bytes(session.bytes_in),
            human_bytes(session.bytes_out), human_age(age), human_rate(rate), origin,
            address(session.local), spark))

    def age(self, session: Session, now: float) -> float:
        """Seconds the session has been (or was) open, as the table shows it."""
        if session.is_finished and session.ended_at is not None:
            return session.ended_at - session.opened_at
        return now - self._seen_at.get(session.id, now)

    def _fit(self) -> None:
        had_spark = "spark" in self._widths
        super()._fit()
        if not had_spark and "spark" in self._widths:
            # Histories are not kept in cells while the column is hidden: fill them in now.
            for session_id, cells in list(self._cells.items()):
                throughput = self.throughput.get(session_id)
                if throughput is not None:
                    self._put(session_id, cells[:-1] + (throughput.both(),))

    def _drop_many(self, keys: list[int]) -> None:
        super()._drop_many(keys)
        for key in keys:
            self._seen_at.pop(key, None)
            self.throughput.pop(key, None)
