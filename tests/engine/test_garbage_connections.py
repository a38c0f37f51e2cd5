"""Engine-level fuzz: real listeners get hundreds of garbage connections over loopback while a
normal client keeps its own session working. No bug is reported, the listener keeps serving.

Each garbage connection (seeded: `random.Random(seed)`) sends random bytes or
mangled protocol lines in random pieces, then ends one of three ways: FIN and
read what comes, RST at once, or just close. TCPBENCH_FUZZ_LONG=1 runs ten
times as many.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct

import pytest

from tcpbench.engine.registry import build_service
from tests.conftest import wait_until
from tests.fuzz.budget import count, size

GARBAGE = [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"/nick x\n", b"/quit\n", b"\r\n", b"\x00" * 7,
           b"\xff\xfe", b"\x1b]52;c;AAAA\x07", b"Content-Length: 99\r\n", b"/who\n", b"\n" * 50]
NORMAL = {
    "echo": (b"ping\n", b"ping\n"),
    "http": (b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n", b"HTTP/1.1 200 OK\r\n"),
    "chat": (b"/who\n", b"* "),
}


async def garbage_client(port: int, rng: random.Random) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(rng.randrange(0, 6)):
            piece = rng.choice(GARBAGE) if rng.random() < 0.5 else rng.randbytes(rng.randrange(1, 2000))
            writer.write(piece)
            if rng.random() < 0.3:
                await writer.drain()
        how = rng.random()
        if how < 0.4:
            writer.write_eof()
            async with asyncio.timeout(5):
                while await reader.read(65536):
                    pass
        elif how < 0.7:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (ConnectionError, OSError):
            pass


@pytest.mark.timeout(120)
@pytest.mark.parametrize("service", ["echo", "http", "chat"])
async def test_garbage_connections_while_a_normal_session_works(manager, service) -> None:
    options = {"header_timeout": 2.0} if service == "http" else {}
    listener = await manager.start_listener(build_service(service, options))
    request, answer = NORMAL[service]
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    if service == "chat":
        await reader.readline()  # the welcome
    rng = random.Random(f"garbage-{service}")
    total = size(150, 1500)
    limit = asyncio.Semaphore(20)

    async def one(seed: int) -> None:
        async with limit:
            await garbage_client(listener.port, random.Random(seed))

    async with asyncio.timeout(100):
        batch = [asyncio.create_task(one(rng.randrange(1 << 30))) for _ in range(total)]
        done = 0
        while done < total:  # the normal session keeps working between garbage batches
            writer.write(request)
            line = await reader.readline()
            if service == "chat":
                while not line.startswith(b"* ") or b"in the room" not in line:
                    line = await reader.readline()  # others' joins and leaves are broadcast too
            assert line.startswith(answer.split(b"\r\n")[0]), line
            if service == "http":
                while line != b"\r\n":
                    line = await reader.readline()
                await reader.readexactly(len("hello from tcpbench\n"))
            done = sum(t.done() for t in batch)
            await asyncio.sleep(0.01)
        await asyncio.gather(*batch)
    count("engine garbage connections", total)
    assert manager.bug_count == 0
    await wait_until(lambda: len(listener.sessions) == 1, 10, "the garbage sessions ended")
    writer.close()
    await writer.wait_closed()
