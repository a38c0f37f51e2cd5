"""The accept path: bursts are admitted in batches, running out of file descriptors pauses and recovers."""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import socket

import pytest

from tcpbench.engine import events as ev
from tcpbench.engine.acceptor import BATCH
from tcpbench.engine.registry import build_service
from tests.conftest import wait_until


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("path", ["direct", "public"])
async def test_a_burst_of_many_batches_is_admitted_and_every_connection_echoes(manager, path) -> None:
    listener = await manager.start_listener(build_service("echo"), "127.0.0.1", 0)
    acceptor = manager.listeners[listener.id].acceptor
    if path == "public":  # the way uvloop and any other loop admit: connect_accepted_socket
        acceptor._make_transport = None
    elif acceptor._make_transport is None:
        pytest.skip("this loop has only the public path")
    count = BATCH * 12
    loop = asyncio.get_running_loop()

    def burst() -> list[bytes]:
        socks = []
        try:
            for _ in range(count):  # connect all first: the kernel queue fills before we read
                socks.append(socket.create_connection(("127.0.0.1", listener.port), timeout=10))
            for i, sock in enumerate(socks):
                sock.sendall(b"%05d" % i)
            return [sock.recv(5) for sock in socks]
        finally:
            for sock in socks:
                sock.close()

    answers = await asyncio.wait_for(loop.run_in_executor(None, burst), 30)
    assert answers == [b"%05d" % i for i in range(count)]
    assert not acceptor._admitting  # each admission left the set as it ended
    assert listener.accepted == count
    await wait_until(lambda: not listener.sessions, what="every session closed")


async def test_out_of_file_descriptors_is_reported_accepting_pauses_and_then_recovers(manager) -> None:
    notes: list[ev.ServiceNoted] = []
    manager.subscribe(lambda e: notes.append(e) if isinstance(e, ev.ServiceNoted) else None)
    listener = await manager.start_listener(build_service("echo"), "127.0.0.1", 0)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    headroom = 24
    clients: list[socket.socket] = []
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (_open_fds() + headroom, hard))
        # 14 clients and their 14 accepted sockets do not fit in 24 descriptors; once the
        # accepted ones' clients leave, the rest (at most 14 + 14 - 2 * held) do.
        for _ in range(14):  # the kernel completes these handshakes; we run out accepting
            sock = socket.socket()
            sock.setblocking(False)
            try:
                sock.connect(("127.0.0.1", listener.port))
            except BlockingIOError:
                pass
            clients.append(sock)
        await wait_until(lambda: any(n.topic == "error" for n in notes), what="an out-of-files note")
        error = next(n for n in notes if n.topic == "error")
        assert "cannot accept more connections" in error.text and "ulimit -n" in error.text
        assert listener.accepted < len(clients)
        held = listener.accepted
        for sock in clients[:held]:
            sock.close()
        del clients[:held]
        await wait_until(lambda: listener.accepted == held + len(clients), timeout=10,
                         what="the waiting connections accepted once descriptors were free")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        for sock in clients:
            sock.close()
    assert listener.id in manager.listeners  # the listener kept serving throughout


@pytest.mark.parametrize("stop", ["stop_listener", "aclose"])
async def test_stopping_closes_the_listening_socket(manager, stop) -> None:
    listener = await manager.start_listener(build_service("echo"), "127.0.0.1", 0)
    if stop == "stop_listener":
        await manager.stop_listener(listener.id)
    else:
        await manager.aclose()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", listener.port), timeout=5).close()


async def test_a_port_held_by_another_program_is_in_use_even_if_it_shares_ports(manager) -> None:
    from tcpbench.engine import ListenError

    other = socket.socket()
    try:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # it would share: we must not
        other.bind(("127.0.0.1", 0))
        other.listen(8)
        with pytest.raises(ListenError) as caught:
            await manager.start_listener(build_service("echo"), "127.0.0.1", other.getsockname()[1])
        assert caught.value.reason == "in_use"
    finally:
        other.close()
    first = await manager.start_listener(build_service("echo"), "127.0.0.1", 0)
    with pytest.raises(ListenError):
        await manager.start_listener(build_service("echo"), "127.0.0.1", first.port)


@pytest.mark.parametrize("path", ["direct", "public"])
async def test_an_admission_knows_the_peer_from_accept_and_survives_a_failing_factory(
        manager, path) -> None:
    opened: list[ev.SessionOpened] = []
    manager.subscribe(lambda e: opened.append(e) if isinstance(e, ev.SessionOpened) else None)
    errors: list[dict] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    listener = await manager.start_listener(build_service("echo"), "127.0.0.1", 0)
    acceptor = manager.listeners[listener.id].acceptor
    if path == "public":
        acceptor._make_transport = None
    elif acceptor._make_transport is None:
        pytest.skip("this loop has only the public path")
    real_factory = acceptor.protocol_factory
    calls = 0

    def fails_once():
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("no protocol for you")
        return real_factory()

    acceptor.protocol_factory = fails_once

    def exchange() -> tuple[bytes, bytes, tuple]:
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as first:
            turned_away = first.recv(10)  # closed by us before any transport existed
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as second:
            second.sendall(b"ping")
            return turned_away, second.recv(4), second.getsockname()

    try:
        turned_away, echoed, client_address = await asyncio.wait_for(
            loop.run_in_executor(None, exchange), 15)
    finally:
        loop.set_exception_handler(None)
    assert turned_away == b"" and echoed == b"ping"
    # Reported once: not again as a task's exception that nobody retrieved.
    await wait_until(lambda: not acceptor._admitting, what="the admissions ended")
    gc.collect()
    assert [c["message"] for c in errors] == ["tcpbench: admitting a connection failed"]
    assert isinstance(errors[0]["exception"], RuntimeError)
    assert [e.peer for e in opened] == [client_address]  # the address accept() gave
    assert listener.id in manager.listeners


def test_only_asyncio_s_own_selector_loop_gets_the_direct_path() -> None:
    from tcpbench.engine.acceptor import _direct_transport_maker

    class OwnTransports(asyncio.SelectorEventLoop):
        def _make_socket_transport(self, *args, **kwargs):  # pragma: no cover - never called
            raise AssertionError

    plain, custom = asyncio.SelectorEventLoop(), OwnTransports()
    try:
        assert _direct_transport_maker(plain) == plain._make_socket_transport
        assert _direct_transport_maker(custom) is None
    finally:
        plain.close()
        custom.close()
