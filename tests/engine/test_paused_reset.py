"""A peer's RST while reading is paused for backpressure is noticed at once (real sockets)."""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import pytest

from tcpbench.engine import SessionManager, events as ev
from tcpbench.engine.exec_handler import ExecService
from tcpbench.engine.registry import build_service
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(30)


def _flooding_client(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window, filled fast
    sock.setblocking(False)
    return sock


async def _flood_until_blocked(sock: socket.socket, session, limit: int = 64 << 20) -> None:
    """Send until the kernel takes nothing more and the session stopped reading (bounded)."""
    block = b"\x00" * 65536
    sent = 0
    deadline = time.monotonic() + 10
    stalled_since = None
    while time.monotonic() < deadline and sent < limit:
        try:
            sent += sock.send(block)
            stalled_since = None
        except BlockingIOError:
            if session.read_paused:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 0.2:
                    return
            await asyncio.sleep(0.01)
    raise AssertionError(f"the session never stopped reading (sent {sent}, paused {session.read_paused})")


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def _ended_by_reset(manager: SessionManager, session, seen: list[ev.Event], bound: float = 1.0):
    started = time.monotonic()
    await wait_until(lambda: session.is_finished and session.id not in manager.sessions, bound + 1,
                     "session ended")
    took = time.monotonic() - started
    assert session.state == "reset", session.state
    assert any(isinstance(e, ev.SessionReset) and e.session == session.id for e in seen)
    assert took < bound, took
    return took


async def test_echo_to_a_peer_that_never_reads_then_resets(manager: SessionManager) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(lambda e: seen.append(e) if not isinstance(e, (ev.BytesReceived, ev.BytesSent)) else None)
    listener = await manager.start_listener(build_service("echo"))
    sock = _flooding_client(listener.port)
    try:
        await wait_until(lambda: listener.sessions, 5, "session")
        session = manager.sessions[next(iter(listener.sessions))]
        await _flood_until_blocked(sock, session)
        assert session.read_paused
    finally:
        _reset(sock)
    await _ended_by_reset(manager, session, seen)


async def test_an_operator_paused_session_notices_the_reset(manager: SessionManager) -> None:
    # Paused with nothing to send: no writer is watched either, only the hangup watch sees it.
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(build_service("discard"))
    sock = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
    try:
        await wait_until(lambda: listener.sessions, 5, "session")
        session = manager.sessions[next(iter(listener.sessions))]
        session.pause_reading()
        sock.sendall(b"unread")
        assert len(manager.hangups) == 1
    finally:
        _reset(sock)
    await _ended_by_reset(manager, session, seen)
    assert len(manager.hangups) == 0


async def test_a_paused_session_that_resumes_leaves_the_watch(manager: SessionManager) -> None:
    listener = await manager.start_listener(build_service("echo"))
    reader, writer = await asyncio.open_connection(*listener.address)
    async with asyncio.timeout(10):
        await wait_until(lambda: listener.sessions, 5, "session")
        session = manager.sessions[next(iter(listener.sessions))]
        session.pause_reading()
        assert len(manager.hangups) == 1
        writer.write(b"later\n")
        session.resume_reading()
        assert len(manager.hangups) == 0
        assert await reader.readline() == b"later\n"
        writer.close()


async def test_exec_whose_program_does_not_read_notices_the_reset_and_stops_it(manager: SessionManager) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(lambda e: seen.append(e) if not isinstance(e, (ev.BytesReceived, ev.BytesSent)) else None)
    service = ExecService(allow_exec=True, command=["sleep", "30"], grace=0.1)
    listener = await manager.start_listener(service)
    sock = _flooding_client(listener.port)
    try:
        await wait_until(lambda: service.children, 5, "program started")
        session = manager.sessions[next(iter(listener.sessions))]
        await _flood_until_blocked(sock, session)
    finally:
        _reset(sock)
    await _ended_by_reset(manager, session, seen)
    await wait_until(lambda: not service.children, 5, "the program stopped")


async def test_without_epoll_the_polling_fallback_notices_it(manager: SessionManager) -> None:
    from tcpbench.engine.hangup import HangupWatch

    manager.hangups.close()
    fallback = HangupWatch(manager.loop)
    if fallback._epoll is not None:
        fallback._epoll.close()
        fallback._epoll = None  # as on a platform without epoll
    manager.hangups = fallback
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(build_service("discard"))
    sock = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
    try:
        await wait_until(lambda: listener.sessions, 5, "session")
        session = manager.sessions[next(iter(listener.sessions))]
        session.pause_reading()
    finally:
        _reset(sock)
    await _ended_by_reset(manager, session, seen)
    assert len(fallback) == 0
