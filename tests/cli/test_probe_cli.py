"""`tcpbench probe` run as a person or a script would: subprocesses, real loopback sockets."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import pytest

from tests.netutil import closed_port, silent_port

TCPBENCH = [sys.executable, "-m", "tcpbench"]


def run_probe(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TCPBENCH, "probe", *args], capture_output=True, text=True,
                          timeout=timeout)


class GreetingServer:
    """A tiny blocking server in a thread: sends `greeting` to each client, reads its line, answers.

    Bounded: serves at most `clients` connections, each with a 5 s socket timeout.
    """

    def __init__(self, greeting: bytes, answer: bytes = b"", clients: int = 1) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(10)
        self.port = self.sock.getsockname()[1]
        self.greeting = greeting
        self.answer = answer
        self.clients = clients
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        for _ in range(self.clients):
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                conn.sendall(self.greeting)
                data = b""
                try:
                    while b"\n" not in data:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                    self.received.append(data)
                    if data:
                        conn.sendall(self.answer)
                        conn.shutdown(socket.SHUT_WR)
                        while conn.recv(4096):
                            pass
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()
        self.thread.join(5)


@pytest.fixture
def greeter():
    servers: list[GreetingServer] = []

    def make(*args, **kwargs) -> GreetingServer:
        servers.append(GreetingServer(*args, **kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_open_and_refused_table(greeter):
    server = greeter(b"SSH-2.0-test\r\n", clients=1)
    closed = closed_port()
    done = run_probe("127.0.0.1", f"{server.port},{closed}")
    assert done.returncode == 1, done.stderr  # one port is not open
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["ADDRESS", "PORT", "OUTCOME", "MS", "ERROR", "EXPLANATION"]
    assert lines[1].split()[:3] == ["127.0.0.1", str(server.port), "open"]
    assert lines[2].split()[:3] == ["127.0.0.1", str(closed), "refused"]
    assert "Connection refused" in lines[2] and "REJECT" in lines[2]
    # columns line up: the explanation starts at the same place in every row
    starts = {line.index("the ") for line in lines[1:3]}
    assert len(starts) == 1
    assert lines[-1].startswith("probed 2 ports on 127.0.0.1 (1 address)")
    assert "1 open, 1 refused" in lines[-1]


def test_all_open_exits_0_and_json_lines(greeter):
    server = greeter(b"", clients=1)
    done = run_probe("127.0.0.1", str(server.port), "--json")
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    record = json.loads(line)
    assert {"host", "address", "port", "outcome", "ms", "error", "explanation",
            "banner"} <= set(record)
    assert record["outcome"] == "open" and record["port"] == server.port
    assert record["banner"] is None and record["error"] == ""


def test_timed_out_json():
    with silent_port() as port:
        done = run_probe("127.0.0.1", str(port), "--timeout", "0.3", "--json")
    assert done.returncode == 1
    record = json.loads(done.stdout)
    assert record["outcome"] == "timed_out"
    assert "DROP" in record["explanation"] and record["ms"] >= 290


def test_banner_and_send_are_escaped(greeter):
    server = greeter(b"220 hello \x1b]0;owned\x07 [bold]x[/bold]\r\n", b"250 ok \x9b\r\n")
    done = run_probe("127.0.0.1", str(server.port), "--send", "HELO tcpbench\\x21")
    assert done.returncode == 0, done.stderr
    assert server.received == [b"HELO tcpbench!\r\n"]
    assert "    banner: 220 hello \\e]0;owned\\x07 [bold]x[/bold]\\r\\n" in done.stdout
    assert "    answer: 250 ok \\x9b\\r\\n" in done.stdout
    assert done.stdout.isascii() and "\x1b" not in done.stdout


def test_421_refusal_is_explained(greeter):
    server = greeter(b"421 Service not available.\r\n")
    done = run_probe("127.0.0.1", str(server.port), "--banner", "--json")
    assert done.returncode == 1  # the port is open but the service says no
    record = json.loads(done.stdout)
    assert record["outcome"] == "open" and record["service_refused"] is True
    assert "TCP wrappers" in record["explanation"]


def test_unresolvable_name_exits_1():
    done = run_probe("no-such-host.invalid", "22,80", "--json")
    assert done.returncode == 1
    [record] = [json.loads(line) for line in done.stdout.splitlines()]
    assert record["outcome"] == "name_not_resolved" and record["port"] is None


@pytest.mark.parametrize("args, words", [
    (["127.0.0.1", "10-5"], "backwards"),
    (["127.0.0.1", "0"], "out of range"),
    (["127.0.0.1", "70000"], "out of range"),
    (["127.0.0.1", "nosuchservice"], "unknown service"),
    (["127.0.0.1", "1,,2"], "empty item"),
    (["127.0.0.1", "22", "--concurrency", "0"], "concurrency"),
    (["127.0.0.1", "22", "--concurrency", "many"], "concurrency"),
    (["127.0.0.1", "22", "--timeout", "-1"], "greater than 0"),
    (["127.0.0.1", "22", "--send", "bad\\q"], "unknown escape"),
    (["127.0.0.1"], "required"),
])
def test_bad_arguments_one_line_exit_2(args, words):
    done = run_probe(*args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr


def test_thousand_closed_ports():
    done = run_probe("127.0.0.1", "1-1000", "--json", "--timeout", "2")
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["port"] for r in records] == list(range(1, 1001))
    assert {r["outcome"] for r in records} <= {"refused", "open"}


def loaded_by(imports: str, modules: tuple[str, ...]) -> list[str]:
    """Which of `modules` a fresh interpreter has loaded after `import IMPORTS`."""
    code = (f"import sys, {imports}\n"
            f"print(','.join(m for m in {modules!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [m for m in done.stdout.strip().split(",") if m]


def test_probe_cli_does_not_load_the_ui():
    assert loaded_by("tcpbench.cli.probe", ("textual", "rich")) == []


def test_a_plain_probe_loads_no_tls_code():
    assert loaded_by("asyncio, tcpbench.cli.probe, tcpbench.engine.probe",
                     ("tcpbench.engine.probe_tls", "tcpbench.engine.tls", "tcpbench.engine.events")) == []


def test_nc_habits_vz_are_accepted_and_change_nothing():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        result = run_probe("-vz", "127.0.0.1", str(port))
    assert result.returncode == 0, result.stderr
    assert "open" in result.stdout and result.stderr == ""
