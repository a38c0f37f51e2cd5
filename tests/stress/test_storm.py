"""A storm of hostile connections against `tcpbench serve echo`, as a user runs it.

2,000 connections opened and aborted with RST as fast as one process can, then 1,000 that
close before waiting for their handshake ("SYN then close"), while a well-behaved client keeps
an echo session going. That session must never stall for longer than 100 ms, and once the
storm is over the server holds exactly the file descriptors it held before (no leak).
The storm runs in its own process so its work does not share a core's time slice with ours.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

TCPBENCH = [sys.executable, "-m", "tcpbench"]

STORM = r"""
import socket, struct, sys
port = int(sys.argv[1])
linger_zero = struct.pack("ii", 1, 0)
for _ in range(2000):
    sock = socket.socket()
    sock.connect(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
    sock.close()  # RST
for _ in range(1000):
    sock = socket.socket()
    sock.setblocking(False)
    sock.connect_ex(("127.0.0.1", port))  # SYN sent; we do not wait for the answer
    sock.close()
print("done", flush=True)
"""

STALL_LIMIT = 0.100


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _wait_for_fds(pid: int, expected: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    count = _fds(pid)
    while count != expected and time.monotonic() < deadline:
        time.sleep(0.05)  # polling a condition with a bound, not waiting for a server
        count = _fds(pid)
    return count


def _listening_port(output, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        output.seek(0)
        first = output.readline()
        if first.endswith(b"\n"):
            assert first.startswith(b"listening on "), first
            return int(first.rsplit(b":", 1)[1])
        time.sleep(0.02)
    raise AssertionError("serve echo printed no 'listening on' line")


@pytest.mark.timeout(120)
def test_an_rst_and_syn_storm_never_stalls_a_live_echo_session_and_leaks_no_descriptor(
        tmp_path) -> None:
    # Its event output goes to a file, as `serve echo > log` would: a pipe nobody reads
    # would fill up and (rightly) hold the server back.
    with open(tmp_path / "events.txt", "w+b") as output:
        server = subprocess.Popen([*TCPBENCH, "serve", "echo"], stdin=subprocess.DEVNULL,
                                  stdout=output, stderr=subprocess.PIPE)
        try:
            port = _listening_port(output)
            _storm_against(server.pid, port)
        finally:
            server.terminate()
            _, err = server.communicate(timeout=20)
        assert server.returncode == 0, err.decode()
        output.seek(0)
        events = output.read().decode()
    assert events.count(" opened") >= 2001  # every storm connection was seen, none unseen


def _storm_against(pid: int, port: int) -> None:
    """Storm `port` from another process while timing a live echo session on it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as watcher:
        watcher.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        watcher.sendall(b"warm-up\n")
        assert watcher.recv(100) == b"warm-up\n"
        baseline = _fds(pid)

        storm = subprocess.Popen([sys.executable, "-c", STORM, str(port)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        worst, round_trips = 0.0, 0
        deadline = time.monotonic() + 60
        try:
            # During the storm and until the server has digested it (its fds are back).
            while (storm.poll() is None or _fds(pid) != baseline) and time.monotonic() < deadline:
                started = time.perf_counter()
                watcher.sendall(b"ping %06d\n" % round_trips)
                answer = b""
                while len(answer) < 12:
                    answer += watcher.recv(100)
                worst = max(worst, time.perf_counter() - started)
                assert answer == b"ping %06d\n" % round_trips
                round_trips += 1
        finally:
            if storm.poll() is None:
                storm.kill()
            out, err = storm.communicate(timeout=10)
        assert storm.returncode == 0 and out == b"done\n", err.decode()
        assert round_trips > 20, "the storm ended before the watcher measured anything"
        print(f"worst round trip during the storm: {worst * 1000:.1f} ms over {round_trips}")
        assert worst < STALL_LIMIT, (f"the live session stalled {worst * 1000:.1f} ms "
                                     f"({round_trips} round trips during the storm)")
        assert _wait_for_fds(pid, baseline, timeout=10) == baseline
        watcher.sendall(b"still here\n")
        assert watcher.recv(100) == b"still here\n"
