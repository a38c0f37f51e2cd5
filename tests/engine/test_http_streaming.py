"""`--dir` streams big files with flow control and serves ranges: real sockets, both parsers, curl."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess

import pytest

from tcpbench.engine import SessionManager, events as ev
from tcpbench.engine.registry import build_service
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(120)

WIRES = ("httptools", "h11")
BIG = 200 * 1024 * 1024


@pytest.fixture(params=WIRES)
def parser(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("site")
    with open(root / "big.bin", "wb") as f:
        f.truncate(BIG)  # sparse; markers make every 10 MiB distinct
        for offset in range(0, BIG, 10 * 1024 * 1024):
            f.seek(offset)
            f.write(b"marker at %d\n" % offset)
    (root / "small.txt").write_bytes(b"0123456789")
    return root


def sha256_of(path, offset: int = 0, length: int | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(offset)
        left = os.path.getsize(path) - offset if length is None else length
        while left:
            chunk = f.read(min(1 << 20, left))
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


async def read_response(reader: asyncio.StreamReader) -> tuple[bytes, str, int]:
    """(head, sha256 of the body, body length), the body read by Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    digest = hashlib.sha256()
    left = length
    while left:
        chunk = await reader.read(min(1 << 20, left))
        assert chunk, f"EOF with {left} bytes to go"
        digest.update(chunk)
        left -= len(chunk)
    return head, digest.hexdigest(), length


async def test_a_200_mib_file_streams_with_bounded_buffers_then_keep_alive(
        manager: SessionManager, parser: str, site) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(lambda e: seen.append(e) if isinstance(e, (ev.SessionReset, ev.SessionAborted)) else None)
    listener = await manager.start_listener(build_service("http", {"dir": str(site), "parser": parser}))
    async with asyncio.timeout(90):
        reader, writer = await asyncio.open_connection(*listener.address, limit=1 << 20)
        # Pipelined: the small answer must wait behind the whole big body.
        writer.write(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\nGET /small.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        await wait_until(lambda: listener.sessions, 5, "session")
        session = manager.sessions[next(iter(listener.sessions))]
        peak = 0

        async def watch() -> None:
            nonlocal peak
            while True:
                peak = max(peak, session.write_buffer_size)
                await asyncio.sleep(0.005)

        watcher = asyncio.create_task(watch())
        try:
            head, digest, length = await read_response(reader)
        finally:
            watcher.cancel()
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and b"Accept-Ranges: bytes\r\n" in head
        assert (length, digest) == (BIG, sha256_of(site / "big.bin"))
        assert peak <= 1024 * 1024, peak  # about one chunk plus the high-water mark
        big_head = head
        head, digest, length = await read_response(reader)
        assert head.startswith(b"HTTP/1.1 200 OK\r\n") and length == 10
        assert session.bytes_out == len(big_head) + BIG + len(head) + 10  # every byte counted
        writer.close()
        await wait_until(lambda: not listener.sessions, 5, "closed")
    assert not seen


async def test_ranges_on_a_big_file_over_the_wire(manager: SessionManager, parser: str, site) -> None:
    listener = await manager.start_listener(build_service("http", {"dir": str(site), "parser": parser}))
    async with asyncio.timeout(30):
        reader, writer = await asyncio.open_connection(*listener.address, limit=1 << 20)
        first = BIG - 3 * 1024 * 1024 - 5
        writer.write(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=%d-\r\n\r\n" % first)
        head, digest, length = await read_response(reader)
        assert head.startswith(b"HTTP/1.1 206 Partial Content\r\n")
        assert b"Content-Range: bytes %d-%d/%d\r\n" % (first, BIG - 1, BIG) in head
        assert (length, digest) == (BIG - first, sha256_of(site / "big.bin", first))
        writer.write(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nRange: bytes=%d-\r\n\r\n" % BIG)
        head, _, _ = await read_response(reader)
        assert head.startswith(b"HTTP/1.1 416 Range Not Satisfiable\r\n")
        assert b"Content-Range: bytes */%d\r\n" % BIG in head
        writer.close()


async def test_a_file_that_shrinks_mid_stream_aborts(manager: SessionManager, parser: str, tmp_path) -> None:
    path = tmp_path / "shrinks.bin"
    with open(path, "wb") as f:
        f.truncate(8 * 1024 * 1024)
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(build_service("http", {"dir": str(tmp_path), "parser": parser}))
    async with asyncio.timeout(30):
        reader, writer = await asyncio.open_connection(*listener.address, limit=1 << 20)
        writer.write(b"GET /shrinks.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(1024)  # it started; the client is slow from here
        os.truncate(path, 1024 * 1024)
        with pytest.raises((ConnectionResetError, asyncio.IncompleteReadError)):
            await reader.readexactly(8 * 1024 * 1024)
        writer.close()
        await wait_until(lambda: any(isinstance(e, ev.SessionAborted) for e in seen), 5, "aborted")
    aborted = next(e for e in seen if isinstance(e, ev.SessionAborted))
    assert "shrank" in aborted.reason


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_cli_curl_range_and_resume_with_bounded_memory(site, tmp_path, parser: str) -> None:
    from tests.cli.test_cli import Served

    with Served("http", "--dir", str(site), "--parser", parser, "--quiet-data") as served:
        url = f"http://127.0.0.1:{served.port}/big.bin"
        part = tmp_path / "part.bin"
        done = subprocess.run(["curl", "-sS", "-r", "100-199", "-o", str(part), url],
                              capture_output=True, timeout=30)
        assert done.returncode == 0, done.stderr
        with open(site / "big.bin", "rb") as f:
            assert part.read_bytes() == f.read(200)[100:]
        # A download cut short, then resumed with -C - (curl sends Range: bytes=N-).
        partial = tmp_path / "resumed.bin"
        with open(site / "big.bin", "rb") as src, open(partial, "wb") as dst:
            dst.write(src.read(123_456_789))
        done = subprocess.run(["curl", "-sS", "-C", "-", "-o", str(partial), url],
                              capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert sha256_of(partial) == sha256_of(site / "big.bin")
        # All 200 MiB once more, whole; the server process never held the file.
        whole = subprocess.run(["curl", "-sS", url], capture_output=True, timeout=60)
        assert hashlib.sha256(whole.stdout).hexdigest() == sha256_of(site / "big.bin")
        with open(f"/proc/{served.proc.pid}/status") as f:
            peak_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
        code, out, err = served.stop()
    assert code == 0, err
    assert peak_kib < 120 * 1024, f"peak RSS {peak_kib} KiB"
    assert "-> 206," in out and "-> 200," in out


async def test_a_stalled_body_gets_408_over_the_wire(manager: SessionManager, parser: str) -> None:
    listener = await manager.start_listener(build_service("http", {"parser": parser,
                                                                   "header_timeout": 0.5}))
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection(*listener.address)
        writer.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
        answer = await reader.read()  # then nothing more: the body stalls
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
        assert b"Connection: close\r\n" in answer
        writer.close()
