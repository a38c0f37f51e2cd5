"""The live byte log: what crossed one connection (or all of them), as text or hex.

Design (measured in /work/shared/notes/textual-8-measured.md, section 1): a
Line API `ScrollView`. The engine appends raw records to each session's bounded
`ByteStore` and does no UI work; the app's ~30 Hz timer calls `sync()`, which
pulls only the records added since the last call (a cursor per session), turns
them into light row descriptors (raw byte slices, not text) and updates
`virtual_size`. `render_line` formats only the rows on screen, through
`tcpbench.safetext`, into `Strip([Segment(text, style)])`, with a small LRU of
strips. No message, refresh or task per chunk.

Bounds (`bytelog_index.RowIndex` keeps the rows): at most `MAX_ROWS` rows and `MAX_ROW_BYTES` bytes of payload are
indexed; older rows are trimmed from the front and `scroll_y` shifts with them
so the rows under a reader who scrolled up do not move. When more arrives
between two syncs than `SYNC_ROW_BUDGET` rows, only the newest rows are
indexed: nobody reads 300 MiB/s, and the store drops most of it anyway. Every
hole (store trimmed, budget skipped) shows as one `~` row with its exact byte
count, computed from stream offsets; the session counters still count every byte.

Measured (benchmarks/ui_firehose.py, 1 GiB over loopback into a client session
shown here): 480-650 MiB/s, key latency p50 < 2 ms, RSS growth ~30 MB.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.cache import LRUCache
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tcpbench.engine.bytestore import EVENT
from tcpbench.widgets import bytelog_index
from tcpbench.widgets.bytelog_format import (GAP, HEX, TEXT, Row, fit_hex_width, hex_row_length,
                                              prefix_width, row_body, row_parts)
from tcpbench.widgets.bytelog_index import RowIndex

if TYPE_CHECKING:
    from tcpbench.engine.manager import SessionManager


class ByteLogView(ScrollView, can_focus=True):
    """Bytes and lifecycle events of one session, or of all sessions interleaved.

    Attributes go down (`session_id`, `mode`, `show_timestamps`); the app calls
    `sync()` on its timer. `new_since_scrolled` tells how many rows arrived
    while the reader was scrolled away from the end.
    """

    BINDINGS = [
        Binding("end", "follow", "Follow", id="bytelog.follow", tooltip="Jump to the end and follow new bytes"),
        Binding("t", "toggle_timestamps", "Times", id="bytelog.timestamps",
                tooltip="Show or hide the time of each row"),
        Binding("h", "toggle_hex", "Hex/Text", id="bytelog.hex", tooltip="Switch between text and hex dump"),
        # Shown only while a search is remembered (check_action), so the footer says
        # why n does not open the listener dialog then; Escape ends the search.
        Binding("n", "search_next", "Next match", id="bytelog.next",
                tooltip="Jump to the next match of the last search"),
        Binding("N", "search_previous", "Prev match", id="bytelog.previous",
                tooltip="Jump to the previous match of the last search"),
    ]

    COMPONENT_CLASSES = {
        "bytelog--rx", "bytelog--tx", "bytelog--event", "bytelog--gap",
        "bytelog--timestamp", "bytelog--session", "bytelog--match",
    }

    DEFAULT_CSS = """
    ByteLogView {
        background: $surface;
        color: $foreground;
        & > .bytelog--rx { color: $text-success; }
        & > .bytelog--tx { color: $text-warning; }
        & > .bytelog--event { color: $text-muted; text-style: italic; }
        & > .bytelog--gap { color: $text-error; text-style: italic; }
        & > .bytelog--timestamp { color: $text-muted; }
        & > .bytelog--session { color: $text-primary; }
        & > .bytelog--match { background: $warning 60%; color: $foreground; text-style: bold; }
    }
    """

    session_id: reactive[int | None] = reactive(None, init=False)
    """The session shown; None shows every session interleaved by time."""
    listener_id: reactive[int | None] = reactive(None, init=False)
    """A listener whose view is shown (its sessions and its own notes, merged by time,
    each row tagged with its connection); it takes precedence over `session_id`."""
    mode: reactive[str] = reactive(TEXT, init=False)
    """`text` (one row per line, escaped) or `hex` (16, 8 or 4 bytes per row: as many as fit)."""
    show_timestamps: reactive[bool] = reactive(True, init=False)
    """Prefix each row with its time (HH:MM:SS.mmm)."""
    utc: reactive[bool] = reactive(False, init=False)
    """Timestamps in UTC rather than local time."""

    _ROLE_CLASSES = {"rx": "bytelog--rx", "tx": "bytelog--tx", EVENT: "bytelog--event",
                     GAP: "bytelog--gap", "timestamp": "bytelog--timestamp",
                     "session": "bytelog--session"}

    def __init__(self, manager: SessionManager, *, clock: Callable[[], float] = time.time,
                 name: str | None = None, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        # Records carry monotonic times; the clock maps them to wall time once, here,
        # so a test's fixed clock gives fixed timestamps.
        self._wall_offset = clock() - time.monotonic()
        self._cache: LRUCache[int, Strip] = LRUCache(1024)
        self._styles: dict[str, Style] = {}
        self._syncing = False
        self._width_pending = False
        self._search_text = ""
        self._match: tuple[int, int, int] | None = None
        self._index = RowIndex(manager)
        self._reset()

    # --- state ---------------------------------------------------------------------

    def _reset(self) -> None:
        self._index.reset()
        self._max_width = 0
        self._new = 0
        self._follow = True
        self._match = None
        self._cache.clear()

    @property
    def row_count(self) -> int:
        """Rows currently indexed (what the scrollbar spans)."""
        return len(self._index)

    @property
    def at_tail(self) -> bool:
        """True when the view follows new bytes (the reader is at the end)."""
        return self._follow

    @property
    def new_since_scrolled(self) -> int:
        """Rows that arrived while the reader was scrolled up (0 when following)."""
        return self._new

    def row_text(self, index: int) -> str:
        """The plain text of live row `index` (0 = oldest kept) as drawn, prefix included."""
        row = self._index.row(index)
        return "".join(text for text, _ in self._parts(row))

    # --- public API --------------------------------------------------------------------

    def use_manager(self, manager: SessionManager | Any) -> None:
        """Read from `manager` from now on: the workbench draws its first frame from an
        empty stand-in and hands over its engine once it exists."""
        self._index.use_manager(manager)

    def sync(self) -> None:
        """Pull new records from the engine's stores and show them.

        O(new records); returns at once when nothing changed. Follows the tail
        if the reader is at the end, else counts rows in `new_since_scrolled`.
        """
        self._sync(bytelog_index.SYNC_ROW_BUDGET)

    def _sync(self, budget: int) -> None:
        index = self._index
        records = index.pull(self.session_id, self.listener_id)
        if not records:
            return
        new_rows = index.index(records, self.mode, budget)
        if index.tail_changed:
            # The last row was completed in place: its cached strip is stale.
            self._cache.discard(index.base + len(index) - 1)
        if new_rows:
            self._append(new_rows)
        elif index.tail_changed:
            self.refresh()

    def show(self, *, session_id: int | None, listener_id: int | None = None) -> None:
        """Show one session, one listener's view, or (both None) everything: one rebuild."""
        if session_id == self.session_id and listener_id == self.listener_id:
            return
        self.set_reactive(ByteLogView.session_id, session_id)
        self.set_reactive(ByteLogView.listener_id, listener_id)
        self._fit_hex()  # the session column comes and goes with them
        self._rebuild()

    def clear(self) -> None:
        """Forget what is shown; only bytes arriving from now on appear. Engine counters are untouched."""
        self._index.set_floor()
        self._reset()
        self._update_virtual_size()
        self.refresh()

    def search(self, text: str, forward: bool = True) -> bool:
        """Jump to the next (or previous) row holding `text` (case-insensitive), wrapping once.

        Matches what is drawn (escaped text or hex dump). Returns False when no row matches.
        """
        if bool(text) != bool(self._search_text):
            self.refresh_bindings()  # n/N change meaning
        self._search_text = text
        if not text:
            self._match = None
            self._cache.clear()
            self.refresh()
            return False
        needle = text.lower()
        count = self.row_count
        if count == 0:
            return False
        if self._match is not None and self._match[0] >= self._index.base:
            here = self._match[0] - self._index.base
        else:
            here = int(self.scroll_y) - 1 if forward else int(self.scroll_y) + self.scrollable_content_region.height
        step = 1 if forward else -1
        for k in range(1, count + 1):
            index = (here + step * k) % count
            body = row_body(self._index.row(index), self.mode, self._index.hex_width).lower()
            column = body.find(needle)
            if column != -1:
                self._show_match(index, column, len(text))
                return True
        return False

    def _append(self, new_rows: list[Row]) -> None:
        index = self._index
        trimmed = index.append(new_rows)
        body = hex_row_length(index.hex_width) if self.mode == HEX else index.widest
        self._max_width = max(self._max_width, self._prefix_width() + body)
        if self._match is not None and self._match[0] < index.base:
            self._match = None
        self._syncing = True
        try:
            self._update_virtual_size()
            if self._follow:
                self.scroll_y = self.max_scroll_y
            else:
                # Keep the rows under the reader still: trimming shifted them up.
                self._new += len(new_rows)
                if trimmed:
                    self.scroll_y = max(0, self.scroll_y - trimmed)
        finally:
            self._syncing = False
        self.refresh()

    @property
    def tagged(self) -> bool:
        """True when rows carry their connection's tag (more than one session shown)."""
        return self.session_id is None or self.listener_id is not None

    def _prefix_width(self) -> int:
        return prefix_width(self.show_timestamps, self.tagged)

    @property
    def hex_width(self) -> int:
        """Bytes per hex row now: 16, 8 or 4, the most whose rows fit beside the scrollbar."""
        return self._index.hex_width

    def _fit_hex(self) -> bool:
        """Pick the hex row width for the view's width; True when it changed."""
        # The scrollbar's width is reserved even while it is hidden: a log that grows
        # must not push the end of its rows behind it.
        available = self.content_region.width - self.styles.scrollbar_size_vertical
        if available <= 0:
            return False
        width = fit_hex_width(available, self._prefix_width())
        if width == self._index.hex_width:
            return False
        self._index.hex_width = width
        return True

    def on_resize(self) -> None:
        if self._fit_hex() and self.mode == HEX:
            self._rebuild()

    def _grow_width(self) -> None:
        self._width_pending = False
        self._update_virtual_size()

    def _update_virtual_size(self) -> None:
        self.virtual_size = Size(self._max_width, self.row_count)

    # --- drawing --------------------------------------------------------------------------

    def _parts(self, row: Row) -> list[tuple[str, str]]:
        return row_parts(row, self.mode, timestamps=self.show_timestamps,
                         show_session=self.tagged, wall_offset=self._wall_offset, utc=self.utc,
                         hex_width=self._index.hex_width)

    def _style(self, role: str) -> Style:
        style = self._styles.get(role)
        if style is None:
            style = self.get_component_rich_style(self._ROLE_CLASSES.get(role, role))
            self._styles[role] = style
        return style

    def notify_style_update(self) -> None:
        # A theme change: styles and every cached strip are stale.
        super().notify_style_update()
        self._styles.clear()
        self._cache.clear()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        index = scroll_y + y
        base_style = self.rich_style
        if index < 0 or index >= self.row_count:
            return Strip.blank(width, base_style)
        number = self._index.base + index
        strip = self._cache.get(number)
        if strip is None:
            strip = self._build_strip(self._index.row(index), number)
            if self._match is None or self._match[0] != number:
                self._cache[number] = strip
            if strip.cell_length > self._max_width:
                # Escapes make rows wider than their raw bytes; grow the scroll range lazily.
                self._max_width = strip.cell_length
                if not self._width_pending:
                    self._width_pending = True
                    self.call_after_refresh(self._grow_width)
        return strip.crop_extend(scroll_x, scroll_x + width, base_style)

    def _build_strip(self, row: Row, number: int) -> Strip:
        segments: list[Segment] = []
        parts = self._parts(row)
        for text, role in parts:
            segments.append(Segment(text, self._style(role)))
        if self._match is not None and self._match[0] == number:
            segments = self._highlight(segments, parts)
        return Strip(segments)

    def _highlight(self, segments: list[Segment], parts: list[tuple[str, str]]) -> list[Segment]:
        _, column, length = self._match  # type: ignore[misc]
        body_text, body_style = segments[-1].text, segments[-1].style
        start = 2 + column  # after the marker and its space
        match_style = self._style("bytelog--match")
        return segments[:-1] + [
            Segment(body_text[:start], body_style),
            Segment(body_text[start:start + length], body_style + match_style if body_style else match_style),
            Segment(body_text[start + length:], body_style),
        ]

    def _show_match(self, index: int, column: int, length: int) -> None:
        self._match = (self._index.base + index, column, length)
        self._cache.clear()
        # The reader is looking at a match: new bytes must not scroll it away.
        self._follow = False
        height = self.scrollable_content_region.height
        if not (self.scroll_y <= index < self.scroll_y + height):
            self.scroll_to(y=max(0, index - height // 2), animate=False, immediate=True)
        self.refresh()

    # --- watchers ---------------------------------------------------------------------------

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if not self._syncing:
            # The reader moved: follow only while at the very end.
            self._follow = new_value >= self.max_scroll_y
            if self._follow:
                self._new = 0

    def _rebuild(self) -> None:
        self._reset()
        # A one-off user action: index everything the stores still keep (up to the row bound).
        self._sync(bytelog_index.MAX_ROWS)
        self._update_virtual_size()
        self.refresh()

    def watch_session_id(self) -> None:
        self._fit_hex()  # the session column comes and goes with it
        self._rebuild()

    def watch_listener_id(self) -> None:
        self._fit_hex()  # the session column comes and goes with it
        self._rebuild()

    def watch_utc(self) -> None:
        self._cache.clear()
        self.refresh()

    def watch_mode(self) -> None:
        self._fit_hex()
        self._rebuild()

    def watch_show_timestamps(self, show: bool) -> None:
        if self._fit_hex() and self.mode == HEX:
            self._rebuild()
            return
        self._cache.clear()
        self._max_width += 13 if show else -13
        self._update_virtual_size()
        self.refresh()

    def validate_mode(self, mode: str) -> str:
        return mode if mode in (TEXT, HEX) else TEXT

    # --- actions ------------------------------------------------------------------------------

    def action_follow(self) -> None:
        """Jump to the end and follow new bytes again."""
        self._follow = True
        self._new = 0
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    def action_toggle_timestamps(self) -> None:
        self.show_timestamps = not self.show_timestamps

    def action_toggle_hex(self) -> None:
        self.mode = HEX if self.mode == TEXT else TEXT

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # n/N belong to a search; without one they fall through to the screen (n: new listener).
        if action in ("search_next", "search_previous"):
            return bool(self._search_text)
        return True

    def end_search(self) -> bool:
        """Forget the search (n/N go back to the screen's keys); False if there was none."""
        if not self._search_text:
            return False
        self.search("")
        return True

    def action_search_next(self) -> None:
        if self._search_text:
            self.search(self._search_text, True)

    def action_search_previous(self) -> None:
        if self._search_text:
            self.search(self._search_text, False)
