"""Scenario files: every mistake is one line with its line number; the built-ins parse."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tcpbench.scenarios import ScenarioError, builtin_names, load_scenario, parse_scenario

GOOD = textwrap.dedent('''\
    title = "t"
    notes = """
    port = 1 inside the notes is not a key
    nc {web.addr}
    """

    [[listener]]
    name = "echo"
    service = "echo"

    [[listener]]
    name = "web"
    service = "http"
    port = 0
    options = { body = "hi\\n", status = 200 }
    ''')


def error_of(text: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "f.toml")
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_good_file_parses() -> None:
    scenario = parse_scenario(GOOD, "f.toml")
    assert [(p.name, p.service) for p in scenario.listeners] == [("echo", "echo"), ("web", "http")]
    assert scenario.listeners[1].options == {"body": "hi\n", "status": 200}


@pytest.mark.parametrize(("text", "line", "reason"), [
    ('title = "t"\n[[listener]]\nservice = "echo"\nport = 70000\n', 4, "'port' must be a number from 0"),
    ('title = "t"\n\n[[listener]]\nservice = "nope"\n', 4, "unknown service 'nope'"),
    ('title = "t"\n[[listener]]\nservice = "echo"\n[[listener]]\nservice = "motd"\nopts = 1\n', 6,
     "unknown key 'opts' in a [[listener]]"),
    ('title = "t"\n[[listener]]\nservice = "echo"\n[[listener]]\nservice = "http"\n'
     'options = { body = "x", colour = 1 }\n', 6, "the http service has no option 'colour'"),
    ('title = "t"\n[[listener]]\nservice = "http"\n[listener.options]\nbody = "x"\nstatus = "ok"\n', 6,
     "option 'status' must be a whole number"),
    ('title = "t"\n[[listener]]\nservice = "http"\noptions = { status = 204 }\n', 4, "--status 204"),
    (GOOD.replace('service = "echo"', 'service = "exec"'), 9, "not allowed in a scenario file"),
    ('title = "t"\n[[session]]\nto = "nowhere"\n', 3, "'to' must name a [[listener]]"),
    ('title = "t"\nnotes = """\nhello {ghost.port}\n"""\n', 2, "nothing is named 'ghost'"),
    ('title = "t"\nprobe = ["x"]\n', 2, "'probe' names 'x'"),
    ('title = "t"\n[[port]]\nbehaviour = "reject"\n', 3, "'behaviour' must be"),
    ('notes = "no title"\n', 1, "'title' is missing"),
    ('title = "t"\ncolour = "red"\n', 2, "unknown key 'colour' at the top"),
    ('title = "t"\n[[listener]]\nservice = "echo"\nport = \n', 4, "bad TOML"),
    # no `name` key to point at: the duplicate's [[listener]] header
    ('title = "t"\n[[listener]]\nservice = "echo"\n[[listener]]\nservice = "echo"\n', 4,
     "the name 'echo' is used twice"),
    ('title = "t"\n[[session]]\nhost = "127.0.0.1"\nsend = "\\\\q"\n', 3, "needs 'to'"),
    ('title = "t"\n[[session]]\nhost = "127.0.0.1"\nport = 7\nsend = \'\\q\'\n', 5, "'send': unknown escape"),
])
def test_a_mistake_names_its_line_and_reason(text: str, line: int, reason: str) -> None:
    message = error_of(text)
    assert message.startswith(f"scenario f.toml: line {line}: "), message
    assert reason in message, message


def test_every_builtin_parses_and_has_notes() -> None:
    names = builtin_names()
    assert {"lesson", "web-servers", "refused-vs-dropped", "half-close"} <= set(names)
    for name in names:
        scenario = load_scenario(name)
        assert scenario.title and scenario.notes and scenario.description
        assert scenario.source == f"builtin:{name}"


def test_unknown_name_and_missing_file_are_one_line() -> None:
    with pytest.raises(ScenarioError, match="built-in: .*lesson"):
        load_scenario("no-such-lesson")
    with pytest.raises(ScenarioError, match=r"scenario /nonexistent/x.toml: cannot read it"):
        load_scenario("/nonexistent/x.toml")


def test_cli_reports_a_bad_file_with_exit_2_before_the_ui(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('title = "t"\n\n[[listener]]\nservice = "echo"\nport = "seven"\n')
    out = subprocess.run([sys.executable, "-m", "tcpbench", "--scenario", str(bad)],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    assert out.stderr.strip() == (f"tcpbench: scenario {bad}: line 5: 'port' must be a number from 0 "
                                  "to 65535 (0: any free port), not 'seven'")
    assert out.stdout == ""


def test_cli_lists_and_prints_the_builtins() -> None:
    out = subprocess.run([sys.executable, "-m", "tcpbench", "scenarios"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    for name in builtin_names():
        assert any(line.startswith(name + " ") for line in out.stdout.splitlines()), out.stdout
    shown = subprocess.run([sys.executable, "-m", "tcpbench", "scenarios", "web-servers"],
                           capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0
    assert parse_scenario(shown.stdout, "copy").title == "Bad web server vs good web server"
    missing = subprocess.run([sys.executable, "-m", "tcpbench", "scenarios", "nope"],
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1


def test_builtin_notes_fit_the_panel_without_wrapping() -> None:
    import re

    from tcpbench.widgets.notes_panel import NOTE_WIDTH

    for name in builtin_names():
        notes = load_scenario(name).notes
        notes = re.sub(r"\{[A-Za-z0-9_-]+\.addr\}", "127.0.0.1:65535", notes)
        notes = re.sub(r"\{[A-Za-z0-9_-]+\.port\}", "65535", notes)
        long = [line for line in notes.splitlines() if len(line) > NOTE_WIDTH]
        assert not long, (name, long)


def test_web_needs_a_real_port_and_checks_the_scenario_first(tmp_path) -> None:
    out = subprocess.run([sys.executable, "-m", "tcpbench", "web", "--port", "0"], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 2 and "needs a real port" in out.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("title = 1\n")
    out = subprocess.run([sys.executable, "-m", "tcpbench", "web", "--scenario", str(bad)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2
    assert out.stderr == f"tcpbench: scenario {bad}: line 1: 'title' must be a non-empty string\n"


def test_ui_record_into_a_used_directory_is_one_line(tmp_path) -> None:
    (tmp_path / "x").write_text("old")
    out = subprocess.run([sys.executable, "-m", "tcpbench", "--record", str(tmp_path)],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode == 2
    assert out.stderr == f"tcpbench: --record: {tmp_path} is not empty; record into a new or empty directory\n"
