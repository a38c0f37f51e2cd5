"""Every bad input to the command line, as a table: one line on stderr that says what is wrong
and what to do, exit status 2, nothing on stdout.

Rows run as a person would type them (`python -m tcpbench ...`, a subprocess).
The UI start-up flags (`--listen`, `--connect`) are checked before Textual
starts, so they belong here too. The --allow/--deny CIDR flags are another
branch's: their rows join this table when they land.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from tests.netutil import closed_port

TCPBENCH = [sys.executable, "-m", "tcpbench"]

# (arguments, a regex the one stderr line must match). {busy} is a port something listens on,
# {free} a port nothing listens on.
ROWS = [
    # ports
    ("serve echo --port 65536", r"port 65536 is out of range \(0-65535\)"),
    ("serve echo --port -1", r"port -1 is out of range"),
    ("serve echo --port abc", r"port 'abc' is not a number"),
    ("serve echo --port \u00b2", r"is not a number"),
    ("serve echo --port 8_0", r"port '8_0' is not a number"),
    ("serve echo --port {busy}", r"port {busy} is already in use \(.*pick another port or 0"),
    ("connect 127.0.0.1 0", r"port 0 cannot be connected to \(use 1-65535\)"),
    ("connect 127.0.0.1 99999", r"port 99999 is out of range \(1-65535\)"),
    ("connect 127.0.0.1 8_0", r"port '8_0' is not a number \(1-65535\)"),
    ("connect 127.0.0.1 nosuchservice",
     r"port 'nosuchservice' is neither a number \(1-65535\) nor a known service name"),
    ("probe 127.0.0.1 0", r"port 0 is out of range \(1-65535\)"),
    ("probe 127.0.0.1 70000", r"port 70000 is out of range"),
    ("probe 127.0.0.1 9-1", r"runs backwards \(write 1-9\)"),
    ("probe 127.0.0.1 80,,81", r"empty item in port list"),
    ("probe 127.0.0.1 nosuchservice", r"unknown service name 'nosuchservice'.*give the port number"),
    ("probe 127.0.0.1 \u0661\u0662", r"bad port"),
    # hosts
    ("serve echo --host no-such-host.invalid", r"unknown host 'no-such-host.invalid'"),
    ("serve echo --host 192.0.2.1", r"192.0.2.1 is not an address of this machine"),
    # the UI's start-up flags
    ("--listen echo", r"--listen 'echo': expected SERVICE:\[HOST:\]PORT, e.g. echo:7000"),
    ("--listen nosuch:7000", r"unknown service 'nosuch' \(known: .*echo"),
    ("--listen echo:99999", r"port 99999 is out of range"),
    ("--listen echo:\u00b2", r"is not a number"),
    ("--listen echo:::1:7000", r"put an IPv6 address in brackets, e.g. \[::1\]:7000"),
    ("--listen echo:[::1", r"missing '\]' after the IPv6 address"),
    ("--listen echo:[]:7000", r"empty IPv6 address in brackets"),
    ("--connect localhost", r"--connect 'localhost': expected HOST:PORT"),
    ("--connect localhost:0", r"port 0 cannot be connected to"),
    ("--connect host:abc", r"port 'abc' is not a number"),
    ("--connect :80", r"expected HOST:PORT \(the host is empty\)"),
    # files that are not there
    ("serve http --body-file /nonexistent/body", r"cannot read /nonexistent/body: No such file"),
    ("serve http --dir /nonexistent/dir", r"--dir '/nonexistent/dir' is not a directory"),
    ("serve motd --message-file /nonexistent/msg", r"cannot read /nonexistent/msg: No such file"),
    # unknown services and options
    ("serve nosuch", r"invalid choice: 'nosuch' \(choose from .*'echo'"),
    ("serve", r"the following arguments are required: SERVICE"),
    ("serve echo --nosuch", r"unrecognized arguments: --nosuch \(see 'tcpbench"),
    ("--frobnicate", r"unrecognized arguments: --frobnicate"),
    ("nosuchcommand", r"invalid choice: 'nosuchcommand'"),
    ("--loop nosuch serve echo", r"argument --loop: invalid choice"),
    ("--busy-poll -1 serve echo", r"busy poll must be 0 to 10000 microseconds, not -1"),
    ("--busy-poll soon serve echo", r"argument --busy-poll: invalid float value: 'soon'"),
    ("serve http --parser nosuch", r"argument --parser: invalid choice"),
    ("serve http --status 999", r"--status 999: use a code from 200 to 599"),
    ("serve http --header nocolon", r"--header 'nocolon': use 'Name: value'"),
    ("serve http --body x --body-file /etc/hostname", r"give --body or --body-file, not both"),
    ("serve echo --idle-timeout 0", r"'0' must be greater than 0"),
    ("serve exec -- cat", r"add --allow-exec to confirm"),
    ("serve chat --nick a-b-c-d-e-f-g-h-i-j", r"--nick .* must be 1-16 of"),
    ("serve fuzz --bytes -1", r"--bytes must be 0 or more"),
    # relay
    ("serve relay", r"say where to relay to: --to HOST:PORT"),
    ("serve relay --to localhost", r"is not HOST:PORT \(IPv6 goes in brackets\)"),
    ("serve relay --to localhost:0", r"port 0 is out of range \(1-65535\)"),
    ("serve relay --port {free} --to 127.0.0.1:{free}", r"is this listener itself .* relay to another port"),
    ("serve relay --host 0.0.0.0 --port {free} --to localhost:{free}", r"is this listener itself"),
    # escapes
    ("serve motd --message a\\q", r"--message: unknown escape \\q \(known: .*\\xNN\)"),
    ("serve motd --message \\x4", r"--message: bad escape \\x4: write two hex digits"),
    ("serve http --body \\", r"--body: a lone backslash at the end \(write \\\\ for a backslash\)"),
    ("probe 127.0.0.1 80 --send \\xZZ", r"bad escape \\xZZ"),
]


@pytest.fixture(scope="module")
def busy_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def run(args: list[str], timeout: float = 20) -> subprocess.CompletedProcess:
    return subprocess.run([*TCPBENCH, *args], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=timeout, env={**os.environ, "TCPBENCH_LOOP": "asyncio"})


@pytest.mark.timeout(30)
@pytest.mark.parametrize("command, expected", ROWS, ids=[row[0] for row in ROWS])
def test_bad_input_is_one_line_exit_2_and_nothing_on_stdout(command, expected, busy_port) -> None:
    free = closed_port()
    filled = {"busy": str(busy_port), "free": str(free)}
    args = [part.format(**filled) for part in command.split(" ")]
    done = run(args)
    err = done.stderr.decode()
    assert done.returncode == 2, (done.returncode, err)
    assert done.stdout == b""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tcpbench: ")
    assert re.search(expected.format(**filled), lines[0]), lines[0]
    assert "Traceback" not in err


@pytest.mark.timeout(30)
def test_a_non_utf8_message_byte_is_sent_not_refused() -> None:
    """`--message $'\\xff'` arrives as a surrogate-escaped str: it is that byte, not an error."""
    proc = subprocess.Popen([*TCPBENCH, "serve", "motd", "--message", os.fsdecode(b"\xff")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("listening on "), proc.stderr.read()
        port = int(line.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            data = b""
            while chunk := sock.recv(100):
                data += chunk
        assert data == b"\xff\n"
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


@pytest.mark.timeout(30)
def test_a_privileged_port() -> None:
    """Not root: permission denied, one line, exit 2. Root: the port is just a port."""
    port = next(p for p in range(1000, 1024) if _free(p))
    if os.geteuid() != 0:
        done = run(["serve", "echo", "--port", str(port)])
        assert done.returncode == 2 and done.stdout == b""
        [line] = done.stderr.decode().splitlines()
        assert "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)" in line
        return
    proc = subprocess.Popen([*TCPBENCH, "serve", "echo", "--port", str(port)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline().decode() == f"listening on 127.0.0.1:{port}\n"
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"root may\n")
            assert sock.recv(100) == b"root may\n"
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


@pytest.mark.timeout(30)
def test_connect_to_an_unknown_host_is_a_failed_connect_exit_1() -> None:
    """Not a usage error: like nc, a name that does not resolve is a failed connect (exit 1),
    still one line that says what to check."""
    done = run(["connect", "no-such-host.invalid", "80", "--timeout", "5"])
    assert done.returncode == 1 and done.stdout == b""
    [line] = done.stderr.decode().splitlines()
    assert "cannot resolve 'no-such-host.invalid'" in line and "check the spelling" in line


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
