"""HTTP requests per second: tcpbench serve http vs python3 -m http.server vs bare asyncio+h11.

Each server runs as its own process on 127.0.0.1 and serves the same small body;
wrk (50 connections, 2 threads) hammers it for a few seconds. tcpbench runs as a
user would run it (`tcpbench serve http`, an access line per request printed to
a pipe we drain), and once as the engine alone with no event printer (what the
TUI runs). `http.server` is the standard library's threaded server (HTTP/1.0: a new connection per request, as it ships). The bare server is
a minimal asyncio Protocol + h11 loop: the floor of what h11 costs.

    python benchmarks/http_rps.py [--seconds 5] [--connections 50] [--rounds 2]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

BODY = "hello from the benchmark\n"

ENGINE_SERVER = r'''
import asyncio, sys
from tcpbench.engine import SessionManager
from tcpbench.engine.registry import build_service
async def main():
    async with SessionManager() as manager:
        listener = await manager.start_listener(build_service("http", {"body": sys.argv[1]}))
        print("listening on 127.0.0.1:%d" % listener.port, flush=True)
        await asyncio.Event().wait()
asyncio.run(main())
'''

BARE_SERVER = r'''
import asyncio, sys, h11
BODY = sys.argv[1].encode()
class P(asyncio.Protocol):
    def connection_made(self, t):
        self.t = t; self.c = h11.Connection(h11.SERVER)
    def data_received(self, data):
        c = self.c; c.receive_data(data)
        while True:
            try:
                e = c.next_event()
            except h11.RemoteProtocolError:
                self.t.close(); return
            if e is h11.NEED_DATA or e is h11.PAUSED:
                return
            if isinstance(e, h11.EndOfMessage):
                out = c.send(h11.Response(status_code=200, headers=[("Content-Length", str(len(BODY))),
                                                                    ("Content-Type", "text/plain")]))
                out += c.send(h11.Data(data=BODY)) + c.send(h11.EndOfMessage())
                self.t.write(out)
                if c.our_state is h11.MUST_CLOSE:
                    self.t.close(); return
                c.start_next_cycle()
            elif isinstance(e, h11.ConnectionClosed):
                self.t.close(); return
async def main():
    server = await asyncio.get_running_loop().create_server(P, "127.0.0.1", 0, backlog=4096)
    print("listening on 127.0.0.1:%d" % server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()
asyncio.run(main())
'''


def start(argv: list[str], *, cwd: str | None = None, port_from_line: bool = True,
          port: int | None = None, quiet: bool = False) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL if quiet and not port_from_line
                            else subprocess.PIPE, stderr=subprocess.DEVNULL)
    if port_from_line:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        if not line.startswith("listening on"):
            proc.kill()
            raise SystemExit(f"server did not start: {argv}")
        port = int(line.rsplit(":", 1)[1])
        stream = proc.stdout
        threading.Thread(target=lambda: [None for _ in iter(lambda: stream.read(65536), b"")],
                         daemon=True).start()
    assert port is not None
    return proc, port


def wait_port(port: int, timeout: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wrk(port: int, seconds: int, connections: int) -> tuple[float, str]:
    out = subprocess.run(["wrk", f"-c{connections}", "-t2", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Socket errors:.*", out)
    return (float(match[1]) if match else 0.0), (errors[0] if errors else "no socket errors")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2,
                        help="run every server this many times, alternating; keep each one's best "
                             "(other load on the machine only ever slows a run down)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    results: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "index.html"), "w") as f:
            f.write(BODY)
        port = free_port()
        servers = [
            ("tcpbench serve http (access lines printed)",
             lambda: start([sys.executable, "-m", "tcpbench", "serve", "http", "--body", BODY,
                            "--quiet-data"])),
            ("tcpbench engine + http service (no printer)",
             lambda: start([sys.executable, "-c", ENGINE_SERVER, BODY])),
            ("python3 -m http.server",
             lambda: (start([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                            cwd=tmp, port_from_line=False, port=port, quiet=True))),
            ("bare asyncio + h11",
             lambda: start([sys.executable, "-c", BARE_SERVER, BODY])),
        ]
        best: dict[str, tuple[float, str]] = {}
        for _ in range(args.rounds):
            for name, launch in servers:
                proc, server_port = launch()
                try:
                    wait_port(server_port)
                    rps, errors = wrk(server_port, args.seconds, args.connections)
                finally:
                    proc.kill()
                    proc.wait()
                print(f"  {name:45} {rps:>10,.0f} req/s  ({errors})", flush=True)
                if rps > best.get(name, (-1.0, ""))[0]:
                    best[name] = (rps, errors)
        results = [(name, *best[name]) for name, _ in servers]
        print("best of each:")
        for name, rps, errors in results:
            print(f"{name:47} {rps:>10,.0f} req/s  ({errors})")
    rates = {n: r for n, r, _ in results}
    baseline = rates["python3 -m http.server"]
    if baseline:
        for name in (results[0][0], results[1][0]):
            print(f"{name} / http.server = {rates[name] / baseline:.1f}x")


if __name__ == "__main__":
    main()
