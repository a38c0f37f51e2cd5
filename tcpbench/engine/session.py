"""One TCP connection: its protocol callbacks, counters, lifecycle and flow control.

A `Session` is an `asyncio.Protocol`. Protocol callbacks are the fastest path
asyncio has (a bare Protocol echo runs ~3x a StreamReader/StreamWriter one);
each read hands over a fresh bytes object, which the byte store keeps without a
copy. (A BufferedProtocol reading 64 KiB into a shared buffer, the first design,
measured ~0.6x a bare echo: a copy per chunk and four times the reads.)

How much one read asks for adapts to the traffic and to how busy the loop is
(`readsize.py`): large reads for a bulk sender; for a peer that waits for its
bytes to come back while the loop serves it alone, 16 KiB pieces of a burst of
up to 32 KiB and halves of one of up to 256 KiB.

The hot path (`data_received`) does O(1) work: count, keep for display, tell
subscribers, hand to the service. No formatting, no task, no queue hop.

Lifecycle, as the engine reports it:

    opened -> [peer FIN] -> [our FIN] -> closed (by whoever sent FIN first)
           -> reset by peer (RST)      -> aborted by us (we sent RST)

A graceful close never makes the kernel send RST: after our last byte we send
FIN (`write_eof`) and keep reading, discarding the peer's bytes from the
service's view, until the peer's FIN or `linger` seconds; only then is the socket
closed. Closing a socket with unread input is what makes the kernel reset it
(the reason netcat-as-web-server breaks Chrome).

Sessions whose service has a `handler` expose a `Conduit` instead: an async
read/write API whose `write` waits while the peer is slow and whose reader
pauses the socket while the handler is slow.

A session knows its owner only as a `SessionOwner`: the few verbs it may use to
tell the owner something (register, unregister, emit, note, report_bug,
spawn_handler, open_session) and the few shared things it reads (the loop, the
linger time and the queue of linger deadlines, the live sessions, the byte
totals), defined below. The `SessionManager` implements it, and this module
never imports the manager: as with a trio nursery handed to a task, the owned
object is given a few verbs, not its owner. Pausing reads (and the hangup watch
that notices an RST meanwhile) is in `flow.py`, sending a file in
`filestream.py`.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from typing import TYPE_CHECKING, Any, Mapping, Protocol, runtime_checkable

from tcpbench.engine import events as ev
from tcpbench.engine.bytestore import RECEIVED, SENT, ByteStore
from tcpbench.engine.conduit import Conduit, SessionClosedError
from tcpbench.engine.filestream import FileSending, FileStream
from tcpbench.engine.flow import ReadFlow
from tcpbench.engine.linger import LingerQueue
from tcpbench.engine.readsize import (HALVE_MAX, READ_CONDUIT, READ_LARGE, SOLO_POLLS,
                                      adaptable_reader, next_read_size)
from tcpbench.engine.states import (ABORTED, CLOSED, CLOSING, CONNECTING, FAILED,  # noqa: F401
                                    FINAL_STATES, OPEN, OUR_FIN, PEER_FIN, RESET)
from tcpbench.services.base import (Abort, Close, Effect, HalfClose, Note, Resume, Send, SendFile,
                                    Service)

if TYPE_CHECKING:
    from tcpbench.engine.busypoll import BusyPollSelector

_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)
"""Linux's; elsewhere an answer and the FIN after it leave as the kernel sends them."""


@runtime_checkable
class SessionOwner(Protocol):
    """What a session may know of, and tell, the one that owns it (the `SessionManager`).

    Everything here runs on the owner's loop, synchronously, from inside the
    session's protocol callbacks: no verb may block or await.

    Optional: an owner may have `hangups`, a `HangupWatch` that the session puts
    itself in while its reading is paused (so an RST then is noticed at once).
    """

    loop: asyncio.AbstractEventLoop
    """The loop the session runs on (for its futures)."""
    linger: float
    """Default seconds a graceful close drains the peer's input before closing."""
    lingers: LingerQueue
    """Where a graceful close arms its linger deadline (one timer for all the sessions)."""
    has_subscribers: bool
    """True while anyone listens to events. A plain attribute, so the per-chunk hot
    path can skip building a bytes event nobody would see; only the owner sets it."""
    bytes_in: int
    """Bytes received by all sessions; each session adds what it receives."""
    bytes_out: int
    """Bytes sent by all sessions; each session adds what it hands to its transport."""

    @property
    def sessions(self) -> Mapping[int, Session]:
        """Live sessions by id: where a service's effect for another session is sent."""
        ...

    def register(self, session: Session) -> None:
        """The session is connected (`connection_made`): count it as live, and as its
        listener's. The owner may schedule an abort if that listener is stopping."""
        ...

    def unregister(self, session: Session) -> None:
        """The session has ended (`connection_lost`): forget it as live, fold its byte
        counts into its listener's, keep it in the history for a while."""
        ...

    def emit(self, event: ev.Event) -> None:
        """Tell every subscriber about `event` (the session has already stored it)."""
        ...

    def emit_bytes(self, kind: type[ev.BytesReceived] | type[ev.BytesSent], at: float,
                   session: int, offset: int, data: bytes) -> None:
        """Tell every subscriber about a chunk of bytes, the event `kind(at, session, offset,
        data)`; the owner builds that event only for subscribers that need the object."""
        ...

    def note(self, note: Note, listener_id: int | None) -> None:
        """A service said something worth showing: store it with the session it names
        and tell the subscribers, as a `ServiceNoted` event."""
        ...

    def report_bug(self, session: Session | None, where: str = "") -> None:
        """Our own code failed (a service hook raised): log the current exception and
        note it. Call it from inside the `except` block."""
        ...

    def spawn_handler(self, session: Session) -> None:
        """Run the service's async `handler` on `session.conduit` as a task the owner
        keeps and cancels on shutdown; when the handler ends, the session is closed."""
        ...

    async def open_session(self, host: str, port: int, *, timeout: float = 10.0,
                           service: Service | None = None) -> Session:
        """Connect to HOST:PORT as a new client session (a handler's outgoing leg,
        as in relay). Errors: `ConnectError`."""
        ...


class Session(FileSending, ReadFlow, asyncio.Protocol):
    """A connection the engine owns, accepted by a listener or opened as a client.

    Resource handling: the session owns its transport. Whatever path ends it
    (close, abort, reset, the owner's shutdown), the transport is closed exactly
    once and `closed_future` resolves; the owner's registry forgets it then.

    Errors: methods called on a finished session are no-ops; `send` on a session
    that already sent FIN raises `SessionClosedError`.
    """

    # Slots: 10,000 idle connections must cost little more than asyncio's own
    # transport and socket (a __dict__ per session was ~1 KiB of the 4 KiB measured).
    __slots__ = ("owner", "id", "service", "listener_id", "store", "transport", "local", "peer",
                 "state", "bytes_in", "bytes_out", "peer_fin", "our_fin", "closed_by", "opened_at",
                 "ended_at", "last_activity", "end_reason", "_closed_future", "dirty", "_draining",
                 "_write_paused", "_read_pauses", "_drain_waiters", "conduit",
                 "linked", "_resume_wanted", "_stream", "_outbox", "tls", "wire", "_reader",
                 "_read_ceiling", "_poller", "_fd", "_burst")

    def __init__(self, owner: SessionOwner, session_id: int, service: Service | None,
                 listener_id: int | None, store_cap: int) -> None:
        self.owner = owner
        """The one this session reports to (the `SessionManager`), known only as a `SessionOwner`."""
        self.id = session_id
        self.service = service
        self.listener_id = listener_id
        self.store = ByteStore(store_cap)
        self.transport: asyncio.Transport | None = None
        self.local: tuple[str, int] = ("", 0)
        self.peer: tuple[str, int] = ("", 0)
        self.state = CONNECTING
        self.bytes_in = 0
        self.bytes_out = 0
        self.peer_fin = False
        self.our_fin = False
        self.closed_by: str | None = None
        self.opened_at = time.monotonic()
        self.ended_at: float | None = None
        self.last_activity = self.opened_at
        self.end_reason = ""
        self._closed_future: asyncio.Future[None] | None = None
        self.dirty = True
        """Set on every change; the UI clears it after it redrew this session."""
        self._draining = False
        self._write_paused = False
        self._resume_wanted = False
        """The service asked (`Resume`) to hear when the send buffer drains."""
        # Made on first use: most sessions never pause or wait for a drain.
        self._read_pauses: set[str] | None = None
        self._drain_waiters: list[asyncio.Future[None]] | None = None
        self.conduit: Conduit | None = None
        self.linked: int | None = None
        """The other leg's session id when this session is one side of a relay pair."""
        self._stream: FileStream | None = None
        """A `SendFile` being sent; effects for this session wait in `_outbox` meanwhile."""
        self._outbox: list[Effect] | None = None
        self.tls: ev.TlsNegotiated | None = None
        """How TLS was negotiated, once it was (at connect, accept, or STARTTLS); None for plain TCP."""
        self.wire: tuple[int, int] | None = None
        """TLS sessions: (bytes in, bytes out) as TCP carried them, at the last sample (the
        kernel's counts; TLS closes the socket before `connection_lost`, so it is sampled
        when the close begins)."""
        self._reader: Any = None
        """The transport whose read size this session adapts (asyncio's socket transport's
        `max_size`); None where there is none to adapt (uvloop, TLS)."""
        self._read_ceiling = READ_LARGE
        self._poller: BusyPollSelector | None = None
        """The loop's `BusyPollSelector` (it tells whether this socket is the only one
        served), or None on a loop that cannot tell."""
        self._fd = -1
        """The socket's file descriptor while `_reader` is set (FIONREAD asks it how much
        waits, and `_poller` names the socket it serves alone by it); -1 otherwise."""
        self._burst = 0
        """Bytes read since a read last came back short (emptied the socket), capped just
        above `HALVE_MAX`: how large the peer's bursts are (`next_read_size`). A read that
        fills its buffer may have emptied it too, but only a short one proves it."""
        if service is not None and service.handler is not None:
            self.conduit = Conduit(self)
            # A handler's queue pauses reading past its limit, but only after a read:
            # one read of READ_LARGE would hold twice what that limit allows.
            self._read_ceiling = READ_CONDUIT

    # --- state -------------------------------------------------------------

    @property
    def is_finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def closed_future(self) -> asyncio.Future[None]:
        """Resolves when the session has ended (made on first use; done at once if it has)."""
        future = self._closed_future
        if future is None:
            future = self._closed_future = self.owner.loop.create_future()
            if self.ended_at is not None:
                future.set_result(None)
        return future

    @property
    def read_paused(self) -> bool:
        """True while reading is paused (by the operator, backpressure or a slow handler)."""
        return bool(self._read_pauses)

    @property
    def origin(self) -> str:
        return "client" if self.listener_id is None else f"listener {self.listener_id}"

    @property
    def write_paused(self) -> bool:
        """True while the transport's buffer is above its high-water mark (the peer is slow)."""
        return self._write_paused

    @property
    def write_buffer_size(self) -> int:
        transport = self.transport
        return transport.get_write_buffer_size() if transport and not transport.is_closing() else 0

    def _set_state(self) -> None:
        if self.is_finished:
            return
        if self._draining:
            self.state = CLOSING
        elif self.peer_fin and self.our_fin:
            self.state = CLOSING
        elif self.peer_fin:
            self.state = PEER_FIN
        elif self.our_fin:
            self.state = OUR_FIN
        else:
            self.state = OPEN
        self.dirty = True

    def _emit(self, event: ev.Event) -> None:
        self.store.add_event(event, self.id)
        self.owner.emit(event)

    # --- asyncio protocol callbacks -------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Not an isinstance check: uvloop's transports are not asyncio.Transport subclasses.
        self.transport = transport  # type: ignore[assignment]
        # asyncio's socket transports already set TCP_NODELAY, so nothing to do here.
        self.local = _short_address(transport.get_extra_info("sockname"))
        self.peer = _short_address(transport.get_extra_info("peername"))
        self.state = OPEN
        self._reader = adaptable_reader(transport)
        if self._reader is not None:
            self._poller = getattr(self.owner.loop, "poller", None)
            sock = transport.get_extra_info("socket")
            self._fd = sock.fileno() if sock is not None else -1
        self.opened_at = self.last_activity = time.monotonic()
        self.owner.register(self)
        self._emit(ev.SessionOpened(self.opened_at, self.id, self.local, self.peer, self.listener_id))
        if transport.get_extra_info("ssl_object") is not None:
            self.tls_started()
        if self.conduit is not None:
            self.owner.spawn_handler(self)
        elif self.service is not None:
            try:
                self._apply(self.service.session_opened(self.id, self.peer, self.local, self.opened_at))
            except Exception:
                self._service_failed("session_opened")

    def tls_started(self, transport: Any = None) -> None:
        """TLS now runs under this session (`transport`: the new one after STARTTLS): record
        and emit `TlsNegotiated`. The bytes from here on are the plaintext inside TLS."""
        if transport is not None:
            self.transport = transport
            self._reader = None  # TLS reads through its own buffer now
            self._poller = None
            self._fd = -1
        from tcpbench.engine.tls import negotiated

        ssl_object = self.transport.get_extra_info("ssl_object") if self.transport else None
        if ssl_object is None:
            return
        self.tls = negotiated(self.id, ssl_object)
        self._emit(self.tls)

    def data_received(self, data: bytes) -> None:
        # A plain Protocol, not a BufferedProtocol: recv() hands over a fresh bytes
        # object that the store can keep as is, where recv_into a shared buffer
        # needed a copy per chunk (and 64 KiB reads, a quarter of asyncio's).
        nbytes = len(data)
        now = time.monotonic()
        offset = self.bytes_in
        self.bytes_in = offset + nbytes
        self.last_activity = now
        self.dirty = True
        self.store.add_data(now, self.id, RECEIVED, offset, data)
        reader = self._reader
        if reader is not None:
            # Sized before the answer goes out: once it has, a quick peer's next bytes
            # would count in FIONREAD as part of this burst. (After it measured 1.03x on
            # an idle machine, but with one busy CPU beside, 32 KiB windows were no longer
            # split at all.)
            poller = self._poller
            limit = reader.max_size
            burst = self._burst + nbytes
            self._burst = min(burst, HALVE_MAX + 1) if nbytes == limit else 0
            reader.max_size = next_read_size(
                nbytes, limit, self._read_ceiling, self._fd,
                poller is not None and poller.solo_polls >= SOLO_POLLS
                and poller.solo_fd == self._fd, burst)
        owner = self.owner
        owner.bytes_in += nbytes
        if owner.has_subscribers:
            owner.emit_bytes(ev.BytesReceived, now, self.id, offset, data)
        if self._draining:
            return
        if self.conduit is not None:
            self.conduit._feed(data)
        elif self.service is not None:
            try:
                effects = self.service.data_received(self.id, data, now)
                if effects:
                    self._apply(effects)
            except Exception:
                self._service_failed("data_received")

    def eof_received(self) -> bool:
        now = time.monotonic()
        if self.tls is not None:
            self.sample_wire()
        self.peer_fin = True
        self.last_activity = now
        if self.closed_by is None and not self.our_fin:
            self.closed_by = "peer"
        self._set_state()
        self._emit(ev.PeerHalfClosed(now, self.id, self.our_fin))
        if self._draining:
            self._finish_close()
            return self.tls is None
        if self.conduit is not None:
            self.conduit._feed(b"")
        elif self.service is not None:
            try:
                self._apply(self.service.peer_half_closed(self.id, now))
            except Exception:
                self._service_failed("peer_half_closed")
        if self.our_fin and not self.is_finished and self.transport is not None and not self._draining:
            # Both directions are done: nothing more can happen on this connection.
            self._finish_close()
        # Returning True keeps the transport open: we may still send (half-close). TLS
        # (close_notify received) cannot half-close: asyncio closes, and warns on True.
        return self.tls is None

    def pause_writing(self) -> None:
        self._write_paused = True
        service = self.service
        if self.conduit is None and service is not None and service.backlog_limit is None:
            self.pause_reading("backpressure")

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._stream is not None:
            self._pump_stream()
        self.resume_reading("backpressure")
        if self._resume_wanted:
            self._resume_wanted = False
            self.owner.loop.call_soon(self._writable)
        waiters, self._drain_waiters = self._drain_waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        now = time.monotonic()
        if self._stream is not None:
            self._stream.close()
            self._stream = self._outbox = None
        if self._read_pauses:
            self._unwatch_hangup()
        self.owner.lingers.cancel(self)
        if self.tls is not None:
            self.sample_wire()
            wire_in, wire_out = self.wire or (-1, -1)
            self._emit(ev.TlsBytesCounted(now, self.id, self.bytes_in, self.bytes_out, wire_in,
                                          wire_out))
        if isinstance(exc, TimeoutError) and self.tls is not None:
            exc = None  # our close_notify went unanswered within the shutdown timeout: still ours, in order
        if not self.is_finished:
            if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
                self.state = RESET
                self.end_reason = str(exc) or "connection reset by peer"
                self._emit(ev.SessionReset(now, self.id, self.bytes_in, self.bytes_out, self.end_reason))
            elif exc is not None:
                self.state = RESET
                self.end_reason = f"{type(exc).__name__}: {exc}"
                self._emit(ev.SessionReset(now, self.id, self.bytes_in, self.bytes_out, self.end_reason))
            else:
                self.state = CLOSED
                self.closed_by = self.closed_by or "peer"
                self._emit(ev.SessionClosed(now, self.id, self.closed_by, self.bytes_in, self.bytes_out,
                                            self.peer_fin))
        self.ended_at = now
        self.dirty = True
        waiters, self._drain_waiters = self._drain_waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_exception(SessionClosedError(f"session {self.id} is {self.state}"))
        if self.conduit is not None:
            self.conduit._feed(b"")
        if self.service is not None and self.conduit is None:
            try:
                self._apply(self.service.session_closed(self.id, now))
            except Exception:  # a buggy service must not keep the session registered
                self.owner.report_bug(self)
        self.owner.unregister(self)
        _drop_read_callback(self.transport)
        future = self._closed_future
        if future is not None and not future.done():
            future.set_result(None)

    # --- actions -----------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Queue bytes to the peer. Counted as sent when handed to the transport.

        Errors: `SessionClosedError` if we already sent FIN or the session ended.
        """
        if not data:
            return
        transport = self.transport
        if self.our_fin or self.is_finished or transport is None or transport.is_closing():
            raise SessionClosedError(f"session {self.id} can no longer send (it is {self.state})")
        # The bytes go out first and are recorded after: the peer's answer does not wait
        # for the store or for the subscribers (serve formats a line per chunk).
        transport.write(data)
        now = time.monotonic()
        offset = self.bytes_out
        self.bytes_out = offset + len(data)
        self.last_activity = now
        self.dirty = True
        self.store.add_data(now, self.id, SENT, offset, data)
        owner = self.owner
        owner.bytes_out += len(data)
        if owner.has_subscribers:
            owner.emit_bytes(ev.BytesSent, now, self.id, offset, data)
        limit = self.service.backlog_limit if self.service is not None else None
        if limit is not None and transport.get_write_buffer_size() > limit and self.service is not None:
            self._apply(self.service.backlog_exceeded(self.id, now))

    def half_close(self) -> None:
        """Send FIN once queued bytes are out; keep reading. No-op if already done."""
        transport = self.transport
        if self.our_fin or self.is_finished or transport is None or transport.is_closing():
            return
        if not transport.can_write_eof():
            # TLS: asyncio sends close_notify only with close(), which also ends the
            # session; so nothing is sent here, and the operator is told why.
            self.owner.note(Note("TLS has no half-close here (close_notify goes with close): "
                                 "nothing was sent; close the session to end it", self.id, "tls"),
                            self.listener_id)
            return
        self.our_fin = True
        if self.closed_by is None and not self.peer_fin:
            self.closed_by = "us"
        try:
            transport.write_eof()
        except (OSError, RuntimeError):
            pass
        self._set_state()
        self._emit(ev.WeHalfClosed(time.monotonic(), self.id))
        if self.peer_fin and not self._draining:
            self._finish_close()

    def close(self, linger: float | None = None) -> None:
        """Graceful close: FIN after queued bytes, then drain the peer's input
        until its FIN or `linger` seconds (default: the owner's), then close.

        Never sends RST unless the peer keeps sending past the linger time.
        """
        transport = self.transport
        if self.is_finished or transport is None:
            return
        if transport.is_closing():
            return
        if not transport.can_write_eof():
            # TLS: close() sends close_notify now, and asyncio reads on until the peer's
            # (bounded by the shutdown timeout), so there is no unread input to cause RST.
            if self.closed_by is None and not self.peer_fin:
                self.closed_by = "us"
            self._finish_close()
            return
        self.half_close()
        if self.peer_fin:
            self._finish_close()
            return
        self._draining = True
        self._set_state()
        # Reading must go on (even if paused for backpressure) or the peer's
        # unread bytes would make the kernel answer with RST.
        if self._read_pauses:
            self._unwatch_hangup()
        self._read_pauses = None
        try:
            transport.resume_reading()
        except RuntimeError:
            pass
        delay = self.owner.linger if linger is None else linger
        self.owner.lingers.arm(self, delay)

    def abort(self, reason: str = "aborted by the operator") -> None:
        """Close at once with RST (SO_LINGER 0): unsent data is discarded."""
        transport = self.transport
        if self.is_finished or transport is None:
            return
        now = time.monotonic()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        self.state = ABORTED
        self.end_reason = reason
        self._emit(ev.SessionAborted(now, self.id, self.bytes_in, self.bytes_out, reason))
        transport.abort()

    def time_out(self, idle_seconds: float) -> None:
        """The idle timeout fired: report it, then close gracefully."""
        if self.is_finished:
            return
        self._emit(ev.SessionTimedOut(time.monotonic(), self.id, idle_seconds))
        self.end_reason = "idle timeout"
        self.close()

    # --- internals --------------------------------------------------------------

    def _service_failed(self, hook: str) -> None:
        # Our bug, not the peer's: say so loudly (a note with the exception) and end
        # only this session, with RST, instead of letting asyncio report it as a reset.
        name = self.service.name if self.service is not None else "service"
        self.owner.report_bug(self, f"{name}.{hook}")
        self.abort(f"internal error in the {name} service")

    def sample_wire(self) -> tuple[int, int] | None:
        """Read the kernel's byte counts into `wire` (kept when the socket is gone)."""
        from tcpbench.engine.tls import wire_counts

        counts = wire_counts(self.transport)
        if counts is not None:
            self.wire = counts
        return self.wire

    def linger_expired(self) -> None:
        """The linger time of a graceful close ran out before the peer's FIN: close now."""
        self._finish_close()

    def _finish_close(self) -> None:
        if self.tls is not None:
            self.sample_wire()
        self.owner.lingers.cancel(self)
        transport = self.transport
        if transport is not None and not transport.is_closing():
            self.state = CLOSING
            transport.close()

    def _apply(self, effects: list[Effect]) -> None:
        # Per chunk and per chat line: dispatch on the exact type (effects are
        # final dataclasses) and look other sessions up only when named.
        owner = self.owner
        own_id = self.id
        if effects and (type(effects[-1]) is Close or type(effects[-1]) is HalfClose) \
                and effects[-1].session == own_id:  # type: ignore[union-attr]
            self._cork_answer(effects)
        for effect in effects:
            kind = type(effect)
            if kind is Note:
                owner.note(effect, self.listener_id)  # type: ignore[arg-type]
                continue
            session_id = effect.session  # type: ignore[union-attr]
            target = self if session_id == own_id else owner.sessions.get(session_id)
            if target is None:
                continue
            if target._stream is not None and kind is not Abort:
                target._queue(effect)  # after the file being sent, in order
                continue
            if kind is Send:
                if not target.our_fin and not target.is_finished:
                    try:
                        target.send(effect.data)  # type: ignore[union-attr]
                    except SessionClosedError:
                        pass
            elif kind is Close:
                target.close()
            elif kind is HalfClose:
                target.half_close()
            elif kind is Abort:
                target.abort(effect.reason)  # type: ignore[union-attr]
            elif kind is SendFile:
                target.send_file(effect.path, effect.offset, effect.length)  # type: ignore[union-attr]
            elif kind is Resume:
                if target._write_paused:
                    target._resume_wanted = True
                else:
                    owner.loop.call_soon(target._writable)

    def _cork_answer(self, effects: list[Effect]) -> None:
        """The service answers and ends its side in one batch (a `Connection: close` answer,
        a MOTD): cork the socket, so the answer's last segment waits for the FIN that the
        close adds, and both leave in one segment, as from a server that writes and closes
        at once. Linux sets FIN on a segment still queued and pushes it at once. One
        segment less from us per connection (8 in all for a `Connection: close` request,
        seen with tshark): `serve http` under `wrk -c50 -H 'Connection: close'` answered
        1.04x faster (6 rotated rounds, `benchmarks/http_ab.py`)."""
        if _TCP_CORK is None or self.tls is not None or self._stream is not None:
            return
        if not any(type(e) is Send and e.session == self.id for e in effects):
            return
        if any(type(e) is SendFile for e in effects):
            return  # a file is streamed as the peer takes it: nothing is to wait
        transport = self.transport
        if transport is None or transport.get_write_buffer_size():
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, 1)
            except OSError:
                pass

    def _writable(self) -> None:
        # Called soon, not at once: the service's next batch waits its turn behind
        # other sessions, and a Resume from inside `writable` cannot recurse.
        service = self.service
        if service is None or self.is_finished or self.our_fin:
            return
        if self._write_paused:
            self._resume_wanted = True
            return
        try:
            effects = service.writable(self.id, time.monotonic())
        except Exception:
            self._service_failed("writable")
            return
        self._apply(effects)

    def summary(self) -> dict[str, Any]:
        return {"session": self.id, "state": self.state, "local": ev.format_address(self.local),
                "peer": ev.format_address(self.peer), "origin": self.origin,
                "bytes_in": self.bytes_in, "bytes_out": self.bytes_out}


def _short_address(address: Any) -> tuple[str, int]:
    if isinstance(address, tuple) and len(address) >= 2:
        host = address[0]
        if isinstance(host, str) and host.startswith("::ffff:") and "." in host:
            host = host[7:]  # an IPv4 peer on a dual-stack socket
        return (host, int(address[1]))
    return ("", 0)


def _drop_read_callback(transport: Any) -> None:
    """Break the cycle through which Python 3.11's socket transport outlives its connection.

    asyncio's `_SelectorSocketTransport` keeps its own bound method (`_read_ready_cb`)
    and 3.11 never lets go of it, so every ended transport, with its socket and extra
    info, waited for the cyclic garbage collector: 15,000 of them in 2 seconds of
    `serve http` under `wrk -c50 -H 'Connection: close'`, which answered 1.06-1.08x
    faster once they were freed at once (5 rotated rounds). CPython 3.12 clears it in
    `close()` (gh-100348); this is the same clearing, once the transport has told us the
    connection is lost, when it will never read again. uvloop's transports have no such
    attribute.
    """
    if transport is not None and getattr(transport, "_read_ready_cb", None) is not None:
        transport._read_ready_cb = None
