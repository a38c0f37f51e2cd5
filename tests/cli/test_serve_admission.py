"""`tcpbench serve ... --max-conns/--allow/--deny/--refuse` as a person runs it: real sockets."""

from __future__ import annotations

import json
import socket

import pytest

from tests.cli.test_serve_more import Served
from tests.cli.test_cli import run

pytestmark = pytest.mark.timeout(60)


def _read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


@pytest.mark.parametrize("args, says", [
    (["--allow", "10.0.0.0/33"], "argument --allow: '10.0.0.0/33' is not an IPv4 or IPv6 address"),
    (["--deny", "example.com"], "argument --deny: 'example.com' is not"),
    (["--deny", "::1/129"], "argument --deny: '::1/129' is not"),
    (["--max-conns", "0"], "argument --max-conns: '0' must be at least 1"),
    (["--max-conns", "many"], "argument --max-conns: 'many' is not a whole number"),
    (["--deny", "10.0.0.0/8", "--refuse", "drop"], "expected close, reset or banner:TEXT"),
    (["--deny", "10.0.0.0/8", "--refuse", "banner:"], "the refusal banner is empty"),
    (["--deny", "10.0.0.0/8", "--refuse-banner", "a\tb"], "printable ASCII"),
    (["--refuse", "reset"], "--refuse needs a rule to refuse by"),
    (["--allow-file", "/nonexistent/allow.txt"], "cannot read '/nonexistent/allow.txt'"),
    (["--deny-file", "BADFILE"], "line 2: '10.0.0.300' is not"),
])
def test_bad_admission_flags_are_one_line_exit_2(tmp_path, args: list[str], says: str) -> None:
    bad = tmp_path / "deny.txt"
    bad.write_text("# ok\n10.0.0.300\n")
    args = [str(bad) if a == "BADFILE" else a for a in args]
    result = run("serve", "echo", *args)
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert says in err and err.count("\n") == 1 and err.startswith("tcpbench: ")
    assert result.stdout == b""


def test_max_conns_with_a_banner_is_visible_in_the_output() -> None:
    with Served("echo", "--max-conns", "1", "--refuse-banner", "421 Service not available") as served:
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as held:
            held.sendall(b"hi\n")
            assert held.recv(10) == b"hi\n"
            with socket.create_connection(("127.0.0.1", served.port), timeout=5) as turned:
                assert _read_all(turned) == b"421 Service not available\r\n"
                port = turned.getsockname()[1]
            line = served.wait_for("refused 127.0.0.1:")
            assert f"refused 127.0.0.1:{port} on listener 1: max-conns " in line
            assert "1 connections already open" in line and "banner" in line
        code, out, err = served.stop()
    assert code == 0
    assert "admitting: max 1; refuse by banner 421 Service not available" in err


def test_deny_file_and_reset_in_json(tmp_path) -> None:
    rules = tmp_path / "deny.txt"
    rules.write_text("# loopback is not welcome here\n127.0.0.0/8   # all of it\n")
    with Served("echo", "--json", "--deny-file", str(rules), "--refuse", "reset") as served:
        sock = socket.socket()
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", served.port))
            with pytest.raises(ConnectionResetError):
                _read_all(sock)
        except ConnectionResetError:
            pass  # the RST came before connect() returned: the same refusal
        finally:
            sock.close()
        line = served.wait_for('"refused_by_rule"')
        event = json.loads(line)
        assert (event["reason"], event["how"], event["detail"]) == ("denied", "reset",
                                                                    "denied by 127.0.0.0/8")
        assert event["peer"].startswith("127.0.0.1:")
        code, out, err = served.stop()
    assert code == 0


def test_a_relay_to_itself_is_refused_with_one_line() -> None:
    from tests.netutil import closed_port

    port = closed_port()
    result = run("serve", "relay", "--port", str(port), "--to", f"localhost:{port}")
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert err.count("\n") == 1 and "is this listener itself" in err
    assert "relay to another port or host" in err
