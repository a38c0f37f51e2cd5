"""The chat room on real loopback sockets: many clients, ordering, slow readers."""

from __future__ import annotations

import asyncio
import socket

from tcpbench.engine.events import SessionAborted, ServiceNoted
from tcpbench.services.chat import ChatService
from tests.conftest import wait_until


async def _join(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, str]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    welcome = await reader.readline()
    assert welcome.startswith(b"* welcome, you are user")
    nick = welcome.split(b"you are ", 1)[1].split(b";", 1)[0].decode()
    return reader, writer, nick


async def test_200_clients_every_line_reaches_every_other_client_in_order(manager):
    listener = await manager.start_listener(ChatService(), "127.0.0.1", 0)
    port = listener.port
    clients = [await _join(port) for _ in range(200)]
    await wait_until(lambda: len(listener.sessions) == 200, 5, "200 members")
    senders = clients[:4]
    lines_each = 25
    expected = {nick: [f"<{nick}> line {i} from {nick}" for i in range(lines_each)]
                for _, _, nick in senders}

    async def receive(reader: asyncio.StreamReader, own: str) -> dict[str, list[str]]:
        want = {n: len(v) for n, v in expected.items() if n != own}
        got: dict[str, list[str]] = {n: [] for n in want}
        while any(len(got[n]) < want[n] for n in want):
            line = (await reader.readline()).decode().rstrip("\n")
            assert line, "connection ended early"
            if line.startswith("<"):
                nick = line[1:line.index(">")]
                got[nick].append(line)
        return got

    async def send(writer: asyncio.StreamWriter, nick: str) -> None:
        for line in expected[nick]:
            writer.write(line.split("> ", 1)[1].encode() + b"\r\n")
            await writer.drain()

    async with asyncio.timeout(30):
        receivers = [asyncio.create_task(receive(r, n)) for r, _, n in clients]
        await asyncio.gather(*(send(w, n) for _, w, n in senders))
        results = await asyncio.gather(*receivers)
    for (_, _, own), got in zip(clients, results):
        assert own not in got  # no echo
        for nick, lines in got.items():
            assert lines == expected[nick]  # none lost, none duplicated, in order
    for _, writer, _ in clients:
        writer.close()
    await wait_until(lambda: not listener.sessions, 10, "all sessions closed")


async def test_a_client_that_never_reads_is_dropped_and_the_others_lose_nothing(manager):
    notes: list[ServiceNoted] = []
    aborted: list[SessionAborted] = []
    manager.subscribe(lambda e: notes.append(e) if isinstance(e, ServiceNoted)
                      else aborted.append(e) if isinstance(e, SessionAborted) else None)
    listener = await manager.start_listener(ChatService(backlog=64 * 1024), "127.0.0.1", 0)
    port = listener.port
    sender_r, sender_w, sender = await _join(port)
    # The slow client: a tiny receive window, and it never reads.
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow.setblocking(False)
    await asyncio.get_running_loop().sock_connect(slow, ("127.0.0.1", port))
    # Joined (user2) before the next one connects: connects microseconds apart may be
    # accepted in either order (the listener has several accept queues).
    await wait_until(lambda: len(listener.sessions) == 2, 5, "the slow client in the room")
    reader, writer, reader_nick = await _join(port)
    await wait_until(lambda: len(listener.sessions) == 3, 5, "three members")
    payload = b"p" * 900

    received: list[bytes] = []
    dropped = asyncio.Event()

    async def read_all() -> None:
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"* user2 was disconnected"):
                dropped.set()
            elif line.startswith(f"<{sender}>".encode()):
                received.append(line)

    task = asyncio.create_task(read_all())
    sent = 0
    try:
        async with asyncio.timeout(30):
            # Bounded: at most 40,000 lines (36 MB); the slow client is dropped long before.
            while not dropped.is_set() and sent < 40_000:
                sender_w.write(b"%06d " % sent + payload + b"\n")
                sent += 1
                await sender_w.drain()
                if sent % 50 == 0:
                    await asyncio.sleep(0)
            assert dropped.is_set(), f"slow client not dropped after {sent} lines"
            for extra in range(20):  # the room goes on after the drop
                sender_w.write(b"%06d " % (sent + extra) + payload + b"\n")
            sent += 20
            await sender_w.drain()
            await wait_until(lambda: len(received) == sent, 15, "every line at the reading client")
        assert [int(line.split(b" ")[1]) for line in received] == list(range(sent))
        assert any(e.reason.startswith("a slow reader") for e in aborted)
        assert any("user2 was disconnected" in n.text for n in notes)
        assert len(listener.sessions) == 2
    finally:
        task.cancel()
        slow.close()
        sender_w.close()
        writer.close()


async def test_real_ncat_clients_chat_through_the_room(manager):
    import shutil

    if shutil.which("ncat") is None:
        import pytest

        pytest.skip("ncat is not installed")
    listener = await manager.start_listener(ChatService(), "127.0.0.1", 0)
    procs = []
    try:
        async with asyncio.timeout(15):
            for _ in range(2):
                procs.append(await asyncio.create_subprocess_exec(
                    "ncat", "127.0.0.1", str(listener.port), stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE))
                assert (await procs[-1].stdout.readline()).startswith(b"* welcome")
            alice, bob = procs
            assert await alice.stdout.readline() == b"* user2 joined\n"
            alice.stdin.write(b"/nick alice\nhello bob\n")
            await alice.stdin.drain()
            assert await bob.stdout.readline() == b"* user1 is now alice\n"
            assert await bob.stdout.readline() == b"<alice> hello bob\n"
            alice.stdin.close()  # ncat sends FIN on stdin EOF: alice leaves the room
            assert await bob.stdout.readline() == b"* alice left\n"
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
            await proc.wait()
