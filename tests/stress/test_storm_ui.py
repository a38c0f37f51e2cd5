"""The workbench under a connection storm: its connections table churns through 3,000 rows
while a live echo session through the same app keeps answering and keys keep working."""

from __future__ import annotations

import asyncio
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import ClassVar

import pytest
from textual import events
from textual.binding import Binding

from tcpbench.app import TcpBenchApp
from tcpbench.engine.registry import build_service
from tests.stress.test_storm import STALL_LIMIT, STORM
from tests.ui.helpers import until


class TimedKeysApp(TcpBenchApp):
    """The workbench plus one key that records how long it took from the driver to its action."""

    BINDINGS: ClassVar = [Binding("f12", "timed_key", "timed", priority=True, show=False)]

    def __init__(self) -> None:
        super().__init__(cursor_blink=False)
        self.sent_at: list[float] = []
        self.key_latencies: list[float] = []

    def action_timed_key(self) -> None:
        if self.sent_at:
            self.key_latencies.append(time.perf_counter() - self.sent_at.pop(0))

    def inject_keys(self, stop: threading.Event) -> None:
        """From another thread, as a terminal would: a key every 20 ms through the driver."""
        while not stop.wait(0.02):
            self.sent_at.append(time.perf_counter())
            self._driver.send_message(events.Key("f12", None))


def _watch(port: int, stop: threading.Event, result: dict[str, float]) -> None:
    """Ping-pong on a live echo session until `stop`; keep the worst round trip."""
    worst, count = 0.0, 0
    with socket.create_connection(("127.0.0.1", port), timeout=5) as watcher:
        watcher.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while not stop.is_set():
            started = time.perf_counter()
            watcher.sendall(b"ping %06d\n" % count)
            answer = b""
            while len(answer) < 12:
                answer += watcher.recv(100)
            if answer != b"ping %06d\n" % count:
                result["wrong"] = 1
                return
            worst = max(worst, time.perf_counter() - started)
            count += 1
    result.update(worst=worst, count=count)


@pytest.mark.timeout(120)
async def test_the_workbench_stays_responsive_through_a_storm() -> None:
    app = TimedKeysApp()
    async with app.run_test(size=(120, 35)) as pilot:
        listener = await app.manager.start_listener(build_service("echo"), "127.0.0.1", 0)
        stop, result = threading.Event(), {}
        watcher = threading.Thread(target=_watch, args=(listener.port, stop, result), daemon=True)
        watcher.start()
        await until(pilot, lambda: listener.accepted >= 1, what="the watcher connected")
        keys = threading.Thread(target=app.inject_keys, args=(stop,), daemon=True)
        keys.start()
        storm = await asyncio.create_subprocess_exec(sys.executable, "-c", STORM, str(listener.port),
                                                     stdout=subprocess.PIPE)
        try:
            out, _ = await asyncio.wait_for(storm.communicate(), 60)
            # Measure until the app has digested it all, not just until the storm was sent.
            await until(pilot, lambda: listener.accepted >= 3001, what="every storm connection seen")
            await until(pilot, lambda: len(listener.sessions) <= 1, what="the storm's sessions ended")
            await pilot.pause(0.2)  # and a few table syncs after that
        finally:
            if storm.returncode is None:
                storm.kill()
                await storm.wait()
            stop.set()
        await asyncio.to_thread(watcher.join, 10)
        await asyncio.to_thread(keys.join, 10)
        key_latencies = app.key_latencies
        assert out == b"done\n"
        assert "wrong" not in result and result["count"] > 50
        print(f"worst echo round trip {result['worst'] * 1000:.1f} ms over {result['count']}; "
              f"keys p50 {statistics.median(key_latencies) * 1000:.1f} ms, "
              f"worst {max(key_latencies) * 1000:.1f} ms over {len(key_latencies)}")
        assert result["worst"] < STALL_LIMIT
        # Keys: the house goal (p50 under 50 ms), and none waits more than 150 ms.
        assert len(key_latencies) >= 10
        assert statistics.median(key_latencies) < 0.050 and max(key_latencies) < 0.150
