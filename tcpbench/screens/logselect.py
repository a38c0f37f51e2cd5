"""What the byte log shows, and how the person chooses it: the main screen's base class.

The newest connection (`screens.follow.Follower`; an ended one for a few seconds,
then the newest open one) until the person picks a row themselves. A pick is
told apart from the table's own cursor moves (rows added or dropped, our
following cursor) by the input just before it: a
navigation key or a click in the connections table, or Enter (RowSelected);
after each table sync `_follow` puts the cursor back on the row shown. Moving
into the listeners table shows that listener's view (all its connections and
its own notes, merged by time). When the row of the connection shown has been
dropped from the table, the log's title says so.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from textual import events, on
from textual.screen import Screen
from textual.widgets import DataTable

from tcpbench.screens.follow import Follower
from tcpbench.widgets import tables
from tcpbench.widgets.bytelog import ByteLogView
from tcpbench.widgets.sendbar import SendBar
from tcpbench.widgets.tables import ConnectionsTable, ListenersTable

if TYPE_CHECKING:
    from tcpbench.engine.listener import Listener

NAVIGATION_KEYS = frozenset({"up", "down", "pageup", "pagedown", "home", "end", "ctrl+home",
                             "ctrl+end", "enter"})
"""Keys that move the connections table's cursor: pressing one there picks a connection."""


class LogSelectionScreen(Screen[None]):
    """The selection half of `MainScreen`: which session or listener the byte log shows.

    Needs of its subclass: `bench` (the app), `engine` (what to read: the manager,
    or a stand-in until it exists), `target`, `_update_target()` and `show_all`.
    """

    bench: Any
    engine: Any
    target: tuple[str, int] | None
    show_all: bool
    _update_target: Any

    def __init__(self) -> None:
        super().__init__()
        self.follower = Follower()
        """Which connection the log shows: the newest one until the person picks."""
        self.log_view = "session"
        """`session` (the followed or picked connection) or `listener` (the selected one's view)."""
        self.selected_listener: int | None = None
        self._log_status: tuple[str, str] = ("", "")

    def _follow(self) -> None:
        # After each table sync: which connection the log shows, and the cursor on it.
        table = self.query_one(ConnectionsTable)
        rows = table.rows
        engine = self.engine
        history = engine.history
        newest = max(history, default=None)  # ids are handed out in order: the newest
        ended_at = None
        if newest is not None:
            if str(newest) in rows:
                ended_at = history[newest].ended_at
            else:
                newest = None

        def newest_open() -> int | None:
            session_id = max(engine.sessions, default=None)
            return session_id if session_id is not None and str(session_id) in rows else None

        session = self.follower.update(
            newest, ended_at, time.monotonic(), newest_open, _Listed(rows),
            lambda: max((int(k.value) for k in rows if k.value), default=None))
        if session is None:
            return
        if (not table.person_moves_in_flight and str(session) in rows
                and table.selected_key != session):
            # Rows added or dropped moved the cursor (or we follow a new one): put it back.
            # Not while a key's or click's move is on its way: that move is the pick.
            with table.moving_itself():
                table.move_cursor(row=table.get_row_index(str(session)), scroll=True)
        self._show_session(session, followed=True)

    def _update_log_status(self, log: ByteLogView) -> None:
        title = "Byte log"
        if log.listener_id is not None:
            listener = self.query_one(ListenersTable).known.get(log.listener_id)
            name = listener.service_name if listener is not None else "stopped"
            which = f"listener L{log.listener_id} ({name}): all its connections and notes"
        elif log.session_id is None:
            which = "all connections"
        else:
            which = f"session {log.session_id}" + (
                " (following the newest)" if self.follower.following else " (picked; w: follow the newest)")
            if str(log.session_id) not in self.query_one(ConnectionsTable).rows:
                kept = log.session_id in self.bench.manager.history
                title = (f"Byte log · connection #{log.session_id} is no longer listed (only the newest "
                         f"{tables.MAX_ENDED_ROWS} ended connections are kept)"
                         + ("" if kept else "; its bytes are gone too"))
        parts = [log.mode, which]
        if log.show_timestamps:
            parts.append("UTC" if log.utc else "local time")
        if not log.at_tail and log.new_since_scrolled:
            parts.append(f"+{log.new_since_scrolled} new (End: follow)")
        status = (title, " · ".join(parts))
        if status != self._log_status:
            self._log_status = status
            pane = self.query_one("#log-pane")
            pane.border_title, pane.border_subtitle = status

    def on_key(self, event: events.Key) -> None:
        # Runs before the table's own binding moves the cursor: the move that follows is a pick.
        if event.key in NAVIGATION_KEYS and isinstance(self.focused, ConnectionsTable):
            self._pick(self.focused.selected_key)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        try:
            widget, _ = self.get_widget_at(event.screen_x, event.screen_y)
        except Exception:  # outside every widget
            return
        if isinstance(widget, ConnectionsTable):
            self._pick(widget.selected_key)

    def _pick(self, session_id: int | None) -> None:
        self.follower.choose(session_id)
        self.log_view = "session"
        if session_id is not None:
            self._show_session(session_id)

    @on(DataTable.RowHighlighted, "#connections")
    def _session_highlighted(self, event: DataTable.RowHighlighted) -> None:
        # Only a move the person made picks a row; the table's own moves (rows added or
        # dropped, our following cursor) are put right by `_follow`. The table tells them
        # apart as it posts them, so a screen busy for many ticks cannot mix them up.
        table = event.data_table
        if isinstance(table, ConnectionsTable) and table.highlighted_by_itself(event):
            return
        if event.row_key.value is not None:
            self.follower.choose(int(event.row_key.value))
            self._show_session(int(event.row_key.value))

    @on(DataTable.RowSelected, "#connections")
    def _session_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self._pick(int(event.row_key.value))

    @on(DataTable.RowHighlighted, "#listeners")
    def _listener_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._select_listener(int(event.row_key.value), show=self.focused is event.data_table)

    def on_descendant_focus(self, event: Any) -> None:
        # Moving into a table shows what it selects: a listener's view, or the connection.
        widget = event.widget
        if isinstance(widget, ListenersTable) and widget.selected_key is not None:
            self._select_listener(widget.selected_key, show=True)
        elif isinstance(widget, ConnectionsTable):
            self.log_view = "session"
            if self.follower.session is not None:
                self._show_session(self.follower.session)

    def _show_session(self, session_id: int, followed: bool = False) -> None:
        if self.log_view != "session":
            return
        if not self.show_all:
            self.query_one(ByteLogView).show(session_id=session_id)
        if self.target != ("session", session_id):
            if (followed and self.target is not None and self.target[0] == "session"
                    and self.query_one(SendBar).has_focus_within):
                # The person is typing to the connection the bar names: a newcomer the log
                # follows must not take the line (in a workshop, the reply would go to the
                # wrong student). The bar follows again once it loses focus (Esc).
                return
            self.target = ("session", session_id)
            self._update_target()

    def _select_listener(self, listener_id: int, show: bool) -> None:
        self.selected_listener = listener_id
        if not show:
            return
        self.log_view = "listener"
        if not self.show_all:
            self.query_one(ByteLogView).show(session_id=None, listener_id=listener_id)
        listener = self.bench.manager.listeners.get(listener_id)
        if listener is not None and takes_operator_input(listener):
            self.target = ("listener", listener.id)
            self._update_target()

    def action_toggle_utc(self) -> None:
        log = self.query_one(ByteLogView)
        log.utc = not log.utc
        log.show_timestamps = True

    def action_follow_newest(self) -> None:
        self.follower.resume()
        self.log_view = "session"
        self.query_one(ConnectionsTable).focus()
        self.sync()

    def action_toggle_all(self) -> None:
        self.show_all = not self.show_all
        log = self.query_one(ByteLogView)
        if self.show_all:
            log.show(session_id=None)
        elif self.log_view == "listener" and self.selected_listener is not None:
            log.show(session_id=None, listener_id=self.selected_listener)
        else:
            log.show(session_id=self.follower.session)


class _Listed:
    """`id in listed`: has the connections table a row for this session id."""

    def __init__(self, rows: Any) -> None:
        self._rows = rows

    def __contains__(self, session_id: object) -> bool:
        return str(session_id) in self._rows


def takes_operator_input(listener: Listener) -> bool:
    """Does this listener's service do something with what the operator types (raw, chat)?"""
    from tcpbench.services.base import Service  # not before the first frame: no listener then

    return type(listener.service).operator_input is not Service.operator_input
