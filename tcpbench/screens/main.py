"""The workbench screen: listeners, connections, the byte log and the send bar.

One timer (`SYNC_HZ`) does all redrawing: the byte log on every tick, the
tables and the header every few ticks. Engine events are collected by a cheap
subscriber into a list and handled on the timer too, so a burst of traffic
never turns into a burst of messages.

The first frame comes before the engine: the app makes its manager only after
that frame is painted, so until it hands it over (`attach_engine`) the screen
reads `NO_ENGINE_YET`, an empty stand-in that draws the same empty tables and
zero totals. Nothing here imports the engine's modules at the top for that reason.
And the screen does not render while Textual's start-up batch holds: Textual would
render it whole and drop the frame (`_compositor_refresh` below, a private hook of
the pinned Textual 8.2.8; tests/ui/test_first_frame.py fails if it stops working).

What the byte log shows and how the person picks it lives in the base class,
`screens.logselect.LogSelectionScreen`.
"""

from __future__ import annotations

import time
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Protocol, runtime_checkable

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.widgets import DataTable, Input

from tcpbench.screens.blink import apply_blink
from tcpbench.screens.commands import COMMANDS
from tcpbench.screens.logselect import LogSelectionScreen
from tcpbench.screens.teaching import TeachingActions
from tcpbench.widgets.bytelog import ByteLogView
from tcpbench.widgets.footer import CompactFooter
from tcpbench.widgets.header import TotalsHeader
from tcpbench.widgets.notes_panel import NotesPanel
from tcpbench.widgets.sendbar import LineInput, SendBar
from tcpbench.widgets.tables import ConnectionsTable, ListenersTable

if TYPE_CHECKING:
    from tcpbench.engine import events as ev
    from tcpbench.engine.listener import Listener
    from tcpbench.engine.manager import SessionManager
    from tcpbench.engine.session import Session

SYNC_HZ = 30
TABLE_EVERY = 8
"""Tables and header redraw every 8th tick (~4 Hz): rates and ages need no more."""
BURST_TABLE_EVERY = 3
"""After an event they redraw at the next tick, but while events keep coming at most every
3rd tick (~10 Hz): in a connection storm every redraw re-renders the whole connections
table, and at 30 Hz those frames were a third of the app's time (py-spy: Compositor
34%), enough to hold a live echo session's answer or a key past 100 ms."""
RESET_NOTICE_SECONDS = 2.0
WIDE = 180
"""At this width and more the two tables sit side by side: from here the connections
table (3/5 of the width) still shows every column up to `local`; below it each table
gets the whole width, which at 160 columns shows every column of both."""


class NoEngineYet:
    """What the screen reads before the app has made its engine: nothing listens,
    nothing is connected, nothing counted. Only what the first sync reads."""

    listeners: Any = MappingProxyType({})
    sessions: Any = MappingProxyType({})
    history: Any = MappingProxyType({})
    bytes_in = 0
    bytes_out = 0


NO_ENGINE_YET = NoEngineYet()


@runtime_checkable
class Workbench(Protocol):
    """What the main screen needs of the app that shows it (`TcpBenchApp` provides it).

    A protocol, so that screens never import the app: the app imports its screens.
    Notifications go through Textual's own `App.notify`.
    """

    manager: SessionManager
    """The engine: every listener and session the screen shows (made at first read)."""
    clock: Callable[[], float]
    """Wall-clock seconds for timestamps and ages."""
    address_formatter: Callable[[tuple[str, int]], str]
    """How an address is shown."""
    utc: bool
    """Timestamps in UTC at start (else local time)."""

    def open_probe(self, host: str = "127.0.0.1", ports: str = "") -> None:
        """Show the port probe, prefilled with HOST and PORTS."""
        ...

    def when_engine_ready(self, callback: Callable[[SessionManager], object]) -> None:
        """Call `callback(manager)` once the engine exists (at once if it does)."""
        ...


class MainScreen(TeachingActions, LogSelectionScreen):
    """Everything at once: what listens, what is connected, what was said."""

    BINDINGS = [Binding(c.key, c.action, c.label, show=c.show, id=c.action, tooltip=c.help)
                for c in COMMANDS] + [
        Binding("escape", "close_search", "Close search", show=False, id="close_search"),
        Binding("ctrl+r", "search_back", "Previous match", show=False, id="search_back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.events: list[ev.Event] = []
        self.show_all = False
        self.target: tuple[str, int] | None = None
        """What the send bar talks to: ("session", id) or ("listener", id)."""
        self.last_connect_address = "127.0.0.1:"
        """What the connect dialog starts from: the last address that connected."""
        self._tick = 0
        self._tables_stale = False
        self._tables_synced_at = -BURST_TABLE_EVERY
        self._unsubscribe: Any = None
        self.engine: SessionManager | NoEngineYet = NO_ENGINE_YET
        """What the tables, header and log read: the app's manager once it is handed over."""
        self._byte_events: tuple[type, ...] = ()
        self._painted = False
        self._opened: list[int] = []
        self._resets: list[str] = []
        self._last_reset_notice = -RESET_NOTICE_SECONDS
        self._refusals: list[str] = []
        self._last_refusal_notice = -RESET_NOTICE_SECONDS

    @property
    def bench(self) -> Workbench:
        """The app, as far as this screen needs it."""
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        app = self.bench
        yield TotalsHeader(id="totals")
        yield NotesPanel(id="notes")
        with Container(id="panes"):
            with Vertical(id="listeners-pane", classes="pane"):
                yield ListenersTable(id="listeners")
            with Vertical(id="connections-pane", classes="pane"):
                yield ConnectionsTable(id="connections")
        with Vertical(id="log-pane", classes="pane"):
            yield LineInput(placeholder="search the log (Enter: next, Ctrl+R: previous, Esc: close)",
                        id="search")
            log = ByteLogView(self.engine, clock=app.clock, id="log")
            log.set_reactive(ByteLogView.utc, bool(getattr(app, "utc", False)))
            yield log
        yield SendBar(id="sendbar")
        yield CompactFooter()

    def on_mount(self) -> None:
        self.query_one("#listeners-pane").border_title = "Listeners"
        self.query_one("#connections-pane").border_title = "Connections"
        self.query_one("#log-pane").border_title = "Byte log"
        self.query_one("#search").display = False
        apply_blink(self)
        self._update_target()
        self.sync(full=True)
        self._sync_timer = self.set_interval(1 / SYNC_HZ, self._on_tick, name="sync")
        self.query_one("#connections").focus()
        self.bench.when_engine_ready(self.attach_engine)

    def attach_engine(self, manager: SessionManager) -> None:
        """Read and follow `manager` from now on (called as the app makes it)."""
        from tcpbench.engine import events

        self._byte_events = (events.BytesReceived, events.BytesSent)
        self.engine = manager
        self.query_one(ByteLogView).use_manager(manager)
        self._unsubscribe = manager.subscribe(self._on_engine_event)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def _compositor_refresh(self) -> None:
        # The app pushes this screen from on_mount, inside the batch Textual (8.2.8,
        # pinned) holds over start-up. The screen's first layout rendered the whole screen
        # there (~9 ms) and App._display dropped it, clearing the dirty regions with it,
        # so the first frame written was partial (no listeners pane, no byte log) and
        # the whole one came a refresh later. Not rendering while the batch holds leaves
        # everything dirty: the first frame written is the whole screen. Only until then.
        if not self._painted:
            if self.app._batch_count and self.is_current:
                return
            self._painted = True
        super()._compositor_refresh()

    def on_resize(self) -> None:
        self.set_class(self.size.width >= WIDE, "wide")

    # --- syncing with the engine ---------------------------------------------

    def _on_engine_event(self, event: ev.Event) -> None:
        # Called inside engine callbacks: only keep the rare facts, and in O(1).
        if not isinstance(event, self._byte_events):
            self.events.append(event)

    def _on_tick(self) -> None:
        tick = self._tick = self._tick + 1
        if self.events:
            self._tables_stale = True
        full = tick % TABLE_EVERY == 0 or (self._tables_stale
                                           and tick - self._tables_synced_at >= BURST_TABLE_EVERY)
        if full:
            self._tables_stale = False
            self._tables_synced_at = tick
        self.sync(full=full)

    def sync(self, full: bool = True) -> None:
        """Redraw from the engine: the log always; tables and header when `full`."""
        app = self.bench
        engine = self.engine
        if self.events:
            events, self.events = self.events, []
            self._handle_events(events)
        self._report_resets()
        self._report_refusals()
        log = self.query_one(ByteLogView)
        log.sync()
        if full:
            self.query_one(ListenersTable).sync(engine, app.address_formatter)  # type: ignore[arg-type]
            opened, self._opened = self._opened, []
            self.query_one(ConnectionsTable).sync(engine, app.address_formatter, app.clock(),  # type: ignore[arg-type]
                                                  opened)
            self.query_one(TotalsHeader).sync(engine, app.clock())  # type: ignore[arg-type]
            self._follow()
            self._update_target()
        self._update_log_status(log)

    def _handle_events(self, events: list[ev.Event]) -> None:
        from tcpbench.engine import events as ev  # loaded by now: these came from the engine

        app = self.bench
        for event in events:
            if isinstance(event, ev.SessionOpened):
                self._opened.append(event.session)
            elif isinstance(event, ev.ListenerStarted):
                listener = app.manager.listeners.get(event.listener)
                if listener is not None:
                    self.query_one(ListenersTable).track(listener)
            elif isinstance(event, ev.ConnectionRefusedByRule):
                self._refusals.append(f"listener {event.listener} turned {ev.format_address(event.peer)} "
                                      f"away: {event.reason} ({event.detail}; {event.how})")
            elif isinstance(event, ev.SessionReset):
                self._resets.append(f"session {event.session}: reset by peer ({event.message})")
            elif isinstance(event, ev.TlsHandshakeFailed) and event.listener is not None:
                # A client of our listener: no session, no dialog; a notice (throttled like resets).
                self._resets.append(f"listener {event.listener}: TLS handshake with "
                                    f"{ev.format_address(event.peer)} failed: {event.message}")
            # ListenerFailed is not shown here: it only comes from start_listener, which
            # raises too, and each caller (the dialog, --listen) already reports it once.
            elif isinstance(event, ev.ServiceNoted) and event.topic in ("error", "warning"):
                self.app.notify(event.text, title=event.topic, markup=False,
                                severity="error" if event.topic == "error" else "warning")

    def _report_resets(self) -> None:
        # A burst of resets (a scanner, a load test) must not become a burst of toasts:
        # at most one notification every RESET_NOTICE_SECONDS, summing up the rest.
        now = time.monotonic()
        if not self._resets or now - self._last_reset_notice < RESET_NOTICE_SECONDS:
            return
        resets, self._resets = self._resets, []
        self._last_reset_notice = now
        only_resets = all("reset by peer" in r for r in resets)
        text = resets[0] if len(resets) == 1 else (
            f"{len(resets)} connections were reset by their peers (the last: {resets[-1]})"
            if only_resets else
            f"{len(resets)} connections were reset or failed their TLS handshake (the last: {resets[-1]})")
        self.app.notify(text, title="connection reset" if only_resets else "connection failed",
                        severity="warning", markup=False)

    def _report_refusals(self) -> None:
        # As resets: a scanner hitting a --deny rule is one toast every few seconds, not a storm.
        now = time.monotonic()
        if not self._refusals or now - self._last_refusal_notice < RESET_NOTICE_SECONDS:
            return
        refusals, self._refusals = self._refusals, []
        self._last_refusal_notice = now
        text = refusals[0] if len(refusals) == 1 else (
            f"{len(refusals)} connections were turned away (the last: {refusals[-1]})")
        self.app.notify(text, title="connection refused by a rule", severity="information",
                        markup=False)

    # --- selection and the send bar ---------------------------------------------

    def _update_target(self) -> None:
        bar = self.query_one(SendBar)
        app = self.bench
        label = "no target: select a row"
        if self.target is not None:
            kind, key = self.target
            if kind == "session" and key in app.manager.history:
                session = app.manager.history[key]
                label = f"#{key} {app.address_formatter(session.peer)}"
                if session.is_finished or session.our_fin:
                    label += f" ({session.state})"
            elif kind == "listener":
                listener = app.manager.listeners.get(key)
                label = (f"L{key} {listener.service_name} (all clients)" if listener is not None
                         else f"L{key} (stopped)")
        bar.target_label = label

    @on(SendBar.Submitted)
    def _send(self, event: SendBar.Submitted) -> None:
        from tcpbench.engine.conduit import SessionClosedError

        app = self.bench
        if self.target is None:
            self.app.notify("Select a connection (or a raw/chat listener) to send to.",
                            severity="warning", markup=False)
            return
        kind, key = self.target
        try:
            if kind == "session":
                app.manager.session(key).send(event.data)
            else:
                if key not in app.manager.listeners:
                    raise SessionClosedError(f"listener {key} is stopped")
                app.manager.operator_input(key, event.data)
        except (SessionClosedError, KeyError) as exc:
            self.app.notify(str(exc), title="not sent", severity="error", markup=False)

    @on(SendBar.Invalid)
    def _invalid(self, event: SendBar.Invalid) -> None:
        self.app.notify(event.error, title="not sent", severity="error", markup=False)

    def _session(self) -> Session | None:
        key = self.query_one(ConnectionsTable).selected_key
        if key is None:
            self.app.notify("Select a connection first.", severity="warning", markup=False)
            return None
        return self.bench.manager.history.get(key)

    def _listener(self) -> Listener | None:
        key = self.query_one(ListenersTable).selected_key
        listener = self.bench.manager.listeners.get(key) if key is not None else None
        if listener is None:
            self.app.notify("Select a running listener first.", severity="warning", markup=False)
        return listener

    # --- actions -------------------------------------------------------------------

    def action_new_listener(self) -> None:
        from tcpbench.screens.dialogs import NewListenerDialog

        def started(listener: Listener | None) -> None:
            if listener is not None:
                self.query_one(ListenersTable).track(listener)
                self.sync()
                self.app.notify(f"{listener.service_name} listening on "
                                f"{self.bench.address_formatter(listener.address)}", markup=False)

        self.app.push_screen(NewListenerDialog(self.bench.manager), started)

    def action_stop_listener(self) -> None:
        listener = self._listener()
        if listener is None:
            return
        manager = self.bench.manager

        def answer(yes: bool | None) -> None:
            if yes:
                self.run_worker(manager.stop_listener(listener.id), group="stop",
                                name=f"stopping listener {listener.id}", exit_on_error=False)

        if listener.sessions:
            from tcpbench.screens.dialogs import ConfirmDialog

            self.app.push_screen(ConfirmDialog(
                f"Stop listener {listener.id} ({listener.service_name})? Its {len(listener.sessions)} "
                "open connection(s) will be closed.", yes="Stop"), answer)
        else:
            answer(True)

    def action_connect(self) -> None:
        from tcpbench.screens.dialogs import ConnectDialog

        # The last address that connected: reconnecting to the server under test (after
        # it closed, or to open a second client) is one Enter, as a shell's history is.
        dialog = ConnectDialog(self.bench.manager, address=self.last_connect_address)

        def connected(session: Session | None) -> None:
            if dialog.connected_address:
                self.last_connect_address = dialog.connected_address
            if session is not None:
                # Opening a connection is a pick: the log stays on it.
                self.follower.choose(session.id)
                self.log_view = "session"
                self.sync()
                self._show_session(session.id)
                # The person connected to talk: what they type next is for the peer
                # ("EHLO x", "quit"), not the single-key commands (x closes, q quits).
                self.action_focus_send()

        self.app.push_screen(dialog, connected)

    def action_close_session(self) -> None:
        if (session := self._session()) is not None:
            session.close()

    def action_half_close(self) -> None:
        if (session := self._session()) is not None:
            session.half_close()

    def action_abort(self) -> None:
        if (session := self._session()) is not None:
            session.abort()

    @on(DataTable.RowSelected, "#connections")
    def _session_chosen(self) -> None:
        self.action_details()

    def action_details(self) -> None:
        from tcpbench.screens.detail import ConnectionDetail

        if (session := self._session()) is not None:
            app = self.bench
            self.app.push_screen(ConnectionDetail(app.manager, session.id, self.query_one(ConnectionsTable),
                                                  clock=app.clock, address=app.address_formatter))

    def action_toggle_hex(self) -> None:
        log = self.query_one(ByteLogView)
        log.mode = "text" if log.mode == "hex" else "hex"

    def action_toggle_timestamps(self) -> None:
        log = self.query_one(ByteLogView)
        log.show_timestamps = not log.show_timestamps

    def action_clear_log(self) -> None:
        self.query_one(ByteLogView).clear()

    def action_search(self) -> None:
        search = self.query_one("#search", Input)
        search.display = True
        search.focus()

    def action_close_search(self) -> None:
        search = self.query_one("#search", Input)
        if search.display:
            search.display = False
            self.query_one(ByteLogView).focus()
        elif isinstance(self.focused, Input) or self.query_one(SendBar).has_focus_within:
            # Escape leaves the send bar, so single-key commands work again.
            self.query_one(ByteLogView).focus()
        else:
            # A second Escape ends the search, so n opens the listener dialog again.
            self.query_one(ByteLogView).end_search()

    def action_search_back(self) -> None:
        self._search(forward=False)

    @on(Input.Submitted, "#search")
    def _search_submitted(self) -> None:
        self._search(forward=True)

    def _search(self, forward: bool) -> None:
        text = self.query_one("#search", Input).value
        if text and not self.query_one(ByteLogView).search(text, forward=forward):
            self.app.notify(f"not found: {text}", severity="warning", markup=False)

    def action_focus_send(self) -> None:
        for widget in self.query_one(SendBar).walk_children():
            if widget.focusable:
                widget.focus()
                return

    def action_probe(self) -> None:
        self.bench.open_probe()

    def action_probe_listener(self) -> None:
        if (listener := self._listener()) is not None:
            host, port = listener.address
            host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
            self.bench.open_probe(host, str(port))

    def action_help(self) -> None:
        from tcpbench.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(self))

    async def action_quit(self) -> None:
        manager = self.bench.manager
        listeners, sessions = len(manager.listeners), len(manager.sessions)
        if not listeners and not sessions:
            self.app.exit()
            return
        from tcpbench.screens.dialogs import ConfirmDialog

        def answer(yes: bool | None) -> None:
            if yes:
                self.app.exit()

        # A stray q (meant for the peer, typed with the send bar unfocused) would
        # otherwise end a workshop's every connection; Ctrl+Q still quits at once.
        self.app.push_screen(ConfirmDialog(
            f"Quit? {_count(listeners, 'listener')} and {_count(sessions, 'connection')} are "
            "open and will be closed. (Ctrl+Q quits without asking.)", yes="Quit"), answer)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
