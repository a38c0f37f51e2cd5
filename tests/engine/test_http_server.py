"""The http service on real loopback sockets: real clients, byte-exact answers, no RST.

Each test runs once per parser (httptools, h11): the bytes on the wire must be the same.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from tcpbench.engine import SessionManager, events as ev
from tcpbench.engine.registry import build_service
from tests.conftest import wait_until

WIRES = ("httptools", "h11")
BODY = "hello, browser\n"
EXPECTED = (b"HTTP/1.1 200 OK\r\nServer: tcpbench\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 15\r\n\r\nhello, browser\n")


@pytest.fixture(params=WIRES)
def parser(request) -> str:
    return request.param


async def serve(manager: SessionManager, parser: str, **options):
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(build_service("http", {"body": BODY, "parser": parser,
                                                                   **options}))
    return listener, seen


def bad_endings(seen: list[ev.Event]) -> list[ev.Event]:
    return [e for e in seen if isinstance(e, (ev.SessionReset, ev.SessionAborted))]


async def test_curl_gets_the_exact_bytes(manager: SessionManager, parser: str) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    listener, seen = await serve(manager, parser)
    url = f"http://127.0.0.1:{listener.port}/"
    proc = await asyncio.create_subprocess_exec(curl, "-s", "-i", "--max-time", "5", url, url + "x",
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0
    assert out == EXPECTED * 2  # two requests, one keep-alive connection
    await wait_until(lambda: any(isinstance(e, ev.SessionClosed) for e in seen))
    assert sum(isinstance(e, ev.SessionOpened) for e in seen) == 1
    assert not bad_endings(seen)
    access = [dict(e.fields) for e in seen if isinstance(e, ev.ServiceNoted) and e.topic == "access"]
    assert [(a["method"], a["path"], a["status"], a["bytes"]) for a in access] == [
        ("GET", "/", 200, 15), ("GET", "/x", 200, 15)]
    assert all(a["duration_ms"] >= 0 and a["session"] == access[0]["session"] for a in access)


async def test_http_client_keep_alive_head_and_many_requests(manager: SessionManager,
                                                             parser: str) -> None:
    listener, seen = await serve(manager, parser)

    def client() -> list[tuple[int, bytes, str | None]]:
        conn = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=5)
        out = []
        for method in ["GET", "HEAD"] * 20:
            conn.request(method, "/p")
            response = conn.getresponse()
            out.append((response.status, response.read(), response.getheader("content-length")))
        conn.close()
        return out

    answers = await asyncio.to_thread(client)
    assert answers == [(200, BODY.encode(), "15"), (200, b"", "15")] * 20
    await wait_until(lambda: any(isinstance(e, ev.SessionClosed) for e in seen))
    assert sum(isinstance(e, ev.SessionOpened) for e in seen) == 1
    assert not bad_endings(seen)


async def test_pipelined_requests_and_a_trailing_close_never_reset(manager: SessionManager,
                                                                   parser: str) -> None:
    listener, seen = await serve(manager, parser)
    reader, writer = await asyncio.open_connection(*listener.address)
    request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    # The last request says close, and junk follows it unread by HTTP: the
    # graceful close must drain it instead of letting the kernel send RST.
    writer.write(request * 3 + b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + b"junk" * 1000)
    data = await asyncio.wait_for(reader.read(), 5)  # EOF, not ConnectionResetError
    assert data.count(b"HTTP/1.1 200 OK") == 4 and data.endswith(b"hello, browser\n")
    writer.close()
    await writer.wait_closed()
    await wait_until(lambda: any(isinstance(e, ev.SessionClosed) for e in seen))
    assert not bad_endings(seen)


@pytest.mark.skipif(not hasattr(socket, "TCP_CORK"), reason="TCP_CORK is Linux's")
async def test_an_answer_that_closes_is_corked_until_our_fin(manager: SessionManager,
                                                             parser: str) -> None:
    """A `Connection: close` answer waits in the kernel for the FIN the close adds, so
    both leave in one segment; a keep-alive answer is pushed at once, as every answer was."""
    listener, seen = await serve(manager, parser)
    corked: list[int] = []

    def cork_when_sent(event: ev.Event) -> None:  # right after the answer met the socket
        if isinstance(event, ev.BytesSent):
            sock = manager.sessions[event.session].transport.get_extra_info("socket")
            corked.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK))

    manager.subscribe(cork_when_sent)
    reader, writer = await asyncio.open_connection(*listener.address)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert await asyncio.wait_for(reader.readexactly(len(EXPECTED)), 5) == EXPECTED
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)  # to our FIN: nothing held back
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b"\r\n\r\nhello, browser\n")
    writer.close()
    await writer.wait_closed()
    await wait_until(lambda: any(isinstance(e, ev.SessionClosed) for e in seen))
    assert corked == [0, 1]
    assert not bad_endings(seen)


async def test_concurrent_connections(manager: SessionManager, parser: str) -> None:
    listener, seen = await serve(manager, parser)

    async def one(i: int) -> bytes:
        reader, writer = await asyncio.open_connection(*listener.address)
        writer.write(f"GET /{i} HTTP/1.0\r\n\r\n".encode())
        data = await reader.read()
        writer.close()
        await writer.wait_closed()
        return data

    results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(100))), 10)
    assert all(r.endswith(b"\r\n\r\nhello, browser\n") for r in results)
    await wait_until(lambda: sum(isinstance(e, ev.SessionClosed) for e in seen) == 100)
    assert not bad_endings(seen)


async def test_a_slow_head_gets_408_and_an_idle_connection_is_closed(manager: SessionManager,
                                                                     parser: str) -> None:
    listener, seen = await serve(manager, parser, header_timeout=0.5, keepalive_timeout=0.5)
    reader, writer = await asyncio.open_connection(*listener.address)
    writer.write(b"GET / HTTP/1.1\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    assert answer.startswith(b"HTTP/1.1 408 ")
    writer.close()
    reader, writer = await asyncio.open_connection(*listener.address)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)  # served, then closed when idle
    assert answer == EXPECTED
    writer.close()
    await wait_until(lambda: sum(isinstance(e, ev.SessionClosed) for e in seen) == 2)
    assert not bad_endings(seen)


async def test_naive_mode_resets_connections(manager: SessionManager) -> None:
    listener, seen = await serve(manager, "h11", naive=True)  # naive mode reads nothing
    reader, writer = await asyncio.open_connection(*listener.address)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await wait_until(lambda: any(isinstance(e, ev.SessionAborted) for e in seen))
    with pytest.raises(ConnectionResetError):
        for _ in range(10):  # whatever arrived before the RST, the RST comes
            if not await asyncio.wait_for(reader.read(4096), 5):
                break
        writer.write(b"more")
        await writer.drain()
        await asyncio.wait_for(reader.read(4096), 5)
    writer.close()


async def test_wrk_with_50_connections_has_no_socket_errors(manager: SessionManager,
                                                            parser: str) -> None:
    wrk = shutil.which("wrk")
    if wrk is None:
        pytest.skip("wrk is not installed")
    listener = await manager.start_listener(build_service("http", {"body": BODY, "parser": parser}))
    proc = await asyncio.create_subprocess_exec(
        wrk, "-c50", "-t2", "-d3s", f"http://127.0.0.1:{listener.port}/",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 20)
    text = out.decode()
    assert proc.returncode == 0, text
    assert "Socket errors" not in text and "Non-2xx" not in text, text
    assert "requests in" in text


def test_cli_serve_http_answers_http_client(tmp_path, parser: str) -> None:
    (tmp_path / "index.html").write_text("<p>cli</p>")
    proc = subprocess.Popen([sys.executable, "-m", "tcpbench", "serve", "http", "--dir", str(tmp_path),
                             "--parser", parser],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline().decode()
        assert first.startswith("listening on 127.0.0.1:"), first
        port = int(first.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/")
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"<p>cli</p>")
        conn.request("GET", "/../etc/passwd")
        assert conn.getresponse().status == 400
        conn.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "access: GET / -> 200" in out.decode()


def test_cli_bad_option_is_one_line() -> None:
    proc = subprocess.run([sys.executable, "-m", "tcpbench", "serve", "http", "--body", "a",
                           "--dir", os.getcwd()], capture_output=True, timeout=20)
    assert proc.returncode == 2
    assert len(proc.stderr.decode().strip().splitlines()) == 1 and b"Traceback" not in proc.stderr
