"""A session knows its owner only through `SessionOwner`: the manager meets it, and a
session runs on a bare owner that offers nothing else (real sockets)."""

from __future__ import annotations

import asyncio
import socket
from tcpbench.engine import SessionManager, events as ev
from tcpbench.engine.linger import LingerQueue
from tcpbench.engine.registry import build_service
from tcpbench.engine.session import Session, SessionOwner
from tcpbench.services.base import Effects, Note, Send, Service
from tests.conftest import wait_until


class BareOwner:
    """Exactly the protocol, nothing more: `__slots__` makes any other attribute an error."""

    __slots__ = ("loop", "linger", "lingers", "has_subscribers", "bytes_in", "bytes_out",
                 "sessions", "calls", "events", "notes")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.linger = 1.0
        self.has_subscribers = False
        self.bytes_in = 0
        self.bytes_out = 0
        self.sessions: dict[int, Session] = {}
        self.lingers = LingerQueue(loop)
        self.calls: list[str] = []
        self.events: list[ev.Event] = []
        self.notes: list[tuple[Note, int | None]] = []

    def register(self, session: Session) -> None:
        self.calls.append("register")
        self.sessions[session.id] = session

    def unregister(self, session: Session) -> None:
        self.calls.append("unregister")
        self.sessions.pop(session.id, None)

    def emit(self, event: ev.Event) -> None:
        self.events.append(event)

    def emit_bytes(self, kind: type[ev.BytesReceived] | type[ev.BytesSent], at: float,
                   session: int, offset: int, data: bytes) -> None:
        self.events.append(kind(at, session, offset, data))

    def note(self, note: Note, listener_id: int | None) -> None:
        self.notes.append((note, listener_id))

    def report_bug(self, session: Session | None, where: str = "") -> None:
        self.calls.append(f"bug {where}")

    def spawn_handler(self, session: Session) -> None:
        self.calls.append("spawn_handler")

    async def open_session(self, host: str, port: int, *, timeout: float = 10.0,
                           service: Service | None = None) -> Session:
        raise NotImplementedError


class NotingEcho(Service):
    name = "noting-echo"

    def data_received(self, session: int, data: bytes, now: float) -> Effects:
        return [Send(session, data), Note(f"got {len(data)}", session, "note")]


async def test_the_manager_is_a_session_owner(manager: SessionManager) -> None:
    assert isinstance(manager, SessionOwner)
    assert isinstance(BareOwner(asyncio.get_running_loop()), SessionOwner)


async def test_has_subscribers_follows_subscribe_and_unsubscribe(manager: SessionManager) -> None:
    assert manager.has_subscribers is False
    first = manager.subscribe(lambda e: None)
    second = manager.subscribe(lambda e: None)
    assert manager.has_subscribers is True
    first()
    assert manager.has_subscribers is True
    second()
    second()  # a second unsubscribe is harmless
    assert manager.has_subscribers is False


async def test_a_bytes_tap_takes_the_fields_of_the_events_others_get(manager: SessionManager, caplog) -> None:
    listener = await manager.start_listener(build_service("echo"))
    plain: list[ev.Event] = []
    tapped_callback: list[ev.Event] = []
    taps: list[tuple] = []

    def failing_tap(*fields: object) -> None:
        raise RuntimeError("tap broke")

    manager.subscribe(plain.append)
    unsubscribe_tap = manager.subscribe(tapped_callback.append, bytes_tap=lambda *f: taps.append(f))
    manager.subscribe(lambda e: None, bytes_tap=failing_tap)
    reader, writer = await asyncio.open_connection(*listener.address)
    try:
        for message in (b"one", b"two"):
            writer.write(message)
            assert await asyncio.wait_for(reader.readexactly(len(message)), 5) == message
        await wait_until(lambda: sum(isinstance(e, ev.BytesSent) for e in plain) == 2,
                         what="both echoes seen")
        byte_events = [e for e in plain if isinstance(e, (ev.BytesReceived, ev.BytesSent))]
        assert [(type(e), e.at, e.session, e.offset, e.data) for e in byte_events] == taps
        assert [kind for kind, *_ in taps] == [ev.BytesReceived, ev.BytesSent] * 2
        # The tap's subscriber gets every other event, and no bytes event twice.
        assert [e for e in plain if e not in byte_events] == tapped_callback
        assert "bytes tap failed" in caplog.text  # logged; nobody else missed a chunk
        unsubscribe_tap()
        writer.write(b"three")
        assert await asyncio.wait_for(reader.readexactly(5), 5) == b"three"
        await wait_until(lambda: sum(isinstance(e, ev.BytesSent) for e in plain) == 3,
                         what="the third echo seen")
        assert len(taps) == 4 and not any(isinstance(e, ev.BytesSent) for e in tapped_callback)
    finally:
        writer.close()


async def test_a_session_needs_nothing_but_the_protocol() -> None:
    loop = asyncio.get_running_loop()
    owner = BareOwner(loop)
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    session = Session(owner, 1, NotingEcho(), 7, store_cap=1 << 16)
    await loop.create_connection(lambda: session, sock=ours)
    try:
        assert owner.calls == ["register"] and owner.sessions == {1: session}
        await loop.sock_sendall(theirs, b"quiet")  # nobody subscribed: no bytes events
        assert await asyncio.wait_for(loop.sock_recv(theirs, 100), 5) == b"quiet"
        assert (owner.bytes_in, owner.bytes_out) == (5, 5)
        assert [e.kind for e in owner.events] == ["opened"]
        owner.has_subscribers = True
        await loop.sock_sendall(theirs, b"loud")
        assert await asyncio.wait_for(loop.sock_recv(theirs, 100), 5) == b"loud"
        assert [e.kind for e in owner.events] == ["opened", "received", "sent"]
        assert [(n.text, listener) for n, listener in owner.notes] == [("got 5", 7), ("got 4", 7)]
    finally:
        session.abort("test over")
        theirs.close()
    await asyncio.wait_for(asyncio.shield(session.closed_future), 5)
    assert owner.calls == ["register", "unregister"] and owner.sessions == {}
    assert session.is_finished and [e.kind for e in owner.events][-1] == "aborted"
