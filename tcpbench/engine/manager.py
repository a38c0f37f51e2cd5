"""The SessionManager: the one owner of every listener, session, task and child process.

Everything the UI and the CLI do goes through it: start and stop listeners, open
client sessions, send, half-close, close, abort, and subscribe to events. It
never imports Textual or Rich; the UI reads its state on a timer.

asyncio's `Server.close()` leaves accepted connections open (before Python
3.13), so the manager keeps its own registry of sessions and closes them itself.

Each session knows the manager only as its `SessionOwner` (defined beside
`Session`): the manager implements that protocol with public verbs
(`register`, `unregister`, `emit`, `note`, `report_bug`, `spawn_handler`), and
sessions never touch its private state.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import traceback
from collections import deque
from typing import Any, Callable, Coroutine

from tcpbench.engine import events as ev
from tcpbench.engine.acceptor import Acceptor, bind_listening_sockets
from tcpbench.engine.admission import AdmissionPolicy, Gate
from tcpbench.engine.bytestore import DEFAULT_BUDGET, DEFAULT_CAP, ByteStore, StoreBudget
from tcpbench.engine.hangup import HangupWatch
from tcpbench.engine.idle import IdleWatch
from tcpbench.engine.linger import LingerQueue
from tcpbench.engine.listener import Listener, listen_check, short_address
from tcpbench.engine.errors import ConnectError, ListenError, classify_bind_error, classify_connect_error
from tcpbench.engine.session import Session
from tcpbench.engine import tls_connect
from tcpbench.engine.tls import ClientTls, ServerTls, classify_tls_error
from tcpbench.services.base import Note, Service

log = logging.getLogger("tcpbench.engine")

DEFAULT_LINGER = 2.0
ENDED_KEPT = 2000
"""Ended sessions kept in `history` (for the UI's "how did it end"); older ones are forgotten."""
TICK_SECONDS = 0.25
LISTENER_NOTES_CAP = 64 * 1024
"""Store cap of a listener's own notes: events only, so about 5,000 notes are kept."""

Subscriber = Callable[[ev.Event], None]
BytesKind = type[ev.BytesReceived] | type[ev.BytesSent]
BytesTap = Callable[[BytesKind, float, int, int, bytes], None]
"""`tap(kind, at, session, offset, data)`: a chunk of bytes as the fields of the event
`kind(at, session, offset, data)` would have, without the event (see `subscribe`)."""


def _emit_to(subscribers: list[Subscriber], event: ev.Event) -> None:
    for callback in subscribers:
        try:
            callback(event)
        except Exception:
            log.exception("event subscriber failed on %s", event.kind)


class SessionManager:
    """Owns listeners, sessions and their tasks on one event loop.

    It is every session's `SessionOwner` (structurally: the protocol is not a base
    class, so its attributes stay plain instance attributes on the hot path).

    Resource handling: every socket, task and child process the engine creates is
    registered here. `aclose()` stops listeners, closes sessions (gracefully, then
    by RST after a bound), cancels handler tasks and waits for them; use the
    manager as an async context manager so that happens on every exit path.

    Errors: `start_listener` raises `ListenError` and `open_session` raises
    `ConnectError`, each with a one-line message for a person; both also emit a
    failure event. Bugs in services are logged and end only the affected session.
    """

    def __init__(self, *, store_cap: int = DEFAULT_CAP, linger: float = DEFAULT_LINGER,
                 ended_kept: int = ENDED_KEPT, loop: asyncio.AbstractEventLoop | None = None,
                 store_budget: int = DEFAULT_BUDGET) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self.store_cap = store_cap
        self.budget = StoreBudget(store_budget)
        """What all sessions keep for display, together: the oldest and ended give way first."""
        self.ended_kept = ended_kept
        """Ended sessions kept in `history`; the oldest are forgotten first."""
        self.linger = linger
        self.listeners: dict[int, Listener] = {}
        self._stopping: dict[int, Listener] = {}
        """Listeners `stop_listener` has taken out of `listeners` and is still closing."""
        self.sessions: dict[int, Session] = {}
        """Live sessions (opened, not yet ended)."""
        self.history: dict[int, Session] = {}
        """Every session ever opened, ended ones included (the UI shows how each ended)."""
        self.bytes_in = 0
        """Bytes received by every session (sessions add to it: `SessionOwner.bytes_in`)."""
        self.bytes_out = 0
        """Bytes sent by every session (sessions add to it: `SessionOwner.bytes_out`)."""
        self._subscribers: list[Subscriber] = []
        self._bytes_subscribers: list[Subscriber] = []
        """Those of `_subscribers` that take a chunk of bytes as an event."""
        self._bytes_taps: list[BytesTap] = []
        """What the others take a chunk of bytes through instead (`subscribe(bytes_tap=...)`)."""
        self.has_subscribers = False
        """True while anyone is subscribed (kept by `subscribe` and its unsubscribe): the
        sessions' per-chunk check before they build a bytes event."""
        self._tasks: set[asyncio.Task[Any]] = set()
        self._next_listener = 1
        self._next_session = 1
        self._ticker: asyncio.Task[None] | None = None
        self._closed = False
        self.bug_count = 0
        self._ended: deque[int] = deque()
        self._refusing: set[asyncio.Task[None]] = set()
        self.hangups = HangupWatch(self.loop)
        """Notices an RST on sessions whose reading is paused (sessions use it themselves)."""
        self.lingers = LingerQueue(self.loop)
        """The linger deadlines of graceful closes (`SessionOwner.lingers`)."""

    async def __aenter__(self) -> SessionManager:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- events -----------------------------------------------------------------

    def subscribe(self, callback: Subscriber, *, bytes_tap: BytesTap | None = None) -> Callable[[], None]:
        """Call `callback(event)` synchronously for every event; returns an unsubscribe.

        The callback runs inside engine callbacks: keep it O(1) and never await.
        With `bytes_tap`, each chunk of bytes received or sent reaches the subscriber as
        `bytes_tap(kind, at, session, offset, data)` (`kind`: the class `BytesReceived` or
        `BytesSent`) instead of as an event to `callback`. That is for a subscriber that
        sees every chunk of a firehose (the headless printer): building the event costs
        more than taking its fields (~0.6 us a chunk each way, where a 16 KiB echo costs
        ~25 us), and no event is built when every subscriber takes the fields.
        """
        self._subscribers.append(callback)
        if bytes_tap is None:
            self._bytes_subscribers.append(callback)
        else:
            self._bytes_taps.append(bytes_tap)
        self.has_subscribers = True

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)
                if bytes_tap is None:
                    self._bytes_subscribers.remove(callback)
                else:
                    self._bytes_taps.remove(bytes_tap)
                self.has_subscribers = bool(self._subscribers)

        return unsubscribe

    # The SessionOwner verbs (see tcpbench.engine.session.SessionOwner) ----------------

    def emit(self, event: ev.Event) -> None:
        """Call every subscriber with `event`; a failing subscriber is logged, not raised."""
        _emit_to(self._subscribers, event)

    def emit_bytes(self, kind: BytesKind, at: float, session: int, offset: int, data: bytes) -> None:
        """Tell every subscriber about a chunk of bytes: its taps take the fields, the others
        an event `kind(at, session, offset, data)`, built once for all of them."""
        for tap in self._bytes_taps:
            try:
                tap(kind, at, session, offset, data)
            except Exception:
                log.exception("bytes tap failed on %s", kind.kind)
        if self._bytes_subscribers:
            _emit_to(self._bytes_subscribers, kind(at, session, offset, data))

    def note(self, note: Note, listener_id: int | None) -> None:
        """Record a service's note as a `ServiceNoted` event and emit it.

        Stored in the live session it names, else in its listener's `notes`
        (listener-wide notes, and notes about a session that has already ended)."""
        event = ev.ServiceNoted(time.monotonic(), note.session, listener_id, note.topic, note.text,
                                note.fields)
        session = self.sessions.get(note.session) if note.session is not None else None
        if session is not None:
            session.store.add_event(event, session.id)
        elif listener_id is not None and (listener := self.listeners.get(listener_id)) is not None:
            listener.notes.add_event(event, note.session or 0)
        self.emit(event)

    def report_bug(self, session: Session | None, where: str = "") -> None:
        """Log the exception being handled as a tcpbench bug, count it, and note it."""
        self.bug_count += 1
        text = traceback.format_exc(limit=6)
        log.error("tcpbench bug%s: %s", f" in {where}" if where else "", text)
        self.note(Note(f"internal error{(' in ' + where) if where else ''}: "
                       f"{text.strip().splitlines()[-1]}",
                       session.id if session else None, "error"), session.listener_id if session else None)

    # --- listeners ----------------------------------------------------------------

    async def start_listener(self, service: Service, host: str = "127.0.0.1", port: int = 0, *,
                             idle_timeout: float | None = None,
                             admission: AdmissionPolicy | None = None,
                             tls: ServerTls | None = None) -> Listener:
        """Listen on HOST:PORT and answer each connection with `service`.

        Returns once the socket listens, with the real address (`port=0` picks a
        free port). `host="::"` listens on IPv6 and IPv4 (dual-stack); `0.0.0.0`
        on every IPv4 address.

        Resource handling: the listening socket belongs to the manager until
        `stop_listener` or `aclose`.

        With `tls` (see `tcpbench.engine.tls.server_tls`) every connection does a
        TLS handshake first (bounded by its `handshake_timeout`); the service and
        the byte log see plaintext. A failed handshake is a `TlsHandshakeFailed`
        event with its reason; the listener keeps serving.

        Errors: `ListenError` (port in use, permission denied, unknown host, an
        address not on this machine), after a `ListenerFailed` event.

        `idle_timeout` closes each session that stays idle that many seconds (each
        by its own deadline, see `IdleWatch`); `admission` turns connections away by
        CIDR rules and a connection limit, each refusal a `ConnectionRefusedByRule`.
        """
        if not 0 <= port <= 65535:
            raise ListenError(host, port, "port", f"port {port} is out of range (0-65535)")
        try:
            socks = await bind_listening_sockets(self.loop, host, port)
        except (OSError, socket.gaierror) as exc:
            error = classify_bind_error(exc, host, port)
            self.emit(ev.ListenerFailed(time.monotonic(), service.name, host, port, error.reason, str(error)))
            raise error from None
        refusal = await listen_check(self.loop, service, socks)
        if refusal is not None:
            for sock in socks:
                sock.close()
            self.emit(ev.ListenerFailed(time.monotonic(), service.name, host, port, "loop", refusal))
            raise ListenError(host, port, "loop", refusal)
        listener_id = self._next_listener
        self._next_listener += 1
        store_cap = self.store_cap
        budget = self.budget

        def factory() -> Session:
            session = Session(self, self._take_session_id(), service, listener_id, store_cap)
            if store_cap:
                budget.attach(session.store)
            return session

        address = short_address(socks[0].getsockname())

        def out_of_resources(exc: OSError) -> None:
            self.note(Note(f"cannot accept more connections: {exc.strerror or exc} "
                           f"(open files are limited by 'ulimit -n'); retrying in 1 s",
                           None, "error"), listener_id)

        def tls_failed(peer: Any, exc: BaseException) -> None:
            reason, message = classify_tls_error(
                exc, server_side=True, timeout=tls.handshake_timeout if tls else 0.0)
            listener.tls_failures += 1
            listener.dirty = True
            self.emit(ev.TlsHandshakeFailed(time.monotonic(), None, listener_id, short_address(peer),
                                            reason, message))

        gate = None
        if admission is not None and admission.restricts:
            def live() -> int:
                return len(listener.sessions)

            def refused() -> None:
                listener.refused += 1
                listener.dirty = True

            gate = Gate(self.loop, listener_id, admission, self.emit, live, refused, self._refusing)
        acceptor = Acceptor(self.loop, socks, factory, out_of_resources, gate, tls=tls,
                            on_tls_failure=tls_failed)
        listener = Listener(listener_id, service, address, acceptor, idle_timeout, admission=admission,
                            gate=gate, notes=ByteStore(min(store_cap, LISTENER_NOTES_CAP)), tls=tls)
        if idle_timeout:
            listener.idle = IdleWatch(self.loop, idle_timeout)
        acceptor.start()
        self.listeners[listener_id] = listener
        self._ensure_ticker()
        self.emit(ev.ListenerStarted(time.monotonic(), listener_id, service.name, address))
        return listener

    async def stop_listener(self, listener_id: int, *, close_sessions: bool = True) -> None:
        """Stop accepting; close the listener's sessions gracefully. Unknown ids are ignored."""
        listener = self.listeners.pop(listener_id, None)
        if listener is None:
            return
        listener.state = "stopped"
        listener.acceptor.close()
        if listener.idle is not None:
            listener.idle.close()
        # Its sessions still end into its totals while the stop closes them.
        self._stopping[listener_id] = listener
        try:
            if close_sessions:
                sessions = [self.sessions[s] for s in listener.sessions if s in self.sessions]
                for session in sessions:
                    session.close()
                await self._wait_sessions(sessions, self.linger + 1.0)
            await listener.acceptor.wait_closed()
        finally:
            self._stopping.pop(listener_id, None)
        self.emit(self._listener_stopped(listener))

    def _listener_stopped(self, listener: Listener) -> ev.ListenerStopped:
        bytes_in, bytes_out = self.listener_totals(listener)
        return ev.ListenerStopped(time.monotonic(), listener.id, listener.service_name,
                                  listener.address, listener.accepted, bytes_in, bytes_out)

    # --- client sessions -------------------------------------------------------------

    async def open_session(self, host: str, port: int, *, timeout: float = 10.0,
                           service: Service | None = None, tls: ClientTls | None = None) -> Session:
        """Connect to HOST:PORT; return the open session.

        Every address the name resolves to is tried in order within `timeout`;
        the failure reported is the first one's (usually the most telling).

        Resource handling: the session belongs to the manager; close it with
        `session.close()` or let `aclose` do it.

        With `tls` (see `tcpbench.engine.tls.client_tls`) the TLS handshake runs
        once TCP is connected (bounded by its `handshake_timeout`, on top of
        `timeout`); the session then opens with a `TlsNegotiated` event.

        Errors: `ConnectError` with `reason` refused, timed_out, host_unreachable,
        network_unreachable, name_not_resolved or other, after a `ConnectFailed`;
        `TlsHandshakeError` (a `ConnectError`) when TCP connected but the handshake
        failed, after a `TlsHandshakeFailed`.
        """
        session_id = self._take_session_id()
        deadline = self.loop.time() + timeout
        first_error: BaseException | None = None
        try:
            async with asyncio.timeout_at(deadline):
                infos = await self.loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
                for family, socktype, proto, _, sockaddr in infos:
                    sock = socket.socket(family, socktype, proto)
                    try:
                        sock.setblocking(False)
                        await self.loop.sock_connect(sock, sockaddr)
                    except OSError as exc:
                        sock.close()
                        first_error = first_error or exc
                        continue
                    except BaseException:
                        sock.close()
                        raise
                    session = Session(self, session_id, service, None, self.store_cap)
                    if self.store_cap:
                        self.budget.attach(session.store)
                    if tls is not None:
                        return await tls_connect.connect_tls(self, session, sock, tls, host, port)
                    try:
                        await self.loop.create_connection(lambda: session, sock=sock)
                    except BaseException:
                        sock.close()
                        raise
                    return session
        except TimeoutError as exc:
            first_error = first_error or exc
        except socket.gaierror as exc:
            first_error = exc
        if first_error is None:
            first_error = OSError("no address to connect to")
        reason, message = classify_connect_error(first_error)
        self.emit(ev.ConnectFailed(time.monotonic(), session_id, host, port, reason, message))
        raise ConnectError(host, port, reason, message)

    async def start_tls(self, session: Session, tls: ClientTls) -> None:
        """Start TLS on an open client session (STARTTLS): the handshake runs on the same
        connection, and the session goes on with the plaintext inside TLS.

        Resource handling: the session keeps its id, counters and byte log.

        Errors: `TlsHandshakeError` after a `TlsHandshakeFailed` event; the session is
        then aborted (TLS cannot fall back to plain text midway).
        """
        await tls_connect.start_tls(self, session, tls)

    # --- operating on sessions ----------------------------------------------------------

    def session(self, session_id: int) -> Session:
        """A live or ended session by id. Errors: KeyError for an unknown id."""
        return self.history[session_id]

    def operator_input(self, listener_id: int, data: bytes) -> None:
        """The operator typed into a listener: its service decides what happens."""
        listener = self.listeners[listener_id]
        effects = listener.service.operator_input(data, time.monotonic())
        self._apply_listener_effects(listener, effects)

    def operator_closed(self, listener_id: int) -> None:
        """The operator's input to a listener ended (EOF on stdin): its service decides."""
        listener = self.listeners[listener_id]
        self._apply_listener_effects(listener, listener.service.operator_closed(time.monotonic()))

    def _apply_listener_effects(self, listener: Listener, effects: list[Any]) -> None:
        for effect in effects:
            if isinstance(effect, Note):
                self.note(effect, listener.id)
                continue
            target = self.sessions.get(effect.session)
            if target is not None:
                target._apply([effect])

    # --- registry ---------------------------------------------------------------------

    def _take_session_id(self) -> int:
        session_id = self._next_session
        self._next_session += 1
        return session_id

    def register(self, session: Session) -> None:
        """A session connected: it is live, and counted by its listener (aborted if that stopped)."""
        self.sessions[session.id] = session
        self.history[session.id] = session
        if session.listener_id is not None:
            listener = self.listeners.get(session.listener_id)
            if listener is not None:
                listener.sessions.add(session.id)
                listener.accepted += 1
                listener.dirty = True
                if listener.gate is not None:
                    listener.gate.connected()
                if listener.idle is not None:
                    listener.idle.watch(session)
                if self._closed or listener.state != "listening":
                    self.loop.call_soon(session.abort, "the listener was stopped")

    def unregister(self, session: Session) -> None:
        """A session ended: no longer live; its bytes fold into its listener's totals."""
        self.sessions.pop(session.id, None)
        self._ended.append(session.id)
        budget = self.budget
        budget.ended(session.store)
        while len(self._ended) > self.ended_kept:
            forgotten = self.history.pop(self._ended.popleft(), None)
            if forgotten is not None:
                budget.forget(forgotten.store)
        if session.listener_id is not None:
            listener = (self.listeners.get(session.listener_id)
                        or self._stopping.get(session.listener_id))
            if listener is not None:
                listener.sessions.discard(session.id)
                if listener.idle is not None:
                    listener.idle.forget(session)
                listener.bytes_in += session.bytes_in
                listener.bytes_out += session.bytes_out
                listener.dirty = True

    def listener_totals(self, listener: Listener) -> tuple[int, int]:
        """Exact (bytes_in, bytes_out) of a listener: ended sessions plus live ones."""
        live_in = live_out = 0
        for session_id in listener.sessions:
            session = self.sessions.get(session_id)
            if session is not None:
                live_in += session.bytes_in
                live_out += session.bytes_out
        return listener.bytes_in + live_in, listener.bytes_out + live_out

    def spawn_handler(self, session: Session) -> None:
        """Run the session's service handler on its conduit as a task this manager owns."""
        handler = session.service.handler if session.service is not None else None
        assert handler is not None and session.conduit is not None
        self.spawn(self._run_handler(session, handler(session.conduit)), name=f"session-{session.id}")

    async def _run_handler(self, session: Session, coro: Coroutine[Any, Any, None]) -> None:
        # The wrapper's finally always ends the session: a handler can never leak a socket.
        try:
            await coro
        except asyncio.CancelledError:
            session.abort("stopped")
            raise
        except ConnectionError:
            pass
        except Exception:
            self.report_bug(session, f"the {session.service.name if session.service else ''} handler")
            session.abort("internal error in the service")
        finally:
            if not session.is_finished:
                session.close()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run a task the manager owns: cancelled and awaited by `aclose`."""
        task = self.loop.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- timers -------------------------------------------------------------------------

    def _ensure_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = self.loop.create_task(self._tick_forever(), name="tcpbench-ticker")

    async def _tick_forever(self) -> None:
        while self.listeners:
            await asyncio.sleep(TICK_SECONDS)
            now = time.monotonic()
            for listener in list(self.listeners.values()):
                service = listener.service
                if service.tick_interval is not None:
                    try:
                        effects = service.tick(now)
                    except Exception:
                        self.report_bug(None, f"{service.name} tick")
                        continue
                    if effects:
                        self._apply_listener_effects(listener, effects)

    # --- shutdown ------------------------------------------------------------------------

    async def _wait_sessions(self, sessions: list[Session], timeout: float) -> None:
        pending = [s.closed_future for s in sessions if not s.closed_future.done()]
        if not pending:
            return
        done, not_done = await asyncio.wait(pending, timeout=timeout)
        for session in sessions:
            if not session.closed_future.done():
                session.abort("did not close in time")
        if not_done:
            await asyncio.wait(not_done, timeout=1.0)

    async def aclose(self, *, graceful: bool = True) -> None:
        """Stop everything the manager owns and wait for it (bounded).

        Graceful: listeners stop, sessions get FIN and a short drain, handler
        tasks are cancelled, then anything left is aborted with RST.
        """
        if self._closed:
            return
        self._closed = True
        for listener in list(self.listeners.values()):
            listener.acceptor.close()
            if listener.idle is not None:
                listener.idle.close()
        for task in list(self._refusing):
            task.cancel()
        sessions = list(self.sessions.values())
        for session in sessions:
            if graceful:
                session.close(linger=min(self.linger, 1.0))
            else:
                session.abort("tcpbench is shutting down")
        await self._wait_sessions(sessions, min(self.linger, 1.0) + 0.5)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
        for listener in list(self.listeners.values()):
            self.listeners.pop(listener.id, None)
            listener.state = "stopped"
            self.emit(self._listener_stopped(listener))
            await listener.acceptor.wait_closed()
        self.hangups.close()
        self.lingers.close()
        if self._ticker is not None:
            self._ticker.cancel()
            try:
                await self._ticker
            except asyncio.CancelledError:
                pass
