"""The record of a session, read back and compared byte for byte with what real clients sent.

`serve --record` is a subprocess with its byte store off (headless keeps no
bytes), so what it writes can only come from the event subscriber; the UI's
export reads the byte stores of a live manager.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys

import pytest

from tcpbench.engine.recorder import Recorder, RecordError, export_sessions, prepare_directory
from tcpbench.engine.registry import build_service
from tcpbench.safetext import unescape_bytes
from tests.conftest import wait_until
from tests.netutil import echo_then_fin

pytestmark = pytest.mark.timeout(60)
PAYLOAD = bytes(range(256)) * 64 + b"\x1b]52;c;AAAA\x07[@click=app.quit]\n"


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_record(directory, session: int, sent_by_client: bytes, received_by_client: bytes) -> None:
    stem = directory / f"session-{session}"
    rx = (directory / f"session-{session}.rx.bin").read_bytes()
    tx = (directory / f"session-{session}.tx.bin").read_bytes()
    assert rx == sent_by_client and tx == received_by_client
    rows = read_jsonl(stem.with_suffix(".jsonl"))
    kinds = [row["event"] for row in rows]
    assert kinds[0] == "opened" and kinds[-1] in ("closed", "reset", "aborted")
    for kind, want in (("received", sent_by_client), ("sent", received_by_client)):
        chunks = [row for row in rows if row["event"] == kind]
        data = b"".join(base64.b64decode(row["data_b64"]) for row in chunks)
        assert data == want
        assert all(len(base64.b64decode(r["data_b64"])) == r["size"] for r in chunks)
        offsets = [r["offset"] for r in chunks]
        assert offsets == sorted(offsets) and (not chunks or offsets[0] == 0)
    transcript = stem.with_suffix(".txt").read_text(encoding="ascii")
    assert all(ch.isprintable() for line in transcript.splitlines() for ch in line)
    for mark, want in (("<", sent_by_client), (">", received_by_client)):
        lines = [line.split(" ", 2)[2] for line in transcript.splitlines() if line.split(" ")[1:2] == [mark]]
        assert unescape_bytes("".join(lines)) == want
    assert "accepted: a peer completed the three-way handshake" in transcript


def test_serve_record_writes_what_the_client_sent_and_got(tmp_path) -> None:
    record = tmp_path / "rec"
    proc = subprocess.Popen([sys.executable, "-m", "tcpbench", "serve", "echo", "--record", str(record),
                             "--quiet-data"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.PIPE)
    try:
        line = proc.stdout.readline().decode()
        port = int(line.rsplit(":", 1)[1])
        got = []
        for _ in range(2):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(PAYLOAD)
                sock.shutdown(socket.SHUT_WR)
                data = b""
                while chunk := sock.recv(65536):
                    data += chunk
                got.append(data)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert got == [PAYLOAD, PAYLOAD]
    for session in (1, 2):
        check_record(record, session, PAYLOAD, PAYLOAD)
    listeners = read_jsonl(record / "listeners.jsonl")
    assert listeners[0]["event"] == "listener_started"


def test_record_refuses_a_directory_that_is_not_empty(tmp_path) -> None:
    (tmp_path / "old.txt").write_text("x")
    out = subprocess.run([sys.executable, "-m", "tcpbench", "serve", "echo", "--record", str(tmp_path)],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    assert out.stderr == f"tcpbench: --record: {tmp_path} is not empty; record into a new or empty directory\n"


async def test_recorder_memory_stays_bounded_and_everything_arrives(manager, tmp_path) -> None:
    recorder = Recorder(prepare_directory(tmp_path / "r"), flush_bytes=4096, max_pending=16384)
    manager.subscribe(recorder)
    listener = await manager.start_listener(build_service("discard"))
    big = os.urandom(3 * 1024 * 1024)
    import asyncio

    reader, writer = await asyncio.open_connection(*listener.address)
    peak = 0
    for start in range(0, len(big), 65536):
        writer.write(big[start:start + 65536])
        await writer.drain()
        peak = max(peak, recorder._pending_total)
    writer.close()
    await writer.wait_closed()
    await wait_until(lambda: not manager.sessions, what="the session ended")
    recorder.close()
    assert peak < 16384 + 65536 * 4  # bounded: the cap plus a chunk's worth of lines
    assert (tmp_path / "r" / "session-1.rx.bin").read_bytes() == big


async def test_ui_export_from_the_byte_stores(manager, tmp_path) -> None:
    listener = await manager.start_listener(build_service("echo"))
    await echo_then_fin(*listener.address, PAYLOAD)
    await wait_until(lambda: not manager.sessions, what="closed")
    session = next(iter(manager.history.values()))
    assert export_sessions([session], tmp_path / "x") == [session.id]
    check_record(tmp_path / "x", session.id, PAYLOAD, PAYLOAD)
    with pytest.raises(RecordError, match="not empty"):
        export_sessions([session], tmp_path / "x")
