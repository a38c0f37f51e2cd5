"""Accepting connections: keep the kernel's accept queue short, admit in small batches.

asyncio's `Server` accepts everything queued whenever the listening socket is
readable, then spends about 30 us per connection making its transport before it
looks at the socket again. A burst (a port scanner, a load test, a class of
students, 10,000 connects from one script) refills the kernel's queue during
that time; once the queue (`somaxconn`, 4096 here) is full the kernel drops SYNs
and every dropped client waits a whole second to retry. Measured with 10,000
connects: 1-2 s until all were accepted, with thousands of `ListenOverflows` in
`nstat`, against about 0.4 s of actual work.

The `Acceptor` drains the queue with cheap `accept()` calls between batches of
`BATCH` admissions, so accepted sockets wait in memory (bounded by
`MAX_WAITING`) instead of SYNs being dropped, and hands each one to
`loop.connect_accepted_socket`: public asyncio API only, so it works on uvloop too.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections import deque
from typing import Any, Callable

BATCH = 64
"""Connections admitted (a transport each) between two drains of the kernel's queue."""
MAX_WAITING = 8192
"""Accepted sockets that may wait for their transport; beyond, the kernel queue holds them."""
RESOURCE_PAUSE = 1.0
"""Seconds to stop accepting when the process is out of file descriptors or memory."""
_RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Acceptor:
    """Accepts on one listening socket and admits each connection with `protocol_factory`.

    Resource handling: owns the listening socket and every accepted socket until
    its transport exists (then the transport owns it). `close()` stops
    accepting, closes the listening socket and the sockets not yet admitted.

    Errors: running out of file descriptors (EMFILE) or memory pauses accepting
    for `RESOURCE_PAUSE` seconds and calls `on_trouble(exc)` once per pause;
    connections the peer abandoned before we accepted them are skipped.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 protocol_factory: Callable[[], asyncio.Protocol],
                 on_trouble: Callable[[OSError], None]) -> None:
        self.loop = loop
        self.sock = sock
        self.protocol_factory = protocol_factory
        self.on_trouble = on_trouble
        self._waiting: deque[socket.socket] = deque()
        self._admitting: set[asyncio.Task[Any]] = set()
        self._batch_scheduled = False
        self._reading = False
        self._resume_handle: asyncio.TimerHandle | None = None
        self.closed = False

    def start(self) -> None:
        self.sock.setblocking(False)
        self._read()

    def close(self) -> None:
        """Stop accepting now; close the listening socket and the sockets still waiting."""
        if self.closed:
            return
        self.closed = True
        self._unread()
        if self._resume_handle is not None:
            self._resume_handle.cancel()
        while self._waiting:
            self._waiting.popleft().close()
        self.sock.close()

    async def wait_closed(self) -> None:
        """Wait (briefly) for the admissions already under way."""
        if self._admitting:
            await asyncio.wait(list(self._admitting), timeout=1.0)

    # --- the accept loop ----------------------------------------------------------

    def _read(self) -> None:
        if not self._reading and not self.closed:
            self.loop.add_reader(self.sock.fileno(), self._drain)
            self._reading = True

    def _unread(self) -> None:
        if self._reading:
            self.loop.remove_reader(self.sock.fileno())
            self._reading = False

    def _drain(self) -> None:
        waiting = self._waiting
        accept = self.sock.accept
        while len(waiting) < MAX_WAITING:
            try:
                conn, _ = accept()
            except (BlockingIOError, InterruptedError):
                break
            except ConnectionAbortedError:
                continue  # the peer gave up before we accepted it
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRORS:
                    self._pause(exc)
                    break
                raise
            waiting.append(conn)
        else:
            self._unread()  # full: the kernel's queue holds the rest until we admit some
        if waiting and not self._batch_scheduled:
            self._batch_scheduled = True
            self.loop.call_soon(self._admit_batch)

    def _admit_batch(self) -> None:
        self._batch_scheduled = False
        if self.closed:
            return
        waiting = self._waiting
        for _ in range(min(BATCH, len(waiting))):
            task = self.loop.create_task(self._admit(waiting.popleft()))
            self._admitting.add(task)
            task.add_done_callback(self._admitting.discard)
        if self._resume_handle is None:
            self._read()
            self._drain()
        if waiting and not self._batch_scheduled:
            self._batch_scheduled = True
            self.loop.call_soon(self._admit_batch)

    async def _admit(self, conn: socket.socket) -> None:
        try:
            await self.loop.connect_accepted_socket(self.protocol_factory, conn)
        except OSError:
            conn.close()  # the peer reset it before it was admitted: nothing to report
        except BaseException as exc:
            conn.close()
            if not isinstance(exc, asyncio.CancelledError):
                self.loop.call_exception_handler({"message": "tcpbench: admitting a connection failed",
                                                  "exception": exc})
            raise

    def _pause(self, exc: OSError) -> None:
        self._unread()
        if self._resume_handle is None:
            self.on_trouble(exc)
            self._resume_handle = self.loop.call_later(RESOURCE_PAUSE, self._resume)

    def _resume(self) -> None:
        self._resume_handle = None
        self._read()
        self._drain()
