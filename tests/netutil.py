"""Loopback ports with known behaviour, shared by the engine, CLI and UI tests."""

from __future__ import annotations

import contextlib
import socket


def closed_port() -> int:
    """A port nothing listens on: bind to port 0, note the port, close."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def silent_port():
    """A port whose SYNs get no answer: a listen(0) socket whose backlog is full and never accepted.

    Linux drops SYNs to a full accept queue (tcp_abort_on_overflow=0), which looks
    exactly like a firewall DROP from the client side.
    """
    server = socket.socket()
    fillers: list[socket.socket] = []
    try:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        server.close()


async def echo_then_fin(host: str, port: int, payload: bytes, timeout: float = 10) -> None:
    """Send `payload` to an echo server, read it all back, send FIN and see the server's.

    Errors: AssertionError if the echo or the clean EOF does not come within `timeout`.
    """
    import asyncio

    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(payload)
        await writer.drain()
        got = b""
        async with asyncio.timeout(timeout):
            while len(got) < len(payload):
                chunk = await reader.read(65536)
                assert chunk, f"the echo stopped after {len(got)} of {len(payload)} bytes"
                got += chunk
        assert got == payload
        writer.write_eof()
        async with asyncio.timeout(timeout):
            assert await reader.read() == b""
    finally:
        writer.close()
