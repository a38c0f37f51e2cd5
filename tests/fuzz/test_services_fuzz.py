"""Fuzzing the other services: chat (a room of several sessions), motd, echo, fuzz, raw, and their options.

Chat, for any interleaving of joins, lines (any bytes), FINs, closes, slow
readers and operator input: effects well formed, sends go only to members of
the room, every line a client receives is printable text ending in a newline
(control and format characters escaped), buffers stay bounded, and a session's
byte stream cut any way gives the same streams to everyone.

Options, for any strings a person types: the service is built, or the one-line
`OptionError` says why; never another exception.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, strategies as st

from tcpbench.engine.registry import build_service
from tcpbench.services.base import Close, OptionError, Send
from tcpbench.services.chat import ChatService
from tcpbench.services.echo import EchoService
from tcpbench.services.fuzz import head_complete
from tcpbench.services.motd import MotdService
from tcpbench.services.raw import RawService
from tests.fuzz.budget import count, fuzz_settings, size
from tests.fuzz.effects import check_well_formed, split_at

PEER = ("127.0.0.1", 5555)
LOCAL = ("127.0.0.1", 7000)
CHAT_PIECES = [b"\n", b"\r\n", b"/nick ", b"/nick bob\n", b"/who\n", b"/me ", b"/quit\n", b"/help\n", b"//",
               b"/", b"bob", b"user1", b"operator", b"\x1b]52;c;x\x07", b"\xe2\x80\xae", b"\xff", b"\x00",
               b"[@click=app.quit]", b"hello", b"\xc3\xa9"]
chat_bytes = st.lists(st.sampled_from(CHAT_PIECES) | st.binary(max_size=40), max_size=30).map(b"".join)


def check_chat(chat: ChatService, effects: list, live: set[int], max_line: int) -> None:
    check_well_formed(effects, live, ascii_notes=False)
    for effect in effects:
        if isinstance(effect, Send):
            text = effect.data.decode("utf-8")  # never invalid UTF-8 on the wire
            assert text.endswith("\n")
            assert all(line.isprintable() for line in text[:-1].split("\n")), text
    for member in chat.members.values():
        assert len(member.buffer) <= max_line + 1


def run_room(ops: list[tuple], max_line: int = 64) -> dict[int, bytes]:
    """Apply (op, session, data) steps to a room; return what each session received."""
    chat = ChatService(max_line=max_line, backlog=1024)
    live: set[int] = set()
    received: dict[int, bytes] = {}
    next_id = 1
    for op, pick, data in ops:
        session = sorted(live)[pick % len(live)] if live else None
        if op == "join" or session is None:
            session, next_id = next_id, next_id + 1
            live.add(session)
            effects = chat.session_opened(session, PEER, LOCAL, 0.0)
        elif op == "data":
            effects = chat.data_received(session, data, 0.0) if data else []
        elif op == "fin":
            effects = chat.peer_half_closed(session, 0.0)
        elif op == "closed":
            live.discard(session)
            effects = chat.session_closed(session, 0.0)
        elif op == "slow":
            effects = chat.backlog_exceeded(session, 0.0)
        else:
            effects = chat.operator_input(data, 0.0)
        check_chat(chat, effects, live, max_line)
        for effect in effects:
            if isinstance(effect, Send):
                received[effect.session] = received.get(effect.session, b"") + effect.data
            elif isinstance(effect, Close):
                pass  # the engine would close it; bytes may still arrive before: keep it live
    return received


ops = st.lists(st.tuples(st.sampled_from(["join", "data", "data", "data", "fin", "closed", "slow", "op"]),
                         st.integers(0, 7), chat_bytes), max_size=25)


@fuzz_settings(normal=150, long=6000)
@given(ops, st.integers(16, 128))
def test_chat_room_any_interleaving(steps, max_line) -> None:
    count("chat")
    run_room(steps, max_line)


@fuzz_settings(normal=150, long=6000)
@given(chat_bytes, st.lists(st.integers(1, 2000), max_size=8))
def test_chat_one_chunk_byte_by_byte_and_random_splits_agree(data, cuts) -> None:
    count("chat", 3)

    def streams(chunks: list[bytes]) -> dict[int, bytes]:
        steps = [("join", 0, b""), ("join", 0, b""), ("join", 0, b"")]
        steps += [("data", 0, chunk) for chunk in chunks] + [("fin", 0, b"")]
        return run_room(steps)

    whole = streams([data])
    assert streams(split_at(data, cuts)) == whole
    assert streams([data[i:i + 1] for i in range(len(data))]) == whole


def test_chat_seeded_random_bytes() -> None:
    rng = random.Random(11)
    for _ in range(size(60, 3000)):
        count("chat")
        steps = [(rng.choice(["join", "data", "data", "fin", "closed", "slow", "op"]), rng.randrange(8),
                  rng.randbytes(rng.randrange(0, 200))) for _ in range(rng.randrange(1, 30))]
        run_room(steps, rng.randrange(16, 200))


@fuzz_settings(normal=200, long=6000)
@given(st.binary(max_size=300), st.lists(st.integers(1, 300), max_size=5))
def test_echo_motd_raw_and_fuzz_heads_take_any_bytes(data, cuts) -> None:
    count("services", 4)
    echo = EchoService()
    sent = b""
    for chunk in split_at(data, cuts):
        effects = echo.data_received(1, chunk, 0.0)
        check_well_formed(effects, {1})
        sent += b"".join(e.data for e in effects)
    assert sent == data
    for service in (MotdService(), MotdService(keep_open=True), RawService()):
        effects = service.session_opened(1, PEER, LOCAL, 0.0)
        for chunk in split_at(data, cuts):
            effects += service.data_received(1, chunk, 0.0)
        effects += service.operator_input(data, 0.0) if data else []
        effects += service.peer_half_closed(1, 0.0)
        check_well_formed(effects, {1})
    assert isinstance(head_complete(data), bool)


option_text = st.text(max_size=20) | st.sampled_from(["", "0", "-1", "1e309", "nan", "\\", "\\x", "\\xZZ",
                                                      "a:b", "X: \r\n", "Content-Length: 1", "\ud800",
                                                      "\udcff", "/nonexistent/file", "\n", "a\nb"])
OPTIONS = {
    "motd": ["message", "message_file"],
    "chat": ["nick"],
    "http": ["body", "content_type", "header", "dir", "parser"],
    "fuzz": ["mode", "content_type"],
    "relay": ["to"],
}


@fuzz_settings(normal=200, long=6000)
@given(st.sampled_from(sorted(OPTIONS)), st.data())
def test_service_options_build_or_say_why_in_one_line(name, data) -> None:
    count("options")
    options = {}
    for option in OPTIONS[name]:
        if data.draw(st.booleans()):
            value = data.draw(option_text)
            options[option] = [value] if option == "header" else value
    if name == "fuzz":
        options["seed"] = 1
    if name == "relay" and "to" not in options:
        options["to"] = "127.0.0.1:9"
    try:
        build_service(name, options)
    except OptionError as exc:
        assert str(exc) and "\n" not in str(exc), repr(str(exc))


@pytest.mark.parametrize("kwargs", [{"max_line": 16}, {"max_line": 1024}])
def test_chat_lines_at_the_limit_with_crlf(kwargs) -> None:
    """A line of exactly max_line bytes + CRLF, cut between CR and LF, is not cut."""
    line = b"a" * kwargs["max_line"]
    whole = run_room([("join", 0, b""), ("join", 0, b""), ("data", 0, line + b"\r\n")], kwargs["max_line"])
    split = run_room([("join", 0, b""), ("join", 0, b""), ("data", 0, line + b"\r"), ("data", 0, b"\n")],
                     kwargs["max_line"])
    assert whole == split and b"[cut" not in whole[2]
