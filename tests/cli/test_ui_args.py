"""`tcpbench --listen/--connect`: parsing, and one-line errors with exit status 2."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpbench.cli import UsageError, build_parser, command_named, names_no_command
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


UI_TOKENS = ["--listen", "--connect", "--scenario", "--record", "--loop", "--busy-poll", "100",
             "--utc", "--version",
             "--listen=echo:0", "--lis", "echo:7000", "127.0.0.1:25", "serve", "probe", "-", "--",
             "-h", "--help", "--bogus", "-x", "asyncio", "lesson.toml"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(UI_TOKENS), max_size=6))
def test_the_light_parser_parses_every_ui_line_as_the_full_one_does(argv):
    """`tcpbench` without a command skips the subcommand parsers; where it does, the result
    (parsed options, or the one-line error and exit status) must be the full parser's."""
    if not names_no_command(argv):
        return

    def outcome(parser):
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                return vars(parser.parse_args(argv)), ""
        except SystemExit as exc:
            return exc.code, err.getvalue()

    assert outcome(build_parser(commands=False)) == outcome(build_parser())


@pytest.mark.parametrize("argv, light", [
    ([], True), (["--utc"], True), (["--listen", "echo:0", "--connect", "127.0.0.1:9"], True),
    (["--listen", "serve"], True), (["--listen=echo:0", "--loop", "asyncio"], True),
    (["serve", "echo"], False), (["--help"], False), (["-h"], False), (["--lis", "echo:0"], False),
    (["--", "serve"], False), (["probe", "127.0.0.1"], False), (["typo"], False),
])
def test_which_command_lines_take_the_light_parser(argv, light):
    assert names_no_command(argv) is light


@pytest.mark.timeout(30)
def test_the_workbench_path_imports_no_subcommand_module():
    """What `tcpbench` (no command) imports before the app starts: no serve/connect/probe
    parser modules and no services (they cost ~60 modules of start-up time)."""
    code = ("import sys; from tcpbench.cli import build_parser, names_no_command; "
            "assert names_no_command([]); build_parser(commands=False).parse_args([]); "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('tcpbench.', 'h11')))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.split()
    assert not [m for m in loaded if m.startswith(("tcpbench.cli.serve", "tcpbench.cli.connect",
                                                   "tcpbench.cli.probe", "tcpbench.services.",
                                                   "tcpbench.engine.registry", "h11"))], loaded


COMMAND_TOKENS = UI_TOKENS + ["connect", "scenarios", "web", "echo", "127.0.0.1", "1-3", "--json",
                              "--timeout", "1", "--port", "0"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(COMMAND_TOKENS), max_size=7))
def test_the_one_command_parser_parses_every_line_naming_it_as_the_full_one_does(argv):
    """A command line that names a subcommand gets a parser with that subcommand alone; where
    it does, the result (parsed options, or the one-line error and exit status) must be the
    full parser's."""
    command = command_named(argv)
    if command is None:
        return

    def outcome(parser):
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                parsed = vars(parser.parse_args(argv))
                parsed.pop("run", None)  # the command's function: the same, but from either parser
                return parsed, ""
        except SystemExit as exc:
            return exc.code, err.getvalue()

    assert outcome(build_parser(commands=command)) == outcome(build_parser())


@pytest.mark.parametrize("argv, command", [
    (["probe", "127.0.0.1", "80"], "probe"), (["--loop", "asyncio", "serve", "echo"], "serve"),
    (["--busy-poll", "0", "connect", "h", "1"], "connect"), (["--listen", "probe"], None),
    (["--help", "probe"], None), (["--", "probe"], None), (["typo", "probe"], None), ([], None),
    (["--listen=echo:0", "web"], "web"), (["-", "serve"], None),
])
def test_which_command_lines_take_a_one_command_parser(argv, command):
    assert command_named(argv) == command


@pytest.mark.timeout(30)
def test_a_probe_imports_no_other_subcommand():
    """`tcpbench probe` builds its own parser alone: no serve/connect modules, no services, no
    h11 (~50 ms of a probe's start)."""
    code = ("import sys; from tcpbench.cli import main; "
            "code = main(['probe', '127.0.0.1', '1', '--json', '--timeout', '1']); "
            "print(' '.join(sorted(m for m in sys.modules if m.startswith(('tcpbench.', 'h11')))), "
            "file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert '"port": 1' in done.stdout, done.stdout + done.stderr
    loaded = done.stderr.split()
    assert "tcpbench.cli.probe" in loaded
    assert not [m for m in loaded if m.startswith(("tcpbench.cli.serve", "tcpbench.cli.connect",
                                                   "tcpbench.services.", "tcpbench.engine.registry",
                                                   "h11"))], loaded
