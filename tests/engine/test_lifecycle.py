"""The whole TCP lifecycle as the engine reports it, on real loopback sockets."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from tcpbench.engine import SessionManager, events as ev
from tcpbench.engine.registry import build_service
from tests.conftest import wait_until


def kinds(events: list[ev.Event], session: int) -> list[str]:
    return [e.kind for e in events if getattr(e, "session", None) == session]


async def test_echo_round_trip_then_peer_fin_closes_in_order(manager: SessionManager) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(build_service("echo"))
    assert listener.port != 0
    reader, writer = await asyncio.open_connection(*listener.address)
    writer.write(b"hello\n")
    assert await asyncio.wait_for(reader.readexactly(6), 5) == b"hello\n"
    writer.write_eof()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # clean EOF, no reset
    writer.close()
    await writer.wait_closed()
    session_id = next(e.session for e in seen if isinstance(e, ev.SessionOpened))
    await wait_until(lambda: "closed" in kinds(seen, session_id))
    assert kinds(seen, session_id) == ["opened", "received", "sent", "peer_fin", "our_fin", "closed"]
    closed = next(e for e in seen if isinstance(e, ev.SessionClosed))
    assert closed.closed_by == "peer"
    assert (closed.bytes_in, closed.bytes_out) == (6, 6)
    opened = next(e for e in seen if isinstance(e, ev.SessionOpened))
    assert opened.listener == listener.id and opened.peer == writer.get_extra_info("sockname")[:2]


async def test_we_half_close_and_still_receive(manager: SessionManager) -> None:
    listener = await manager.start_listener(build_service("raw"))
    accepted: list[int] = []
    manager.subscribe(lambda e: accepted.append(e.session) if isinstance(e, ev.SessionOpened) else None)
    session = await manager.open_session(*listener.address)
    await wait_until(lambda: len(accepted) == 2)
    server_side = manager.sessions[[s for s in accepted if s != session.id][0]]
    session.half_close()
    assert session.state == "half-closed by us"
    await wait_until(lambda: server_side.peer_fin)
    # The server can still send to us after our FIN.
    server_side.send(b"still talking")
    await wait_until(lambda: session.bytes_in == 13)
    assert session.store.kept_bytes == 13


async def test_a_peer_fin_after_ours_is_explained_as_the_end(manager: SessionManager) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(build_service("echo"))  # echo answers our FIN with its own
    session = await manager.open_session(*listener.address)
    session.half_close()
    await wait_until(lambda: session.peer_fin, what="the peer's FIN")
    [client_fin] = [e for e in seen if isinstance(e, ev.PeerHalfClosed) and e.session == session.id]
    assert client_fin.after_our_fin and "ends" in client_fin.explain()
    assert "keep sending" not in client_fin.explain()
    [server_fin] = [e for e in seen if isinstance(e, ev.PeerHalfClosed) and e.session != session.id]
    assert not server_fin.after_our_fin and "keep sending" in server_fin.explain()


async def test_a_close_whose_fin_the_peer_never_answers_says_so(manager: SessionManager) -> None:
    # nc without -N: it reads our FIN but never sends its own. We stop waiting after the
    # manager's linger (1 s in the fixture) and say that, not "the peer closed too".
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    server = socket.create_server(("127.0.0.1", 0))
    try:
        session = await manager.open_session(*server.getsockname()[:2])
        peer, _ = server.accept()
        try:
            session.close()
            await wait_until(lambda: session.is_finished, 10, "we stopped waiting")
            [closed] = [e for e in seen if isinstance(e, ev.SessionClosed)]
            assert closed.closed_by == "us" and not closed.peer_fin
            assert "never sent its FIN" in closed.explain()
            assert peer.recv(10) == b""  # it did get our FIN
        finally:
            peer.close()
    finally:
        server.close()


async def test_peer_half_close_and_we_still_send(manager: SessionManager) -> None:
    listener = await manager.start_listener(build_service("raw"))
    reader, writer = await asyncio.open_connection(*listener.address)
    await wait_until(lambda: len(manager.sessions) == 1)
    session = next(iter(manager.sessions.values()))
    writer.write_eof()
    await wait_until(lambda: session.peer_fin)
    assert session.state == "half-closed by peer"
    manager.operator_input(listener.id, b"answer after your FIN\n")
    assert await asyncio.wait_for(reader.readline(), 5) == b"answer after your FIN\n"
    session.close()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    await writer.wait_closed()
    await wait_until(lambda: session.state == "closed")
    assert session.closed_by == "peer"


async def test_reset_by_peer_is_told_apart_from_fin(manager: SessionManager) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(build_service("discard"))
    sock = socket.create_connection(listener.address)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    await wait_until(lambda: len(manager.sessions) == 1)
    session = next(iter(manager.sessions.values()))
    sock.close()  # SO_LINGER 0: RST
    await wait_until(lambda: session.is_finished)
    assert session.state == "reset"
    assert kinds(seen, session.id)[-1] == "reset"
    assert "peer_fin" not in kinds(seen, session.id)


async def test_abort_sends_rst_the_peer_sees_a_reset(manager: SessionManager) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(build_service("discard"))
    reader, writer = await asyncio.open_connection(*listener.address)
    await wait_until(lambda: len(manager.sessions) == 1)
    session = next(iter(manager.sessions.values()))
    session.abort("test")
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(100), 5)
    writer.close()
    await wait_until(lambda: session.is_finished)
    assert session.state == "aborted"
    assert kinds(seen, session.id)[-1] == "aborted"


async def test_motd_gives_a_clean_eof_even_when_the_peer_sent_first(manager: SessionManager) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(build_service("motd", {"message": "welcome"}))
    for _ in range(20):
        sock = socket.create_connection(listener.address, timeout=5)
        try:
            # Unread input at close time is what makes a kernel send RST.
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 50)
            received = b""
            while True:
                chunk = await asyncio.to_thread(sock.recv, 65536)
                if not chunk:
                    break  # EOF: a reset would raise ConnectionResetError here
                received += chunk
            assert received == b"welcome\n"
        finally:
            sock.close()
    await wait_until(lambda: sum(isinstance(e, ev.SessionClosed) for e in seen) == 20)
    assert not any(isinstance(e, (ev.SessionReset, ev.SessionAborted)) for e in seen)


async def test_motd_keep_open_leaves_the_session_open(manager: SessionManager) -> None:
    listener = await manager.start_listener(build_service("motd", {"message": "hi", "keep_open": True}))
    reader, writer = await asyncio.open_connection(*listener.address)
    assert await asyncio.wait_for(reader.readline(), 5) == b"hi\n"
    await wait_until(lambda: len(manager.sessions) == 1)
    assert next(iter(manager.sessions.values())).state == "open"
    writer.close()
    await writer.wait_closed()


async def test_stopping_a_listener_closes_its_sessions_gracefully(manager: SessionManager) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(build_service("echo"))
    reader, writer = await asyncio.open_connection(*listener.address)
    writer.write(b"abc")
    assert await asyncio.wait_for(reader.readexactly(3), 5) == b"abc"
    await wait_until(lambda: len(manager.sessions) == 1)
    stop = asyncio.ensure_future(manager.stop_listener(listener.id))
    assert await asyncio.wait_for(reader.read(), 5) == b""  # FIN, not RST
    writer.close()
    await writer.wait_closed()
    await asyncio.wait_for(stop, 5)
    assert listener.id not in manager.listeners
    [stopped] = [e for e in seen if isinstance(e, ev.ListenerStopped)]
    # Its life in one line: what `serve` prints last.
    assert (stopped.connections, stopped.bytes_in, stopped.bytes_out) == (1, 3, 3)
    with pytest.raises(OSError):
        await asyncio.open_connection(*listener.address)


async def test_several_listeners_and_exact_listener_totals(manager: SessionManager) -> None:
    echo = await manager.start_listener(build_service("echo"))
    discard = await manager.start_listener(build_service("discard"))
    for listener, payload in ((echo, b"a" * 1000), (discard, b"b" * 777)):
        reader, writer = await asyncio.open_connection(*listener.address)
        writer.write(payload)
        writer.write_eof()
        await asyncio.wait_for(reader.read(), 5)
        writer.close()
        await writer.wait_closed()
    await wait_until(lambda: not manager.sessions)
    assert manager.listener_totals(echo) == (1000, 1000)
    assert manager.listener_totals(discard) == (777, 0)


async def test_dual_stack_listener_accepts_ipv4_and_ipv6(manager: SessionManager) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        listener = await manager.start_listener(build_service("echo"), "::", 0)
    except OSError as exc:  # pragma: no cover - depends on the kernel
        pytest.skip(f"cannot bind ::: {exc}")
    for host in ("127.0.0.1", "::1"):
        reader, writer = await asyncio.open_connection(host, listener.port)
        writer.write(b"x")
        assert await asyncio.wait_for(reader.readexactly(1), 5) == b"x"
        writer.close()
        await writer.wait_closed()


async def test_idle_timeout_closes_gracefully(manager: SessionManager) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(build_service("discard"), idle_timeout=0.3)
    reader, writer = await asyncio.open_connection(*listener.address)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    await writer.wait_closed()
    await wait_until(lambda: any(isinstance(e, ev.SessionClosed) for e in seen))
    assert any(isinstance(e, ev.SessionTimedOut) for e in seen)


async def test_aclose_closes_everything() -> None:
    async with SessionManager(linger=0.5) as m:
        listener = await m.start_listener(build_service("echo"))
        clients = [await asyncio.open_connection(*listener.address) for _ in range(5)]
        await wait_until(lambda: len(m.sessions) == 5)
    assert not m.sessions and not m.listeners
    for reader, writer in clients:
        assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
        await writer.wait_closed()


async def test_a_service_bug_is_reported_as_ours_and_ends_only_that_session(manager: SessionManager) -> None:
    from tcpbench.services.base import Service

    class Buggy(Service):
        name = "buggy"

        def data_received(self, session, data, now):
            if data.startswith(b"boom"):
                raise ZeroDivisionError("a bug")
            return []

    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(Buggy())
    ok_reader, ok_writer = await asyncio.open_connection(*listener.address)
    reader, writer = await asyncio.open_connection(*listener.address)
    writer.write(b"boom")
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(10), 5)
    writer.close()
    await wait_until(lambda: any(isinstance(e, ev.SessionAborted) for e in seen))
    notes = [e for e in seen if isinstance(e, ev.ServiceNoted) and e.topic == "error"]
    assert notes and "ZeroDivisionError" in notes[0].text and "buggy.data_received" in notes[0].text
    assert not any(isinstance(e, ev.SessionReset) for e in seen)
    assert manager.bug_count == 1
    assert len(manager.sessions) == 1  # the other client is untouched
    ok_writer.close()
    await ok_writer.wait_closed()


async def test_an_ended_connection_s_transport_is_freed_at_once_not_by_the_collector() -> None:
    # As `serve` runs it: ended sessions are not kept for a table, so once one ends,
    # reference counting alone must free its transport (and socket).
    import gc
    import weakref

    async with SessionManager(ended_kept=0, linger=1.0) as manager:
        listener = await manager.start_listener(build_service("echo"))
        opened: list[ev.SessionOpened] = []
        manager.subscribe(lambda e: opened.append(e) if isinstance(e, ev.SessionOpened) else None)
        reader, writer = await asyncio.open_connection(*listener.address)
        await wait_until(lambda: opened, what="the session opened")
        transport = weakref.ref(manager.session(opened[0].session).transport)
        gc.disable()
        try:
            writer.write(b"x")
            assert await asyncio.wait_for(reader.readexactly(1), 5) == b"x"
            writer.close()
            await wait_until(lambda: not listener.sessions, what="the session ended")
            await wait_until(lambda: transport() is None, what="the transport freed")
        finally:
            gc.enable()
