"""The accept path: bursts are admitted in batches, running out of file descriptors pauses and recovers."""

from __future__ import annotations

import asyncio
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


async def test_a_burst_of_many_batches_is_admitted_and_every_connection_echoes(manager) -> None:
    listener = await manager.start_listener(build_service("echo"), "127.0.0.1", 0)
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
    acceptor = manager.listeners[listener.id].acceptor
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
