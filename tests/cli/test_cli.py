"""The headless commands, run as a person or a script would: subprocesses, real sockets."""

from __future__ import annotations

import json
import select
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.netutil import closed_port

TCPBENCH = [sys.executable, "-m", "tcpbench"]


class Served:
    """A `tcpbench serve ...` child process; reads its `listening on` line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([*TCPBENCH, "serve", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        assert self.proc.stdout is not None
        self.first_line = self.proc.stdout.readline().decode().rstrip("\n")
        if "--json" in args:  # every line is JSON, the first one too
            first = json.loads(self.first_line) if self.first_line.startswith("{") else {}
            assert first.get("event") == "listening", self.stop()
            self.port = first["port"]
        else:
            assert self.first_line.startswith("listening on "), self.stop()
            self.port = int(self.first_line.rsplit(":", 1)[1])

        self.seen: list[str] = []
        self._drainer: threading.Thread | None = None

    def drain(self) -> "Served":
        """Read the event lines in a thread from now on. A test that makes many connections
        must: a pipe nobody reads holds 64 KiB, and then the server blocks on its next line,
        as any program writing to a full pipe does."""
        assert self.proc.stdout is not None and self._drainer is None
        stdout = self.proc.stdout

        def keep_reading() -> None:
            for line in iter(stdout.readline, b""):
                self.seen.append(line.decode())

        self._drainer = threading.Thread(target=keep_reading, daemon=True)
        self._drainer.start()
        return self

    def wait_for(self, needle: str, timeout: float = 10.0) -> str:
        """Read event lines until one contains `needle` (bounded in time)."""
        assert self.proc.stdout is not None
        if self._drainer is not None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for line in list(self.seen):
                    if needle in line:
                        return line
                time.sleep(0.02)  # polling what the drainer thread collected, bounded by the deadline
            raise AssertionError(f"no line with {needle!r} within {timeout} s; saw {self.seen}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                line = self.proc.stdout.readline().decode()
                self.seen.append(line)
                if needle in line:
                    return line
        raise AssertionError(f"no line with {needle!r} within {timeout} s; saw {self.seen}")

    def stop(self) -> tuple[int, str, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        out, err = self._collect()
        return self.proc.returncode, "".join(self.seen) + out, err

    def _collect(self) -> tuple[str, str]:
        """Wait for the ended process; its remaining stdout and its stderr, pipes closed."""
        if self._drainer is None:
            out, err = self.proc.communicate(timeout=20)
            return out.decode(), err.decode()
        assert self.proc.stderr is not None
        err = self.proc.stderr.read()  # the drainer owns stdout
        self.proc.wait(timeout=20)
        self._drainer.join(20)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()
        return "", err.decode()

    def __enter__(self) -> "Served":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self._collect()


def run(*args: str, stdin: bytes = b"", timeout: float = 30) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*TCPBENCH, *args], input=stdin, capture_output=True, timeout=timeout)


def test_serve_echo_prints_listening_line_and_events_then_exits_0_on_sigterm() -> None:
    with Served("echo") as served:
        assert served.first_line == f"listening on 127.0.0.1:{served.port}"
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
            sock.sendall(b"ping\x1b[2J\n")
            assert sock.recv(100) == b"ping\x1b[2J\n"
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(100) == b""
        served.wait_for("closed by")
        code, out, err = served.stop()
    assert code == 0, err
    assert "opened" in out and "closed by peer" in out
    assert '"ping\\e[2J\\n"' in out  # escaped, never raw ESC
    assert out.rstrip("\n").splitlines()[-1].endswith(
        f"stopped listening on 127.0.0.1:{served.port}: 1 connection, 9 bytes in, 9 bytes out")
    assert "\x1b" not in out


def test_serve_json_lines() -> None:
    with Served("echo", "--json") as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
            sock.sendall(b"abc")
            assert sock.recv(10) == b"abc"
        served.wait_for('"closed"')
        code, out, _ = served.stop()
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    events = [r["event"] for r in rows]
    assert events[:3] == ["opened", "received", "sent"]
    assert rows[1]["size"] == 3 and rows[1]["session"] == 1
    assert rows[1]["data"] == "abc" and "data_truncated" not in rows[1]
    assert json.loads(served.first_line) == {
        "event": "listening", "service": "echo", "address": f"127.0.0.1:{served.port}",
        "host": "127.0.0.1", "port": served.port, "tls": False}


def test_serve_json_says_when_a_byte_preview_is_cut() -> None:
    with Served("echo", "--json") as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
            sock.sendall(b"x" * 1000)
            got = b""
            while len(got) < 1000:
                got += sock.recv(1000)
        served.wait_for('"closed"')
        code, out, _ = served.stop()
    assert code == 0
    received = [r for r in map(json.loads, out.splitlines()) if r["event"] == "received"]
    assert sum(r["size"] for r in received) == 1000
    for row in received:
        assert row.get("data_truncated", False) == (row["size"] > len(row["data"]))
    assert any(row.get("data_truncated") for row in received)


def test_serve_dual_stack_line() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with Served("echo", "--host", "::") as served:
        assert served.first_line == f"listening on [::]:{served.port}"
        code, _, err = served.stop()
    assert code == 0
    assert "reachable from the network" in err


def test_connect_round_trip_and_exit_0_when_peer_closes() -> None:
    with Served("echo") as served:
        result = run("connect", "127.0.0.1", str(served.port), stdin=b"hello\nworld\n")
        served.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"hello\nworld\n"


def test_connect_takes_an_ipv6_address_in_brackets_as_urls_write_it() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with Served("echo", "--host", "::1") as served:
        result = run("connect", "[::1]", str(served.port), stdin=b"six\n")
        served.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"six\n"


def test_connect_takes_service_names_as_nc_does() -> None:
    from tcpbench.cli.connect import parse_remote_port

    assert parse_remote_port("http") == 80 == socket.getservbyname("http", "tcp")
    assert parse_remote_port("smtp") == 25 and parse_remote_port("65535") == 65535


def test_connect_crlf() -> None:
    with Served("echo") as served:
        result = run("connect", "--crlf", "127.0.0.1", str(served.port), stdin=b"a\nb\n")
        served.stop()
    assert result.stdout == b"a\r\nb\r\n"


def test_connect_to_motd_reads_banner() -> None:
    with Served("motd", "--message", "220 ready") as served:
        result = run("connect", "127.0.0.1", str(served.port))
        served.stop()
    assert result.returncode == 0
    assert result.stdout == b"220 ready\n"


def test_raw_prints_everything_a_client_sends_escaped() -> None:
    payload = b"A" * 500 + b"\x1b[31m end\n"
    with Served("raw") as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
            sock.sendall(payload)
            line = served.wait_for("< 510 bytes")
        served.stop()
    assert '"' + "A" * 500 + '\\e[31m end\\n"' in line


def test_raw_operator_lines_reach_the_client() -> None:
    with Served("raw") as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
            served.wait_for("opened")
            assert served.proc.stdin is not None
            served.proc.stdin.write(b"hello from the operator\n")
            served.proc.stdin.flush()
            sock.settimeout(5)
            assert sock.recv(100) == b"hello from the operator\n"
        served.stop()


def test_raw_stdin_eof_sends_fin_to_every_client_like_ncat() -> None:
    with Served("raw") as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as first, \
                socket.create_connection(("127.0.0.1", served.port), timeout=5) as second:
            served.wait_for("opened")
            served.wait_for("opened")
            assert served.proc.stdin is not None
            served.proc.stdin.write(b"last words\n")
            served.proc.stdin.close()
            served.proc.stdin = None  # communicate() in stop() must not touch the closed pipe
            served.wait_for("operator input ended: FIN sent to 2 clients")
            for sock in (first, second):
                sock.settimeout(5)
                received = b""
                while chunk := sock.recv(100):
                    received += chunk
                assert received == b"last words\n"  # then a clean EOF: FIN, not RST
            # Half-closed, not closed: what a client still says reaches the operator.
            first.sendall(b"still here\n")
            served.wait_for("still here")
            with socket.create_connection(("127.0.0.1", served.port), timeout=5) as late:
                late.settimeout(5)
                assert late.recv(100) == b""  # a latecomer gets FIN at once
        served.stop()


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["connect", "127.0.0.1", "PORT_CLOSED"], 1, "connection refused by 127.0.0.1:"),
        (["connect", "no-such-host.invalid", "80"], 1, "cannot resolve 'no-such-host.invalid'"),
        (["serve", "echo", "--port", "70000"], 2, "port 70000 is out of range"),
        (["serve", "echo", "--port", "http"], 2, "is not a number"),
        (["serve", "nope"], 2, "invalid choice: 'nope'"),
        (["serve", "echo", "--host", "no-such-host.invalid"], 2, "unknown host"),
        (["connect", "127.0.0.1", "99999"], 2, "out of range"),
        (["connect", "127.0.0.1", "0"], 2, "port 0 cannot be connected to"),
        (["serve", "motd", "--message", "bad \\q"], 2, "unknown escape"),
    ],
)
def test_bad_input_is_one_line_and_the_right_exit_code(args: list[str], code: int, needle: str) -> None:
    args = [str(closed_port()) if a == "PORT_CLOSED" else a for a in args]
    result = run(*args)
    err = result.stderr.decode()
    assert result.returncode == code, err
    assert needle in err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_port_in_use_is_one_line_exit_2() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = run("serve", "echo", "--port", str(port))
    err = result.stderr.decode()
    assert result.returncode == 2
    assert f"port {port} is already in use" in err and len(err.strip().splitlines()) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root may bind low ports")
def test_permission_denied_below_1024() -> None:  # pragma: no cover - CI runs as root
    result = run("serve", "echo", "--port", "81")
    assert result.returncode == 2
    assert "permission denied" in result.stderr.decode()
