"""`tcpbench serve chat|exec|relay` as a person runs them: subprocesses, real loopback sockets."""

from __future__ import annotations

import os
import select
import socket
import time

from tests.cli.test_cli import Served as _Served
from tests.cli.test_cli import run


class Served(_Served):
    """`Served` whose `wait_for` also sees lines already sitting in the pipe's
    Python buffer (select() on the fd cannot know about those)."""

    def __init__(self, *args: str) -> None:
        super().__init__(*args)
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._pending = b""

    def wait_for(self, needle: str, timeout: float = 10.0) -> str:
        stdout = self.proc.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = stdout.read(65536)  # raw, unbuffered pipe: None when empty
            except BlockingIOError:
                chunk = None
            if chunk:
                self._pending += chunk
                *lines, self._pending = self._pending.split(b"\n")
                for raw in lines:
                    line = raw.decode() + "\n"
                    self.seen.append(line)
                    if needle in line:
                        return line
                continue
            select.select([stdout], [], [], 0.05)
        raise AssertionError(f"no line with {needle!r} within {timeout} s; saw {self.seen}")


def _readline(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        assert chunk, f"EOF after {data!r}"
        data += chunk
    return data


def test_serve_chat_two_clients_and_the_operator() -> None:
    with Served("chat", "--nick", "host") as served:
        assert served.first_line == f"listening on 127.0.0.1:{served.port}"
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as a:
            # a is welcomed before b connects: connects microseconds apart may be accepted
            # in either order (the listener has several accept queues).
            assert _readline(a).startswith(b"* welcome, you are user1")
            with socket.create_connection(("127.0.0.1", served.port), timeout=5) as b:
                assert _readline(b).startswith(b"* welcome, you are user2")
                assert _readline(a) == b"* user2 joined\n"
                a.sendall(b"hi \x1b[31mthere\r\n")
                assert _readline(b) == b"<user1> hi \\e[31mthere\n"
                served.wait_for("chat: <user1> hi")
                assert served.proc.stdin is not None
                served.proc.stdin.write(b"hello from the operator\n")
                served.proc.stdin.flush()
                assert _readline(a) == b"<host> hello from the operator\n"
                assert _readline(b) == b"<host> hello from the operator\n"
        code, out, err = served.stop()
    assert code == 0, err
    assert "\x1b" not in out


def test_serve_exec_is_refused_without_allow_exec() -> None:
    result = run("serve", "exec", "--", "cat")
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "--allow-exec" in lines[0]
    assert result.stdout == b""


def test_serve_exec_cat_round_trip_and_shell_motd() -> None:
    with Served("exec", "--allow-exec", "--", "cat") as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
            sock.sendall(b"is this on?\n")
            assert _readline(sock) == b"is this on?\n"
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(100) == b""
        served.wait_for("exited with status 0")
        code, out, err = served.stop()
    assert code == 0, err
    with Served("exec", "--allow-exec", "--shell", "echo hello world") as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
            assert _readline(sock) == b"hello world\n"
            assert sock.recv(100) == b""
        code, out, err = served.stop()
    assert code == 0, err


def test_serve_exec_beyond_the_loopback_address_warns_loudly() -> None:
    # 127.0.0.2 is still loopback (nothing leaves the machine) but is not the
    # default address, so the warning path runs.
    with Served("exec", "--allow-exec", "--host", "127.0.0.2", "--", "true") as served:
        code, out, err = served.stop()
    assert "WARNING: anyone who can reach 127.0.0.2:" in err and "'exec true'" in err


def test_serve_relay_round_trip_to_an_echo_server() -> None:
    with Served("echo") as echo, Served("relay", "--to", f"127.0.0.1:{echo.port}") as relay:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
            sock.sendall(b"via relay\n")
            assert _readline(sock) == b"via relay\n"
            sock.shutdown(socket.SHUT_WR)
            assert sock.recv(100) == b""
        relay.wait_for("relay: paired #")
        code, out, err = relay.stop()
        echo.stop()
    assert code == 0, err
    assert f"127.0.0.1:{echo.port}" in out


def test_serve_relay_to_a_closed_port_reports_refused() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with Served("relay", "--to", f"127.0.0.1:{port}") as relay:
        with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
            assert sock.recv(100) == b""
        line = relay.wait_for("relay: upstream")
        relay.stop()
    assert "refused" in line
