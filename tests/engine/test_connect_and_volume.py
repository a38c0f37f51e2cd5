"""Client connects that fail (classified), exact counters under volume, flow control."""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from tcpbench.engine import ConnectError, ListenError, SessionManager, events as ev
from tcpbench.engine.registry import build_service
from tests.conftest import wait_until
from tests.netutil import closed_port, silent_port


async def test_refused(manager: SessionManager) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    port = closed_port()
    with pytest.raises(ConnectError) as info:
        await manager.open_session("127.0.0.1", port, timeout=5)
    assert info.value.reason == "refused"
    assert str(info.value).startswith(f"connection refused by 127.0.0.1:{port}: ")
    failed = [e for e in seen if isinstance(e, ev.ConnectFailed)]
    assert failed and failed[0].reason == "refused"


async def test_timed_out_when_the_syn_gets_no_answer(manager: SessionManager) -> None:
    with silent_port() as port:
        with pytest.raises(ConnectError) as info:
            await manager.open_session("127.0.0.1", port, timeout=0.5)
    assert info.value.reason == "timed_out"
    assert "DROP" in str(info.value)


async def test_name_not_resolved(manager: SessionManager) -> None:
    with pytest.raises(ConnectError) as info:
        await manager.open_session("no-such-host.invalid", 80, timeout=5)
    assert info.value.reason == "name_not_resolved"


async def test_port_in_use_and_out_of_range(manager: SessionManager) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(build_service("echo"))
    with pytest.raises(ListenError) as info:
        await manager.start_listener(build_service("echo"), "127.0.0.1", listener.port)
    assert info.value.reason == "in_use" and "already in use" in str(info.value)
    assert any(isinstance(e, ev.ListenerFailed) for e in seen)
    with pytest.raises(ListenError):
        await manager.start_listener(build_service("echo"), "127.0.0.1", 70000)
    with pytest.raises(ListenError) as info:
        await manager.start_listener(build_service("echo"), "no-such-host.invalid", 0)
    assert info.value.reason == "address"


async def test_counters_exact_after_50_mb_each_way_and_store_stays_under_cap() -> None:
    cap = 256 * 1024
    size = 50 * 1024 * 1024
    async with SessionManager(store_cap=cap, linger=1.0) as manager:
        listener = await manager.start_listener(build_service("echo"))
        reader, writer = await asyncio.open_connection(*listener.address)
        block = os.urandom(1024 * 1024)

        async def send_all() -> None:
            for _ in range(size // len(block)):
                writer.write(block)
                await writer.drain()
            writer.write_eof()

        async def receive_all() -> int:
            total = 0
            while chunk := await reader.read(1 << 20):
                total += len(chunk)
            return total

        async with asyncio.timeout(60):
            sender = asyncio.create_task(send_all())
            received = await receive_all()
            await sender
        writer.close()
        await writer.wait_closed()
        await wait_until(lambda: not manager.sessions)
        session = next(iter(manager.history.values()))
        assert received == size
        assert (session.bytes_in, session.bytes_out) == (size, size)
        assert session.store.kept_bytes <= cap
        assert session.store.dropped_bytes + session.store.kept_bytes == 2 * size
        assert manager.listener_totals(listener) == (size, size)


async def test_echo_to_a_client_that_does_not_read_stays_bounded(manager: SessionManager) -> None:
    listener = await manager.start_listener(build_service("echo"))
    sock = socket.create_connection(listener.address)
    sock.setblocking(False)
    sent = 0
    try:
        # Write until the kernel pushes back; bounded in count.
        for _ in range(2000):
            try:
                sent += sock.send(b"x" * 65536)
            except BlockingIOError:
                await asyncio.sleep(0.01)
                if len(manager.sessions) == 1 and next(iter(manager.sessions.values())).read_paused:
                    break
        await wait_until(lambda: manager.sessions and next(iter(manager.sessions.values())).read_paused,
                         what="echo paused reading")
        session = next(iter(manager.sessions.values()))
        # Memory on our side is bounded by the transport's high-water mark plus one read.
        assert session.write_buffer_size < 1024 * 1024
        assert session.bytes_in < 64 * 1024 * 1024
    finally:
        sock.close()


def test_bind_and_connect_errors_are_classified_for_people() -> None:
    import errno

    from tcpbench.engine.errors import classify_bind_error, classify_connect_error

    denied = classify_bind_error(PermissionError(errno.EACCES, "Permission denied"), "127.0.0.1", 80)
    assert denied.reason == "permission" and "ports below 1024 need root" in str(denied)
    not_here = classify_bind_error(OSError(errno.EADDRNOTAVAIL, "Cannot assign"), "192.0.2.1", 80)
    assert not_here.reason == "address" and "not an address of this machine" in str(not_here)
    assert classify_connect_error(OSError(errno.EHOSTUNREACH, "No route to host"))[0] == "host_unreachable"
    assert classify_connect_error(OSError(errno.ENETUNREACH, "Network is unreachable"))[0] == "network_unreachable"
    assert classify_connect_error(TimeoutError())[0] == "timed_out"
