"""Each built-in scenario starts its listeners, and real clients get the answers the notes promise.

Ports are made free (`with_free_ports`) so the tests never fight over 8080;
the fixed ports are what a teacher gets. Clients are plain sockets and curl.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess

import pytest

from tcpbench.engine.probe import probe_list
from tcpbench.scenarios import load_scenario
from tcpbench.scenarios.start import start_scenario
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(60)


async def started(manager, name: str):
    run = await start_scenario(manager, load_scenario(name).with_free_ports())
    assert run.problems == []
    return run


async def talk(address, send: bytes = b"", *, until_eof: bool = True, want: int = 0) -> bytes:
    reader, writer = await asyncio.open_connection(*address)
    try:
        if send:
            writer.write(send)
            await writer.drain()
        got = b""
        async with asyncio.timeout(10):
            while True:
                chunk = await reader.read(65536)
                got += chunk
                if not chunk or (not until_eof and len(got) >= want):
                    return got
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def test_the_lesson_answers_like_the_ncat_examples(manager) -> None:
    run = await started(manager, "lesson")
    assert set(run.listeners) == {"motd", "echo", "chat", "http", "fuzz-raw", "fuzz-http"}
    # 1. MOTD: the server speaks first and closes (ncat -c "echo hello world").
    assert await talk(run.connect_address("motd")) == b"hello world\n"
    # 2. Echo (ncat -c cat).
    assert await talk(run.connect_address("echo"), b"is this on?\n", until_eof=False, want=12) == \
        b"is this on?\n"
    # 3+5. Chat: a line from one student reaches the other, with a nick.
    a_reader, a_writer = await asyncio.open_connection(*run.connect_address("chat"))
    b_reader, b_writer = await asyncio.open_connection(*run.connect_address("chat"))
    try:
        await wait_until(lambda: len(run.listeners["chat"].sessions) == 2, what="two in the room")
        a_writer.write(b"/nick alice\nhello class\n")
        async with asyncio.timeout(10):
            seen = b""
            while b"hello class" not in seen:
                chunk = await b_reader.read(4096)
                assert chunk, seen
                seen += chunk
        assert b"alice" in seen
    finally:
        for writer in (a_writer, b_writer):
            writer.close()
    # 4. HTTP with curl, the seed's page.
    host, port = run.connect_address("http")
    # In a thread: the servers run on this test's loop.
    out = await asyncio.to_thread(subprocess.run, ["curl", "-sS", "-i", f"http://{host}:{port}/"],
                                  capture_output=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert b"200 OK" in out.stdout and b"<h1>Hello world</h1>" in out.stdout
    assert b"text/html" in out.stdout
    # 6. Fuzz: a million random bytes, raw; and after a valid HTTP head.
    raw = await talk(run.connect_address("fuzz-raw"))
    assert len(raw) == 1_000_000
    head = await talk(run.connect_address("fuzz-http"), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.0 200 OK\r\n") and len(head) > 1_000_000
    assert "{" not in run.notes() and f":{port}/" in run.notes()
    # nc takes HOST PORT, never HOST:PORT (`nc 127.0.0.1:10101` is "invalid port").
    motd_host, motd_port = run.connect_address("motd")
    assert f"nc -N {motd_host} {motd_port}\n" in run.notes()
    assert f"nc -N {motd_host}:" not in run.notes()


def read_to_the_end(address, request: bytes) -> tuple[bytes, str]:
    """Send `request` and read until the connection ends: the bytes, and "reset" or "eof".

    A reset can surface at any step: in connect (the RST came before the handshake's end
    was reported), in the send, or in a read."""
    got = b""
    try:
        with socket.create_connection(address, timeout=10) as sock:
            sock.sendall(request)
            while chunk := sock.recv(65536):
                got += chunk
    except (ConnectionResetError, BrokenPipeError):
        return got, "reset"
    return got, "eof"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
async def test_bad_web_server_resets_and_good_one_does_not(manager, tmp_path) -> None:
    run = await started(manager, "web-servers")
    bad, good = run.connect_address("bad"), run.connect_address("good")
    request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"

    # Whether a browser or curl gets to read the naive server's answer before its RST
    # is a race (the seed's "1 out of 5 times"); that the connection ends in RST is not:
    # read to the end, the client always meets the reset, never a clean end of stream.
    for _ in range(5):
        answer, ending = await asyncio.to_thread(read_to_the_end, bad, request)
        assert ending == "reset", answer
        assert answer in (b"", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                b"Content-Type: text/plain; charset=utf-8\r\n\r\na\n")
    await wait_until(lambda: any(s.state == "aborted" for s in manager.history.values()),
                     what="the naive server's RST")
    for _ in range(5):
        answer, ending = await asyncio.to_thread(read_to_the_end, good, request)
        assert ending == "eof" and answer.startswith(b"HTTP/1.1 200 OK") and answer.endswith(b"a\n")

    body = tmp_path / "body.bin"
    body.write_bytes(b"x" * 2_000_000)

    def curl(address) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["curl", "-sS", "-i", "--data-binary", f"@{body}",
                               f"http://{address[0]}:{address[1]}/"], capture_output=True, timeout=20)

    for _ in range(5):
        answer = await asyncio.to_thread(curl, good)
        assert answer.returncode == 0, answer.stderr
        # curl asks for "100 Continue" before a 2 MB body; the answer follows it.
        assert answer.stdout.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n").startswith(
            b"HTTP/1.1 200 OK") and answer.stdout.endswith(b"\r\n\r\na\n")


async def test_refused_vs_dropped_as_the_probe_sees_it(manager) -> None:
    run = await started(manager, "refused-vs-dropped")
    try:
        host, ports = run.probe_target()
        numbers = [int(p) for p in ports.split(",")]
        results = await probe_list(host, numbers, timeout=1.0)
        outcomes = {r.port: r.outcome for r in results}
        assert outcomes == {numbers[0]: "open", numbers[1]: "refused", numbers[2]: "timed_out"}
        # And a plain client sees the same: RST at once, silence until it gives up.
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(run.connect_address("closed"), timeout=2).close()
        with pytest.raises(TimeoutError):
            socket.create_connection(run.connect_address("dropped"), timeout=1).close()
    finally:
        run.close()
    # Closed, the ports are free again: nothing of ours is left behind.
    for name in ("closed", "dropped"):
        assert name not in run.ports


async def test_half_close_opens_a_session_that_echoes(manager) -> None:
    run = await started(manager, "half-close")
    [session] = run.sessions
    await wait_until(lambda: session.bytes_in == len(b"hello, echo\n"), what="the echo of the greeting")
    session.half_close()
    await wait_until(lambda: session.is_finished, what="both FINs")
    assert session.state == "closed" and session.closed_by == "us"
    raw = run.connect_address("raw")
    reader, writer = await asyncio.open_connection(*raw)
    await wait_until(lambda: run.listeners["raw"].sessions, what="a student on the raw listener")
    student = manager.session(next(iter(run.listeners["raw"].sessions)))
    student.abort()
    async with asyncio.timeout(10):
        with pytest.raises(ConnectionResetError):
            while await reader.read(100):
                pass
    writer.close()
