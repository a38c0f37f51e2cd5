"""`tcpbench --listen/--connect`: parsing, and one-line errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tcpbench.cli import UsageError
from tcpbench.engine.registry import SERVICES
from tcpbench.ui_spec import ConnectSpec, ListenSpec, parse_connect, parse_listen


@pytest.mark.parametrize("text, spec", [
    ("echo:7000", ListenSpec("echo", "127.0.0.1", 7000)),
    ("echo:0", ListenSpec("echo", "127.0.0.1", 0)),
    ("raw:0.0.0.0:9", ListenSpec("raw", "0.0.0.0", 9)),
    ("echo:[::1]:7000", ListenSpec("echo", "::1", 7000)),
    ("echo:[::]:0", ListenSpec("echo", "::", 0)),
    ("motd:localhost:65535", ListenSpec("motd", "localhost", 65535)),
])
def test_listen_specs(text, spec):
    assert parse_listen(text, SERVICES) == spec


@pytest.mark.parametrize("text, message", [
    ("echo", "expected SERVICE:[HOST:]PORT"),
    (":7000", "expected SERVICE:[HOST:]PORT"),
    ("nosuch:7000", "unknown service 'nosuch'"),
    ("echo:70000", "out of range"),
    ("echo:abc", "not a number"),
    ("echo:::1:7000", "brackets"),
    ("echo:[::1:7000", "missing ']'"),
    ("echo:[::1]7000", "expected ':PORT'"),
    ("echo:[]:7000", "empty IPv6"),
])
def test_bad_listen_specs(text, message):
    with pytest.raises(UsageError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_listen(text, SERVICES)


@pytest.mark.parametrize("text, spec", [
    ("example.com:80", ConnectSpec("example.com", 80)),
    ("[::1]:22", ConnectSpec("::1", 22)),
    ("127.0.0.1:65535", ConnectSpec("127.0.0.1", 65535)),
])
def test_connect_specs(text, spec):
    assert parse_connect(text) == spec


@pytest.mark.parametrize("text, message", [
    ("example.com", "expected HOST:PORT"),
    (":80", "host is empty"),
    ("host:0", "port 0"),
    ("::1:22", "brackets"),
    ("host:-1", "not a number"),
])
def test_bad_connect_specs(text, message):
    with pytest.raises(UsageError, match=message):
        parse_connect(text)


@pytest.mark.parametrize("args", [["--listen", "nosuch:0"], ["--connect", "nohost"],
                                  ["--listen", "echo:[::1"]])
def test_bad_ui_flags_are_one_line_and_exit_2(args):
    proc = subprocess.run([sys.executable, "-m", "tcpbench", *args], capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tcpbench: --")
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_utc_flag_reaches_the_app(monkeypatch):
    import tcpbench.app as app_module
    from tcpbench.cli import main

    seen = {}
    monkeypatch.setattr(app_module, "run_app", lambda **kwargs: seen.update(kwargs) or 0)
    assert main(["--utc", "--listen", "echo:0"]) == 0
    assert seen == {"listen": ["echo:0"], "connect": [], "utc": True, "scenario": None, "record": None}
    assert main([]) == 0 and seen["utc"] is False
