"""The fuzz service on real loopback sockets: exact seeded bytes, flow control, clean close."""

from __future__ import annotations

import asyncio
import http.client
import os
import random
import select
import signal
import subprocess
import sys
import time

from tcpbench.engine import SessionManager, events as ev
from tcpbench.engine.registry import build_service
from tests.conftest import wait_until


async def fetch_raw(address, send: bytes = b"") -> bytes:
    reader, writer = await asyncio.open_connection(*address)
    if send:
        writer.write(send)
    data = await asyncio.wait_for(reader.read(), 10)  # raises on RST: the close must be clean
    writer.close()
    await writer.wait_closed()
    return data


async def test_raw_mode_sends_the_seeded_bytes_then_closes_cleanly(manager: SessionManager) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(build_service("fuzz", {"seed": 1234, "bytes": 300_000}))
    first = await fetch_raw(listener.address, b"GET / HTTP/1.1\r\n\r\n")  # unread request: no RST
    second = await fetch_raw(listener.address)
    assert first == random.Random(1234).randbytes(300_000)
    assert second == random.Random(1235).randbytes(300_000)  # session k uses seed + k
    await wait_until(lambda: sum(isinstance(e, ev.SessionClosed) for e in seen) == 2)
    assert not [e for e in seen if isinstance(e, (ev.SessionReset, ev.SessionAborted))]
    notes = [e for e in seen if isinstance(e, ev.ServiceNoted) and e.topic == "fuzz"]
    assert [dict(n.fields)["seed"] for n in notes] == [1234, 1235]
    assert "--seed 1235" in notes[1].text


async def test_the_same_seed_gives_the_same_bytes_across_two_runs() -> None:
    results = []
    for _ in range(2):
        async with SessionManager(linger=1.0) as manager:
            listener = await manager.start_listener(build_service("fuzz", {"seed": 99, "bytes": 50_000}))
            results.append(await fetch_raw(listener.address))
    assert results[0] == results[1] and len(results[0]) == 50_000


async def test_without_a_seed_one_is_chosen_and_announced(manager: SessionManager) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    service = build_service("fuzz", {"bytes": 1000})
    assert isinstance(service.seed, int) and str(service.seed) in service.describe()
    listener = await manager.start_listener(service)
    data = await fetch_raw(listener.address)
    note = next(e for e in seen if isinstance(e, ev.ServiceNoted) and e.topic == "fuzz")
    assert dict(note.fields)["seed"] == service.seed
    assert data == random.Random(service.seed).randbytes(1000)


async def test_http_mode_reads_the_request_then_answers(manager: SessionManager) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(build_service("fuzz", {"seed": 7, "bytes": 200_000,
                                                                    "mode": "http"}))

    def client() -> tuple[int, str | None, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=5)
        conn.request("GET", "/")
        response = conn.getresponse()
        return response.status, response.getheader("content-type"), response.read()

    status, content_type, body = await asyncio.to_thread(client)
    assert (status, content_type) == (200, "text/html; charset=utf-8")
    assert body == random.Random(7).randbytes(200_000)
    await wait_until(lambda: any(isinstance(e, ev.SessionClosed) for e in seen))
    assert not [e for e in seen if isinstance(e, (ev.SessionReset, ev.SessionAborted))]


async def test_http_mode_answers_nothing_to_a_connection_that_asked_nothing(manager: SessionManager) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(build_service("fuzz", {"seed": 2, "bytes": 1000,
                                                                    "mode": "http"}))
    silent = await fetch_raw_half_closed(listener.address, b"")
    partial = await fetch_raw_half_closed(listener.address, b"GET / HTTP/1.0\r\n")
    assert silent == b""  # a FIN before any request: closed without an answer
    assert partial.startswith(b"HTTP/1.0 200 OK\r\n") and partial.endswith(random.Random(3).randbytes(1000))
    await wait_until(lambda: sum(isinstance(e, ev.SessionClosed) for e in seen) == 2)
    assert not [e for e in seen if isinstance(e, (ev.SessionReset, ev.SessionAborted))]


async def fetch_raw_half_closed(address, send: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(*address)
    writer.write(send)
    writer.write_eof()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    await writer.wait_closed()
    return data


async def test_the_rate_limit_paces_the_stream(manager: SessionManager) -> None:
    listener = await manager.start_listener(build_service("fuzz", {"seed": 3, "bytes": 100_000,
                                                                    "rate": 200_000.0}))
    started = time.monotonic()
    data = await fetch_raw(listener.address)
    elapsed = time.monotonic() - started
    assert data == random.Random(3).randbytes(100_000)
    assert 0.4 <= elapsed < 2.0, elapsed


async def test_a_slow_reader_throttles_the_sender(manager: SessionManager) -> None:
    listener = await manager.start_listener(build_service("fuzz", {"seed": 1, "bytes": 50_000_000}))
    reader, writer = await asyncio.open_connection(*listener.address)
    await wait_until(lambda: manager.sessions)
    session = next(iter(manager.sessions.values()))
    # The peer reads nothing: the transport must report backpressure and the handler wait.
    await wait_until(lambda: session._write_paused, 5, "writing paused by backpressure")
    assert session.bytes_out < 20_000_000  # flow control, not 50 MB queued in memory
    assert session.write_buffer_size < 2_000_000
    before = session.bytes_out
    assert len(await asyncio.wait_for(reader.readexactly(1_000_000), 5)) == 1_000_000
    await wait_until(lambda: session.bytes_out > before, 5, "sending resumed once the peer read")
    writer.close()
    await writer.wait_closed()


def read_until(proc: subprocess.Popen, needle: bytes, timeout: float = 10.0) -> bytes:
    """Raw reads of the child's stdout (no buffered readline under select) until `needle`."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data:
        left = deadline - time.monotonic()
        assert left > 0, f"{needle!r} not seen in {data!r}"
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 65536)
            assert chunk, f"EOF before {needle!r}: {data!r}"
            data += chunk
    return data


def test_cli_serve_fuzz_http_mode() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "tcpbench", "serve", "fuzz", "--mode", "http",
                             "--bytes", "5000", "--seed", "11", "--quiet-data"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        seen = read_until(proc, b"listener seed 11")  # the announcement, at the first tick
        first = seen.split(b"\n")[0].decode()
        assert first.startswith("listening on 127.0.0.1:"), first
        conn = http.client.HTTPConnection("127.0.0.1", int(first.rsplit(":", 1)[1]), timeout=5)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, random.Random(11).randbytes(5000))
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "fuzz: listener seed 11" in seen.decode()
    assert "#1 fuzz: fuzz session 0 of this listener: seed 11" in out.decode()
