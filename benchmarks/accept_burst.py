"""Accept burst: how many of N near-simultaneous connects a listener takes, and how fast.

With asyncio's default backlog (100) a burst overflows the accept queue and the
kernel drops SYNs, which the clients retransmit a second later; tcpbench listens
with a backlog of 4,096. Compares both in one run, on 127.0.0.1.

    python benchmarks/accept_burst.py [--connects 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import time

from tcpbench.engine import SessionManager
from tcpbench.engine.registry import build_service


def burst(port: int, count: int, deadline_s: float) -> tuple[int, float, float]:
    """Non-blocking connects from this thread; returns (connected, p100 seconds, all-done seconds)."""
    import selectors

    selector = selectors.DefaultSelector()
    started = time.perf_counter()
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        selector.register(sock, selectors.EVENT_WRITE)
        socks.append(sock)
    connected = 0
    last = started
    pending = count
    while pending and time.perf_counter() - started < deadline_s:
        for key, _ in selector.select(timeout=0.1):
            sock = key.fileobj
            selector.unregister(sock)
            pending -= 1
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                connected += 1
                last = time.perf_counter()
    elapsed = time.perf_counter() - started
    for sock in socks:
        sock.close()
    return connected, last - started, elapsed


async def measure(count: int, backlog_default: bool) -> tuple[int, float]:
    if backlog_default:
        accepted = 0

        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal accepted
            accepted += 1
            writer.close()

        server = await asyncio.start_server(on_connect, "127.0.0.1", 0)  # backlog=100
        port = server.sockets[0].getsockname()[1]
        connected, last, _ = await asyncio.to_thread(burst, port, count, 10.0)
        server.close()
        return connected, last
    async with SessionManager(linger=0.2) as manager:
        listener = await manager.start_listener(build_service("discard"))
        connected, last, _ = await asyncio.to_thread(burst, listener.port, count, 10.0)
        return connected, last


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connects", type=int, default=10000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 3 * args.connects + 100)), hard))
    for label, default in (("asyncio default backlog (100)", True), ("tcpbench (backlog 4096)", False)):
        connected, last = asyncio.run(measure(args.connects, default))
        print(f"{label:32} {connected:6d}/{args.connects} connected, last one after {last:.2f} s", flush=True)


if __name__ == "__main__":
    main()
