"""Slow and half-open peers on real loopback sockets: each is bounded by a timeout or by flow
control, and none stalls another session.

While the hostile client does its worst, a normal client keeps an echo session
(`Prober`) doing round trips; its worst round trip is measured, not slept, and
must stay under 100 ms.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time

import pytest

from tcpbench.engine import SessionManager, events as ev
from tcpbench.engine.registry import build_service
from tests.conftest import wait_until

MAX_RTT = 0.100
BUFFER_BOUND = 4 * 1024 * 1024
"""A session's send buffer may hold a few high-water marks and one answer, never more."""


class Prober:
    """A normal echo client on its own listener: round trips back to back, the worst one kept."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.worst = 0.0
        self.trips = 0
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> Prober:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            self.writer.write(b"ping\n")
            assert await self.reader.readexactly(5) == b"ping\n"
            self.worst = max(self.worst, time.perf_counter() - started)
            self.trips += 1
            await asyncio.sleep(0.005)  # pacing between probes, not a wait for anything

    async def __aexit__(self, *exc) -> None:
        assert self._task is not None
        if exc[0] is None:  # a few more round trips after the hostile part, then stop
            target = self.trips + 3
            await wait_until(lambda: self.trips >= target or self._task.done(), 5, "round trips")
        if self._task.done():
            self._task.result()  # a failed probe is the test's failure
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self.writer.close()
        await self.writer.wait_closed()
        if exc[0] is not None:
            return  # the test failed already: that is the error to see
        assert self.worst < MAX_RTT, f"a round trip took {self.worst * 1000:.1f} ms"


async def prober(manager: SessionManager) -> Prober:
    echo = await manager.start_listener(build_service("echo"))
    return Prober(echo.port)


def raw_client(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.setblocking(False)
    return sock


def reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def endings(manager: SessionManager, listener) -> list:
    return [s for s in manager.history.values() if s.listener_id == listener.id and s.is_finished]


async def read_all(loop, sock: socket.socket, limit: int = 1 << 20) -> bytes:
    data = b""
    while len(data) < limit:
        chunk = await loop.sock_recv(sock, 65536)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.timeout(20)
async def test_a_silent_client_on_http_gets_408_after_the_head_timeout(manager) -> None:
    """Nothing sent at all: the keep-alive timeout ends it quietly; one byte: 408 in time."""
    listener = await manager.start_listener(build_service("http", {"header_timeout": 0.5,
                                                                   "keepalive_timeout": 0.5}))
    loop = asyncio.get_running_loop()
    async with await prober(manager):
        silent = raw_client(listener.port)
        started = time.monotonic()
        silent.sendall(b"G")
        async with asyncio.timeout(5):
            answer = await read_all(loop, silent)
        waited = time.monotonic() - started
        silent.close()
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert 0.5 <= waited < 0.5 + 0.5 + 0.25 + 0.3  # the timeout, a service tick, a manager tick


@pytest.mark.timeout(20)
async def test_slowloris_a_head_one_byte_at_a_time_gets_408_within_the_head_timeout(manager) -> None:
    """Every byte arrives in time for an idle timer; the head as a whole does not."""
    timeout = 1.0
    listener = await manager.start_listener(build_service("http", {"header_timeout": timeout}),
                                            idle_timeout=0.5)
    loop = asyncio.get_running_loop()
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100
    async with await prober(manager):
        sock = raw_client(listener.port)
        started = time.monotonic()
        answer = b""
        for byte in head:
            try:
                sock.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                answer += sock.recv(4096)
            except BlockingIOError:
                pass
            if answer or time.monotonic() - started > timeout + 2:
                break
            await asyncio.sleep(0.1)  # the slow client's pace: ten bytes a second
        async with asyncio.timeout(5):
            answer += await read_all(loop, sock)
        waited = time.monotonic() - started
        sock.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:80]
    assert waited < timeout + 0.5 + 0.25 + 0.3


@pytest.mark.timeout(20)
async def test_a_silent_client_on_echo_stays_open_harmlessly_and_idle_timeout_closes_it(manager) -> None:
    forever = await manager.start_listener(build_service("echo"))
    timed = await manager.start_listener(build_service("echo"), idle_timeout=0.3)
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    loop = asyncio.get_running_loop()
    async with await prober(manager):
        quiet = raw_client(forever.port)
        timed_out = raw_client(timed.port)
        async with asyncio.timeout(5):
            assert await read_all(loop, timed_out) == b""  # our FIN after the idle timeout
        await wait_until(lambda: any(isinstance(e, ev.SessionTimedOut) for e in seen), 5, "timed out")
        assert len(forever.sessions) == 1  # the one without a timeout is still there, unharmed
        timed_out.close()
        quiet.close()


@pytest.mark.timeout(30)
async def test_a_client_that_never_reads_an_echo_is_throttled_by_flow_control(manager) -> None:
    """It tries to send 50 MiB without reading: echo stops reading it, its buffer stays small,
    its sends block, and the other session keeps flowing."""
    listener = await manager.start_listener(build_service("echo"))
    async with await prober(manager):
        hog = raw_client(listener.port)
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        block = b"x" * 65536
        sent = 0
        await wait_until(lambda: listener.sessions, 5, "the hog connected")
        session = manager.sessions[next(iter(listener.sessions))]
        stalled_since = None
        while sent < 50 * 1024 * 1024:
            try:
                sent += hog.send(block)
                stalled_since = None
            except BlockingIOError:
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 0.5:
                    break  # the kernel buffers are full: TCP flow control reached the client
            await asyncio.sleep(0)
            assert session.write_buffer_size < BUFFER_BOUND
        assert sent < 50 * 1024 * 1024, "nothing throttled the client"
        assert session.read_paused
        reset(hog)
    await wait_until(lambda: not listener.sessions, 5, "the hog's session ended")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("parser", ["httptools", "h11"])
async def test_pipelined_requests_for_a_large_body_from_a_client_that_never_reads(manager, tmp_path,
                                                                                parser) -> None:
    """2,000 GETs in one write, none of the 1 MiB answers read: the answers are produced as the
    client reads them, not all at once (2 GiB in the send buffer)."""
    body = tmp_path / "body.bin"
    body.write_bytes(b"b" * (1024 * 1024))
    listener = await manager.start_listener(build_service("http", {"body_file": str(body),
                                                                   "parser": parser}))
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    loop = asyncio.get_running_loop()
    async with await prober(manager):
        hog = raw_client(listener.port)
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        await loop.sock_sendall(hog, request * 2000)
        await wait_until(lambda: listener.sessions, 5, "the hog connected")
        session = manager.sessions[next(iter(listener.sessions))]
        await wait_until(lambda: session.bytes_in == len(request) * 2000 or session.read_paused, 5,
                         "the requests arrived")
        for _ in range(20):
            await asyncio.sleep(0.01)  # let the engine do whatever it does with them
            assert session.write_buffer_size < BUFFER_BOUND, session.write_buffer_size
        # A reader that starts late gets every answer, in order.
        got = 0
        async with asyncio.timeout(20):
            while got < 2000 * (len(body.read_bytes()) + 100):
                chunk = await loop.sock_recv(hog, 1 << 20)
                if not chunk:
                    break
                got += len(chunk)
                assert session.write_buffer_size < BUFFER_BOUND
                if got >= 50 * 1024 * 1024:
                    break  # far past what one burst would have held; enough
        assert got >= 50 * 1024 * 1024
        reset(hog)


@pytest.mark.timeout(20)
@pytest.mark.parametrize("vanish", ["rst", "silence"])
async def test_a_client_that_half_closes_then_vanishes(manager, vanish) -> None:
    """FIN then RST, or FIN then nothing ever again (not even reading): bounded either way."""
    echo = await manager.start_listener(build_service("echo"))
    chat = await manager.start_listener(build_service("chat"))
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    async with await prober(manager):
        socks = []
        for listener in (echo, chat):
            sock = raw_client(listener.port)
            sock.send(b"last words\n" * 1000)
            sock.shutdown(socket.SHUT_WR)
            socks.append(sock)
        if vanish == "rst":
            for sock in socks:
                reset(sock)
        await wait_until(lambda: not echo.sessions and not chat.sessions, 5,
                         "both sessions ended")
        for sock in socks:
            sock.close()
    ends = [e for e in seen if isinstance(e, (ev.SessionClosed, ev.SessionReset))]
    assert len(ends) >= 2
