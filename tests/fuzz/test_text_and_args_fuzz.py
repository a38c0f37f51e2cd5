"""Fuzzing what turns text into bytes and back, and every parser of what a person types.

- escape_bytes / escape_text: printable ASCII, one character per cell, for any
  input; escape_bytes is lossless (unescape_bytes reverses it), and so is
  escape_text for every str that has UTF-8 bytes (surrogateescape included);
- unescape_bytes (the send bar, --message, --body, probe --send): bytes or
  EscapeError, never another exception;
- --listen / --connect / HOST:PORT (ui_spec), relay --to, PORTS (probe), the
  CLI's port type and the dialogs' port field: a value, or their documented
  error with one line that names the problem; valid input parses back exactly.
"""

from __future__ import annotations

import argparse
import random

import pytest
from hypothesis import given, strategies as st

from tcpbench.cli.args import parse_port
from tcpbench.engine.probe import parse_ports
from tcpbench.engine.relay import parse_target
from tcpbench.safetext import (EscapeError, escape_bytes, escape_note, escape_text, hexdump_row,
                               text_lines, unescape_bytes)
from tcpbench.screens.dialogs import parse_port_text
from tcpbench.services.base import OptionError
from tcpbench.services.chat import clean_text
from tcpbench.services.motd import load_message
from tcpbench.ui_spec import parse_connect, parse_listen
from tcpbench.usage import UsageError
from tests.fuzz.budget import count, fuzz_settings, size
from tests.fuzz.effects import printable_ascii

# Characters people (and pastes) put in fields: ASCII, digits that are not ASCII, lone surrogates.
ODD = "0123456789:[]-,. \\xneE%/@_aZ\x00\x1b\u00b2\u0661\uff11\u202e\ud800\udcff\U0001f600"
typed = st.text(alphabet=st.sampled_from(ODD) | st.characters(), max_size=24)


def one_line(message: str) -> bool:
    return bool(message) and "\n" not in message and "\r" not in message


@fuzz_settings(normal=300, long=15000)
@given(st.binary(max_size=256))
def test_escape_bytes_is_printable_and_lossless(data) -> None:
    count("escape")
    text = escape_bytes(data)
    assert printable_ascii(text) or text == ""
    assert unescape_bytes(text) == data
    for line in text_lines(data, max_line=17):
        assert printable_ascii(line)
    assert printable_ascii(hexdump_row(0, data[:16]))


@fuzz_settings(normal=300, long=15000)
@given(st.text(max_size=64) | typed)
def test_escape_text_is_printable_for_any_str_and_lossless_where_it_has_bytes(text) -> None:
    count("escape")
    shown = escape_text(text)
    assert printable_ascii(shown) or shown == ""
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return  # a lone surrogate has no bytes: shown as \uXXXX, nothing to be lossless about
    assert unescape_bytes(shown) == raw


@fuzz_settings(normal=300, long=15000)
@given(st.binary(max_size=128), st.text(max_size=32) | typed)
def test_escape_note_is_printable_and_escapes_a_services_escapes_once(line, text) -> None:
    count("escape_note")
    # A chat note holds clean_text of the peer's line: ESC is already the two characters \e,
    # which escape_note keeps as they are (escape_text doubled the backslash).
    chat_note = f"<nick> {clean_text(line)}"
    if chat_note.isascii():
        assert escape_note(chat_note) == chat_note
    for note in (chat_note, text):
        shown = escape_note(note)
        assert printable_ascii(shown) or shown == ""
        if note.isascii() and note.isprintable():
            assert shown == note  # nothing to escape: kept exactly, backslashes too


def test_a_chat_line_with_an_escape_code_is_shown_with_one_backslash() -> None:
    note = "<ann> " + clean_text(b"hi \x1b[31m red")
    assert note == "<ann> hi \\e[31m red"
    assert escape_note(note) == "<ann> hi \\e[31m red"  # escape_text gave "\\\\e"
    assert escape_note("caf\u00e9") == "caf\\xc3\\xa9"


@fuzz_settings(normal=300, long=10000)
@given(typed | st.text(max_size=40))
def test_unescape_gives_bytes_or_an_escape_error(text) -> None:
    count("unescape")
    try:
        data = unescape_bytes(text)
    except EscapeError as exc:
        assert one_line(str(exc))
        return
    assert isinstance(data, bytes)
    # The motd/http options take the same escapes and fail only with OptionError.
    try:
        load_message(text, None)
    except OptionError:
        pytest.fail("unescape_bytes accepted what --message refused")


def test_a_non_utf8_command_line_byte_is_sent_as_that_byte() -> None:
    # Python decodes argv with surrogateescape: `--message $'\xff'` arrives as '\udcff'.
    assert unescape_bytes("a\udcffb\\n") == b"a\xffb\n"
    with pytest.raises(EscapeError, match="surrogate"):
        unescape_bytes("\ud800")
    assert escape_text("\ud800x") == "\\ud800x"


@fuzz_settings(normal=300, long=10000)
@given(typed | st.text(max_size=40))
def test_chat_clean_text_is_printable(text) -> None:
    count("clean_text")
    data = text.encode("utf-8", "surrogatepass")
    assert clean_text(data).isprintable()


# --- what a person types -------------------------------------------------------------------

def _parse_or(error, fn, text):
    try:
        return fn(text)
    except error as exc:
        assert one_line(str(exc)), repr(str(exc))
        return exc


@fuzz_settings(normal=400, long=15000)
@given(typed)
def test_listen_connect_target_and_port_fields(text) -> None:
    count("args", 6)
    listen = _parse_or(UsageError, lambda t: parse_listen(t, {"echo", "http"}), text)
    if not isinstance(listen, Exception):
        assert listen.service in ("echo", "http") and 0 <= listen.port <= 65535 and listen.host
    connect = _parse_or(UsageError, parse_connect, text)
    if not isinstance(connect, Exception):
        assert 1 <= connect.port <= 65535 and connect.host
    target = _parse_or(OptionError, parse_target, text)
    if not isinstance(target, Exception):
        assert 1 <= target[1] <= 65535
    port = _parse_or(argparse.ArgumentTypeError, parse_port, text)
    if not isinstance(port, Exception):
        assert 0 <= port <= 65535 and text == str(port) or text.lstrip("0") == str(port).lstrip("0")
    dialog_port = _parse_or(ValueError, parse_port_text, text)
    if isinstance(dialog_port, ValueError):
        assert "port" in str(dialog_port)
    ports = _parse_or(ValueError, parse_ports, text)
    if isinstance(ports, ValueError):
        assert "port" in str(ports), str(ports)  # names the problem, not Python's own words
    else:
        assert ports and all(1 <= p <= 65535 for p in ports) and len(set(ports)) == len(ports)


hosts = st.sampled_from(["127.0.0.1", "localhost", "example.org", "10.0.0.1"])
v6 = st.sampled_from(["::1", "fe80::1", "2001:db8::5"])


@fuzz_settings(normal=200, long=8000)
@given(st.sampled_from(["echo", "http"]), hosts | v6, st.integers(0, 65535))
def test_valid_addresses_parse_back_exactly(service, host, port) -> None:
    count("args")
    written = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    assert parse_listen(f"{service}:{written}", {"echo", "http"}) == \
        type(parse_listen("echo:1"))(service, host, port)
    if port:
        spec = parse_connect(written)
        assert (spec.host, spec.port) == (host, port)
        assert parse_target(written) == (host, port)
    assert parse_port(str(port)) == port


@fuzz_settings(normal=200, long=8000)
@given(st.lists(st.integers(1, 65535) | st.tuples(st.integers(1, 65535), st.integers(0, 40)),
                min_size=1, max_size=8))
def test_valid_port_lists_parse_back(items) -> None:
    count("args")
    text = ",".join(str(i) if isinstance(i, int) else f"{i[0]}-{min(65535, i[0] + i[1])}" for i in items)
    expected: dict[int, None] = {}
    for i in items:
        low, high = (i, i) if isinstance(i, int) else (i[0], min(65535, i[0] + i[1]))
        for p in range(low, high + 1):
            expected.setdefault(p)
    assert parse_ports(text) == list(expected)


@pytest.mark.parametrize("seed", [3])
def test_seeded_random_strings(seed) -> None:
    rng = random.Random(seed)
    for _ in range(size(2000, 20000)):
        text = "".join(rng.choice(ODD) for _ in range(rng.randrange(0, 14)))
        count("args", 7)
        _parse_or(UsageError, lambda t: parse_listen(t, {"echo"}), text)
        _parse_or(UsageError, parse_connect, text)
        _parse_or(OptionError, parse_target, text)
        _parse_or(argparse.ArgumentTypeError, parse_port, text)
        _parse_or(ValueError, parse_port_text, text)
        _parse_or(ValueError, parse_ports, text)
        _parse_or(EscapeError, unescape_bytes, text)
        assert printable_ascii(escape_text(text)) or text == ""


@pytest.mark.parametrize("text", ["\u00b2", "\u0661\u0662", "\uff11", "8_0", "+80"])
def test_ports_are_ascii_digits_only(text) -> None:
    """str.isdigit() takes '²' (int() then raised a bare ValueError: a traceback for
    `--listen echo:²`), and int() reads '١٢' as 12 and '8_0' as 80: every port field
    says no the same way. (Surrounding blanks are stripped by the UI fields, as before.)"""
    with pytest.raises(UsageError, match="not a number"):
        parse_listen(f"echo:{text}")
    with pytest.raises(UsageError, match="not a number"):
        parse_connect(f"127.0.0.1:{text}")
    with pytest.raises(argparse.ArgumentTypeError, match="not a number"):
        parse_port(text)
    with pytest.raises(OptionError, match="not a number"):
        parse_target(f"127.0.0.1:{text}")
    with pytest.raises(ValueError, match="not a number from 0"):
        parse_port_text(text)
    with pytest.raises(ValueError, match="bad port|unknown service name"):
        parse_ports(text)


def test_a_nul_in_a_port_range_is_a_bad_port_not_a_python_message() -> None:
    with pytest.raises(ValueError, match="bad port"):
        parse_ports("a\x00-b")
