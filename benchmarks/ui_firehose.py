"""UI firehose: 1 GiB through the app with the byte log on screen, keys injected every 50 ms.

A listener in the app streams N bytes (a handler writing through the Conduit,
so flow control applies); a client session of the same app's SessionManager
receives them while `ByteLogView` shows that session and syncs at 30 Hz.
A thread injects a key every 50 ms through the driver (the path real keys take)
and an app binding records how long each took to run.

Reports: bytes counted by the engine (must equal what was sent), MiB/s
through the app, key latency p50/p95/max, frames drawn, RSS growth.
Goals (HOUSE.md): >= 300 MiB/s, key p50 <= 50 ms, RSS growth < 50 MB.

    .venv/bin/python benchmarks/ui_firehose.py [--mib 1024] [--mode text|hex] [--data lines|random]
    tmux new-session -d -x 120 -y 40 '.venv/bin/python benchmarks/ui_firehose.py --terminal --out /tmp/fh.txt'

Headless by default (`run_test`): the compositor still renders every frame, only
the final write to a terminal is skipped. `--terminal` runs the real driver (in
tmux, say) and writes the report to --out. Bounded: gives up after --timeout seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import threading
import time

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding

from tcpbench.engine.manager import SessionManager
from tcpbench.services.base import Service
from tcpbench.widgets import ByteLogView

CHUNK = 256 * 1024


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_block(kind: str) -> bytes:
    if kind == "random":
        return random.Random(7).randbytes(CHUNK)
    lines = b"".join(b"firehose line %08d the quick brown fox jumps over the lazy dog\n" % i
                     for i in range(CHUNK // 70 + 1))
    return lines[:CHUNK]


class FirehoseService(Service):
    """Streams `total` bytes to each connection, then closes (benchmark only)."""

    name = "firehose"

    def __init__(self, total: int, block: bytes) -> None:
        self.total = total
        self.block = block
        self.handler = self._stream

    async def _stream(self, conduit) -> None:
        left = self.total
        block = self.block
        while left > 0:
            piece = block if left >= len(block) else block[:left]
            await conduit.write(piece)
            left -= len(piece)
        conduit.close()
        await conduit.wait_closed()


class FirehoseApp(App):
    BINDINGS = [Binding("x", "probe", "probe", priority=True)]

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__()
        self.args = args
        self.total = args.mib * 1024 * 1024
        self.sent_at: list[float] = []
        self.latencies: list[float] = []
        self.frames = 0
        self.result: dict[str, float] = {}

    def compose(self) -> ComposeResult:
        self.manager = SessionManager(linger=1.0)
        yield ByteLogView(self.manager, id="log")

    def on_mount(self) -> None:
        if self.args.terminal:
            self.run_worker(self._run_and_exit(), exit_on_error=True)

    async def _run_and_exit(self) -> None:
        await self.run_firehose()
        self.exit()

    def post_display_hook(self) -> None:
        self.frames += 1

    def action_probe(self) -> None:
        if self.sent_at:
            self.latencies.append(time.perf_counter() - self.sent_at.pop(0))

    async def run_firehose(self) -> None:
        view = self.query_one(ByteLogView)
        view.mode = self.args.mode
        view.focus()
        if not self.args.no_sync:
            self.set_interval(1 / 30, view.sync)
        service = FirehoseService(self.total, make_block(self.args.data))
        listener = await self.manager.start_listener(service, "127.0.0.1", 0)
        rss0 = rss_mib()
        start = time.perf_counter()
        session = await self.manager.open_session("127.0.0.1", listener.port)
        view.session_id = session.id
        stop = threading.Event()
        driver = self._driver

        def inject() -> None:
            while not stop.wait(0.05):
                self.sent_at.append(time.perf_counter())
                driver.send_message(events.Key("x", "x"))

        thread = threading.Thread(target=inject, daemon=True)
        thread.start()
        deadline = time.monotonic() + self.args.timeout
        try:
            while session.bytes_in < self.total and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            elapsed = time.perf_counter() - start
        finally:
            stop.set()
            thread.join(1)
        await asyncio.sleep(0.2)  # let the last frame and key land
        self.result = {
            "bytes_expected": self.total, "bytes_counted": session.bytes_in,
            "seconds": elapsed, "mib_per_s": session.bytes_in / elapsed / 2**20,
            "rss_growth_mib": rss_mib() - rss0, "rows": view.row_count,
            "frames": self.frames,
        }
        await self.manager.aclose(graceful=False)


async def main_async(args: argparse.Namespace) -> FirehoseApp:
    app = FirehoseApp(args)
    async with app.run_test(size=(120, 40)):
        await app.run_firehose()
    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="MiB to stream (default 1024)")
    parser.add_argument("--mode", choices=("text", "hex"), default="text")
    parser.add_argument("--data", choices=("lines", "random"), default="lines")
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    parser.add_argument("--terminal", action="store_true", help="run on the real terminal (e.g. in tmux)")
    parser.add_argument("--out", help="also write the report to this file")
    parser.add_argument("--no-sync", action="store_true",
                        help="control run: never sync the log (what the engine and app cost alone)")
    args = parser.parse_args()
    if args.terminal:
        app = FirehoseApp(args)
        app.run()
    else:
        app = asyncio.run(main_async(args))
    if not app.result:
        print("the run did not finish", file=sys.stderr)
        return 1
    r = app.result
    lat = sorted(x * 1000 for x in app.latencies) or [float("nan")]
    p50 = statistics.median(lat)
    p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
    ok_bytes = r["bytes_counted"] == r["bytes_expected"]
    report = "\n".join([
        f"mode={args.mode} data={args.data} {'terminal' if args.terminal else 'headless'}"
        f"{' NO-SYNC control' if args.no_sync else ''} pid={os.getpid()}",
        f"bytes counted {r['bytes_counted']:,} of {r['bytes_expected']:,} ({'all' if ok_bytes else 'MISSING'})",
        f"throughput {r['mib_per_s']:.0f} MiB/s over {r['seconds']:.2f} s (goal >= 300)",
        f"key latency ms: p50 {p50:.1f}  p95 {p95:.1f}  max {lat[-1]:.1f}  n={len(app.latencies)} (goal p50 <= 50)",
        f"RSS growth {r['rss_growth_mib']:.1f} MiB (goal < 50); frames {r['frames']}; rows indexed {r['rows']}",
    ])
    print(report)
    if args.out:
        with open(args.out, "w") as out:
            out.write(report + "\n")
    return 0 if ok_bytes else 1


if __name__ == "__main__":
    sys.exit(main())
