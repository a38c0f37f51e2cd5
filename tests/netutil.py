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
