"""Echo throughput: tcpbench's echo service against bare asyncio echo servers (and ncat, socat).

Each server runs in its own process on 127.0.0.1; one client process pushes SIZE
bytes through one connection and reads them back (a sender thread and a reader
thread), so the figure is the round-trip rate of one connection.

    python benchmarks/echo_throughput.py [--mib 1024] [--runs 3]

Prints one row per server: best and median MB/s over the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time

BARE_PROTOCOL = textwrap.dedent("""
    import asyncio, sys
    class Echo(asyncio.Protocol):
        def connection_made(self, t): self.t = t
        def data_received(self, d): self.t.write(d)
        def eof_received(self): self.t.close()
    async def main():
        loop = asyncio.get_running_loop()
        s = await loop.create_server(Echo, '127.0.0.1', 0)
        print(s.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()
    asyncio.run(main())
""")

BARE_STREAMS = textwrap.dedent("""
    import asyncio
    async def handle(r, w):
        while data := await r.read(65536):
            w.write(data)
            await w.drain()
        w.close()
    async def main():
        s = await asyncio.start_server(handle, '127.0.0.1', 0)
        print(s.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()
    asyncio.run(main())
""")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(name: str) -> tuple[subprocess.Popen[bytes], int] | None:
    if name == "tcpbench echo":
        proc = subprocess.Popen([sys.executable, "-m", "tcpbench", "serve", "echo", "--quiet-data", "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        line = proc.stdout.readline().decode()  # type: ignore[union-attr]
        # Drain the event lines so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
        return proc, json.loads(line)["port"]  # with --json the first line is JSON too
    if name == "tcpbench echo (no event output)":
        code = ("import asyncio\nfrom tcpbench.engine import SessionManager\n"
                "from tcpbench.engine.registry import build_service\n"
                "async def main():\n"
                "    async with SessionManager() as m:\n"
                "        l = await m.start_listener(build_service('echo'))\n"
                "        print(l.port, flush=True)\n"
                "        await asyncio.Event().wait()\n"
                "asyncio.run(main())\n")
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        return proc, int(proc.stdout.readline())  # type: ignore[union-attr]
    if name in ("bare asyncio Protocol", "bare asyncio streams"):
        code = BARE_PROTOCOL if "Protocol" in name else BARE_STREAMS
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
        return proc, int(proc.stdout.readline())  # type: ignore[union-attr]
    port = free_port()
    if name == "ncat -c cat" and shutil.which("ncat"):
        argv = ["ncat", "-l", "-k", "127.0.0.1", str(port), "-c", "cat"]
    elif name == "socat EXEC:cat" and shutil.which("socat"):
        argv = ["socat", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", "EXEC:cat"]
    else:
        return None
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, port


def round_trip(port: int, size: int) -> float:
    block = os.urandom(1 << 20)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        def sender() -> None:
            for _ in range(size // len(block)):
                sock.sendall(block)
            sock.shutdown(socket.SHUT_WR)

        buffer = bytearray(1 << 20)
        received = 0
        started = time.perf_counter()
        thread = threading.Thread(target=sender)
        thread.start()
        while received < size:
            n = sock.recv_into(buffer)
            if not n:
                break
            received += n
        elapsed = time.perf_counter() - started
        thread.join()
    if received != size:
        raise RuntimeError(f"received {received} of {size} bytes")
    return size / elapsed / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.mib * (1 << 20)
    names = ["bare asyncio Protocol", "tcpbench echo (no event output)", "tcpbench echo",
             "bare asyncio streams", "ncat -c cat", "socat EXEC:cat"]
    print(f"one connection, {args.mib} MiB each way, best/median of {args.runs} runs")
    print(f"{'server':34} {'best MB/s':>10} {'median MB/s':>12}")
    for name in names:
        started = start(name)
        if started is None:
            print(f"{name:34} {'(not installed)':>23}")
            continue
        proc, port = started
        try:
            rates = [round_trip(port, size) for _ in range(args.runs)]
            print(f"{name:34} {max(rates):10.0f} {statistics.median(rates):12.0f}", flush=True)
        except Exception as exc:  # report and go on to the next server
            print(f"{name:34} failed: {exc}")
        finally:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
