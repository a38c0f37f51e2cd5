"""The byte log's own bounded index of rows, fed incrementally from the engine's stores.

No Textual here: `ByteLogView` owns scrolling and drawing, this owns which rows
exist. `pull()` takes only the records added since the last call (a cursor per
session, merged by time when showing all sessions); `index()` turns them into
row descriptors (`bytelog_format`); `append()` adds them and trims the front to
`MAX_ROWS` rows and `MAX_ROW_BYTES` bytes of payload.

A view is one session, one listener (its sessions plus its own `notes` store:
the operator's chat lines, the fuzz seed), or
everything (every session and every listener's notes). Listener stores are
keyed `("L", id)` in the cursors, so they never collide with session ids.

Rows are numbered absolutely (`base` is the number of the first live row), so
the widget's strip cache survives trimming. A hole in a stream (the store
dropped bytes before we read them, or a firehose outran the per-sync budget)
becomes one gap row with the exact count, from the records' stream offsets.
"""

from __future__ import annotations

import heapq
from typing import Any

from tcpbench.engine.bytestore import EVENT, Record
from tcpbench.widgets.bytelog_format import GAP, HEX, HEX_WIDTH, Row, continue_row, gap_row, record_rows

MAX_ROWS = 50_000
MAX_ROW_BYTES = 8 * 1024 * 1024
SYNC_ROW_BUDGET = 3_000
"""Rows indexed per sync at most (about 90k rows/s at 30 Hz, far beyond reading speed)."""
SYNC_RECORD_BUDGET = 20_000
"""Records looked at per session per sync: a store of tiny records must not stall the UI."""


def _tail_start(record: Record, mode: str, need: int, hex_width: int = HEX_WIDTH) -> int:
    """Where the last `need` rows of a big record begin (0 when it has no more rows
    than that): under a firehose, rows that the budget would discard are never built."""
    data = record.data
    if record.direction == EVENT or need <= 0:
        return 0
    size = len(data)
    if mode == HEX:
        start = size - need * hex_width
        return (start + hex_width - 1) // hex_width * hex_width if start > 0 else 0
    if data.count(b"\n") < need:
        return 0
    position = size
    for _ in range(need):
        # rfind before the last byte: an LF ending the record ends the last row, not starts it.
        position = data.rfind(b"\n", 0, position - 1) + 1
        if position <= 0:
            return 0
    return position


class RowIndex:
    """Rows of one view (one session, or all), bounded; not thread-safe (the UI loop)."""

    def __init__(self, manager: Any) -> None:
        self._manager = manager
        # Where `set_floor()` (the view's clear) left each session, so a rebuild keeps it cleared.
        self._floor_cursors: dict[Any, int] = {}
        self._floor_expected: dict[tuple[int, str], int] = {}
        self._listeners: dict[int, Any] = {}
        """Listeners seen running, so a stopped listener's notes stay viewable."""
        self.hex_width = HEX_WIDTH
        """Bytes per hex row; the view sets it to fit its width (and re-indexes)."""
        self.reset()

    def use_manager(self, manager: Any) -> None:
        """Pull from `manager` from now on (the cursors stay: they are per store)."""
        self._manager = manager

    def reset(self) -> None:
        self.rows: list[Row] = []
        self.start = 0
        """Index in `rows` of the first live row (trimmed rows are deleted in batches)."""
        self.base = 0
        """Absolute number of the first live row."""
        self.row_bytes = 0
        self.widest = 0
        """Longest raw payload of a row so far (a lower bound of its drawn width)."""
        self.tail_changed = False
        """Set when the last live row was completed in place by the last `index()`."""
        self._cursors: dict[Any, int] = dict(self._floor_cursors)
        self._expected: dict[tuple[int, str], int] = dict(self._floor_expected)

    def __len__(self) -> int:
        return len(self.rows) - self.start

    def row(self, index: int) -> Row:
        return self.rows[self.start + index]

    def set_floor(self) -> None:
        """Forget everything up to now, in every session the engine still knows."""
        for session in list(self._manager.history.values()):
            self._floor_cursors[session.id] = session.store.next_seq
            self._floor_expected[(session.id, "rx")] = session.bytes_in
            self._floor_expected[(session.id, "tx")] = session.bytes_out
        for listener in self._known_listeners().values():
            self._floor_cursors[("L", listener.id)] = listener.notes.next_seq
        self.reset()

    def _known_listeners(self) -> dict[int, Any]:
        for listener in self._manager.listeners.values():
            self._listeners.setdefault(listener.id, listener)
        return self._listeners

    # --- pulling --------------------------------------------------------------------

    def pull(self, session_id: int | None, listener_id: int | None = None) -> list[Record]:
        """Records added since the last pull, oldest first (merged by time across stores).

        `listener_id` set: that listener's sessions and notes. Else `session_id`
        set: that session. Else everything."""
        history = self._manager.history
        stores: list[tuple[Any, Any]] = []
        if listener_id is not None:
            stores = [(s.id, s.store) for s in history.values() if s.listener_id == listener_id]
            listener = self._known_listeners().get(listener_id)
            if listener is not None:
                stores.append((("L", listener_id), listener.notes))
        elif session_id is None:
            stores = [(s.id, s.store) for s in history.values()]
            stores += [(("L", lid), lst.notes) for lid, lst in self._known_listeners().items()]
        else:
            session = history.get(session_id)
            stores = [(session.id, session.store)] if session is not None else []
        batches: list[list[Record]] = []
        cursors = self._cursors
        for key, store in stores:
            cursor = cursors.get(key, 0)
            end = store.next_seq
            if end == cursor:
                continue
            cursors[key] = end
            batch = list(store.since(max(cursor, store.first_seq, end - SYNC_RECORD_BUDGET)))
            if batch:
                batches.append(batch)
        if len(cursors) > len(history) + len(self._listeners) + 1024:
            # The engine forgets old ended sessions; forget their cursors too.
            self._cursors = {k: v for k, v in cursors.items() if k in history or isinstance(k, tuple)}
            self._expected = {k: v for k, v in self._expected.items() if k[0] in history}
        if not batches:
            return []
        if len(batches) == 1:
            return batches[0]
        # Every record pulled now is newer than any pulled before, so merging per pull is exact.
        return list(heapq.merge(*batches, key=lambda r: (r.at, r.session, r.seq)))

    # --- indexing ---------------------------------------------------------------------

    def index(self, records: list[Record], mode: str, budget: int) -> list[Row]:
        """Rows for new records, newest first until `budget` rows; then in order, with
        gap rows where stream offsets jump and unfinished rows completed (`continue_row`)."""
        self.tail_changed = False
        chunks: list[tuple[Record, list[Row], bool]] = []
        total = 0
        for record in reversed(records):
            start = _tail_start(record, mode, budget - total, self.hex_width)
            rows = record_rows(record, mode, start, self.hex_width)
            if not rows:
                continue
            if start:
                # Only the tail of this record fits: the bytes before it become a gap row.
                chunks.append((record, rows[total - budget:], False))
                break
            if total + len(rows) > budget:
                keep = budget - total
                if keep > 0:
                    chunks.append((record, rows[-keep:], False))
                break
            chunks.append((record, rows, True))
            total += len(rows)
        out: list[Row] = []
        expected = self._expected
        for record, rows, whole in reversed(chunks):
            first = rows[0]
            kind = first[0]
            if kind == EVENT:
                out.extend(rows)
                continue
            key = (first[2], kind)
            want = expected.get(key, 0)
            if first[3] > want:
                out.append(gap_row(first[1], first[2], kind, first[3] - want))
            elif whole:
                rows = self._continue_previous(out, record, mode, rows)
            if rows:
                last = rows[-1]
                expected[key] = last[3] + len(last[4])
                out.extend(rows)
            else:
                expected[key] = record.offset + len(record.data)
        return out

    def _continue_previous(self, out: list[Row], record: Record, mode: str, rows: list[Row]) -> list[Row]:
        if out:
            merged = continue_row(out[-1], record, mode, self.hex_width)
            if merged is None:
                return rows
            out[-1] = merged[0]
        else:
            if len(self) == 0:
                return rows
            merged = continue_row(self.rows[-1], record, mode, self.hex_width)
            if merged is None:
                return rows
            self.rows[-1] = merged[0]
            self.row_bytes += merged[1]
            self.tail_changed = True
        return record_rows(record, mode, merged[1], self.hex_width)

    # --- bounds --------------------------------------------------------------------------

    def append(self, new_rows: list[Row]) -> int:
        """Add rows, trim the front to the bounds; returns how many rows were trimmed."""
        self.rows.extend(new_rows)
        widest = self.widest
        added = 0
        for row in new_rows:
            kind = row[0]
            if kind == "rx" or kind == "tx":
                size = len(row[4])
                added += size
                if size > widest:
                    widest = size
            elif kind == GAP and len(row[4]) > widest:
                widest = len(row[4])
        self.widest = widest
        self.row_bytes += added
        return self._trim()

    def _trim(self) -> int:
        rows = self.rows
        index = self.start
        cut = max(0, len(rows) - index - MAX_ROWS)
        for i in range(index, index + cut):
            row = rows[i]
            if row[0] == "rx" or row[0] == "tx":
                self.row_bytes -= len(row[4])
        index += cut
        while self.row_bytes > MAX_ROW_BYTES and index < len(rows) - 1:
            row = rows[index]
            if row[0] == "rx" or row[0] == "tx":
                self.row_bytes -= len(row[4])
            index += 1
        trimmed = index - self.start
        self.start = index
        self.base += trimmed
        if self.start > len(rows) // 2 and self.start > 1024:
            del rows[:self.start]
            self.start = 0
        return trimmed
