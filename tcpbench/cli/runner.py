"""Running a headless command: the event loop, signals and standard input.

Ctrl-C and SIGTERM stop the command gracefully (listeners close, sessions get
FIN) and it exits 0. Standard input is read by a daemon thread, because a
regular file or /dev/null cannot be watched by epoll and a blocking read must
not stop the loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from typing import Awaitable, Callable

CHUNK = 64 * 1024


def run(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run `main(stop)` where `stop` is set on SIGINT or SIGTERM."""

    async def wrapper() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        return await main(stop)

    from tcpbench.engine.runtime import loop_factory

    try:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(wrapper())
    except KeyboardInterrupt:
        return 0


class StdinReader:
    """Feeds standard input to a callback on the loop: `on_data(bytes)`, then `on_data(b"")` at EOF.

    With `lines=True`, data is delivered a line at a time (what a person typed).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, on_data: Callable[[bytes], None], *,
                 lines: bool = False) -> None:
        self.loop = loop
        self.on_data = on_data
        self.lines = lines
        self.thread = threading.Thread(target=self._run, name="tcpbench-stdin", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _deliver(self, data: bytes) -> None:
        try:
            self.loop.call_soon_threadsafe(self.on_data, data)
        except RuntimeError:
            pass  # the loop is closed: we are exiting

    def _run(self) -> None:
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, ValueError, OSError):
            self._deliver(b"")
            return
        if self.lines:
            stream = os.fdopen(os.dup(fd), "rb", buffering=0)
            with stream:
                pending = b""
                while True:
                    try:
                        chunk = stream.read(CHUNK)
                    except OSError:
                        chunk = b""
                    if not chunk:
                        if pending:
                            self._deliver(pending)
                        self._deliver(b"")
                        return
                    pending += chunk
                    *whole, pending = pending.split(b"\n")
                    for line in whole:
                        self._deliver(line + b"\n")
        while True:
            try:
                chunk = os.read(fd, CHUNK)
            except OSError:
                chunk = b""
            self._deliver(chunk)
            if not chunk:
                return
