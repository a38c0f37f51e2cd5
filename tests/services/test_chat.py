"""The chat room as a pure service: bytes in, effects out."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpbench.services.base import Abort, Close, Note, OptionError, Send
from tcpbench.services.chat import ChatService, clean_text

PEER = ("127.0.0.1", 40000)
LOCAL = ("127.0.0.1", 7000)


def room(n: int = 3, **options) -> ChatService:
    chat = ChatService(**options)
    for s in range(1, n + 1):
        chat.session_opened(s, PEER, LOCAL, 0.0)
    return chat


def sent(effects, session: int) -> bytes:
    return b"".join(e.data for e in effects if isinstance(e, Send) and e.session == session)


def test_lines_go_to_everyone_else_with_the_nick_and_no_echo():
    chat = room(3)
    effects = chat.data_received(1, b"hello\r\n", 1.0)
    assert sent(effects, 2) == b"<user1> hello\n"
    assert sent(effects, 3) == b"<user1> hello\n"
    assert sent(effects, 1) == b""
    notes = [e for e in effects if isinstance(e, Note)]
    assert [n.text for n in notes] == ["<user1> hello"] and notes[0].topic == "chat"


def test_join_welcome_and_announcement():
    chat = ChatService()
    chat.session_opened(1, PEER, LOCAL, 0.0)
    effects = chat.session_opened(2, PEER, LOCAL, 0.0)
    assert b"you are user2" in sent(effects, 2) and b"user1" in sent(effects, 2)
    assert sent(effects, 1) == b"* user2 joined\n"


def test_nick_change_rules():
    chat = room(2)
    effects = chat.data_received(1, b"/nick alice\n", 0.0)
    assert sent(effects, 1) == b"* you are now alice\n"
    assert sent(effects, 2) == b"* user1 is now alice\n"
    assert sent(chat.data_received(2, b"/nick ALICE\n", 0.0), 2).startswith(b"* cannot rename to ALICE: ")
    assert b"taken" in sent(chat.data_received(2, b"/nick operator\n", 0.0), 2)
    bad = sent(chat.data_received(2, b"/nick \x1b[31mevil\n", 0.0), 2)
    assert b"\x1b" not in bad and b"\\e[31mevil" in bad
    assert b"1-16" in sent(chat.data_received(2, b"/nick " + b"x" * 17 + b"\n", 0.0), 2)
    assert sent(chat.data_received(2, b"hi\n", 0.0), 1) == b"<user2> hi\n"
    assert sent(chat.data_received(1, b"yo\n", 0.0), 2) == b"<alice> yo\n"


def test_auto_nicks_skip_taken_names():
    chat = room(1)
    chat.data_received(1, b"/nick user2\n", 0.0)
    effects = chat.session_opened(2, PEER, LOCAL, 0.0)
    assert b"you are user3" in sent(effects, 2)


def test_who_help_unknown_and_literal_slash():
    chat = room(2)
    who = sent(chat.data_received(2, b"/who\n", 0.0), 2)
    assert who == b"* 3 in the room: user1, user2 (you), operator (operator)\n"
    assert b"/nick" in sent(chat.data_received(2, b"/help\n", 0.0), 2)
    assert b"unknown command /frob" in sent(chat.data_received(2, b"/frob\n", 0.0), 2)
    assert sent(chat.data_received(2, b"//etc/passwd\n", 0.0), 1) == b"<user2> /etc/passwd\n"


def test_quit_leaves_and_closes():
    chat = room(2)
    effects = chat.data_received(1, b"/quit\nignored\n", 0.0)
    assert Close(1) in effects
    assert sent(effects, 2) == b"* user1 left\n"
    assert chat.session_closed(1, 0.0) == []  # no second announcement


def test_leave_on_close_and_on_fin_with_a_last_partial_line():
    chat = room(3)
    assert sent(chat.session_closed(3, 0.0), 1) == b"* user3 left\n"
    effects = chat.data_received(2, b"bye without newline", 0.0)
    assert effects == []
    effects = chat.peer_half_closed(2, 0.0)
    assert sent(effects, 1) == b"<user2> bye without newline\n* user2 left\n"
    assert Close(2) in effects


def test_control_characters_are_escaped_utf8_kept():
    chat = room(2)
    line = "\x1b]52;c;aGk=\x07 \u202eevil привет \x9b".encode() + b"\xff\x00\n"
    out = sent(chat.data_received(1, line, 0.0), 2)
    assert out == "<user1> \\e]52;c;aGk=\\x07 \\u202eevil привет \\x9b\\xff\\0\n".encode()
    assert clean_text(b"plain [b]markup[/b] \\ ok") == "plain [b]markup[/b] \\ ok"


def test_long_lines_are_cut_and_say_so():
    chat = room(2, max_line=16)
    out = sent(chat.data_received(1, b"a" * 40 + b"\nnext\n", 0.0), 2)
    assert out == b"<user1> " + b"a" * 16 + b" [cut: longer than 16 bytes]\n<user1> next\n"
    exact = sent(chat.data_received(1, b"b" * 16 + b"\r\n", 0.0), 2)
    assert exact == b"<user1> " + b"b" * 16 + b"\n"
    assert len(chat.members[1].buffer) == 0


def test_partial_line_buffer_is_bounded():
    chat = room(2, max_line=64)
    for _ in range(1000):
        chat.data_received(1, b"z" * 1000, 0.0)
        assert len(chat.members[1].buffer) <= 64 + 1 + 1000


def test_operator_speaks_and_sees():
    chat = room(2, nick="boss")
    effects = chat.operator_input(b"hello all\n", 0.0)
    assert sent(effects, 1) == sent(effects, 2) == b"<boss> hello all\n"
    assert [n.text for n in effects if isinstance(n, Note)] == ["<boss> hello all"]


def test_slow_reader_is_dropped_with_an_announcement():
    chat = room(3)
    effects = chat.backlog_exceeded(2, 0.0)
    assert isinstance(effects[0], Abort) and effects[0].session == 2
    assert sent(effects, 1).startswith(b"* user2 was disconnected: did not read fast enough")
    assert sent(effects, 2) == b""
    assert chat.session_closed(2, 0.0) == []
    assert sent(chat.data_received(1, b"still here\n", 0.0), 3) == b"<user1> still here\n"
    assert chat.data_received(2, b"late bytes\n", 0.0) == []


def test_bad_options_are_one_line_errors():
    with pytest.raises(OptionError, match="nick"):
        ChatService(nick="bad nick")
    with pytest.raises(OptionError, match="max-line"):
        ChatService(max_line=1)
    with pytest.raises(OptionError, match="backlog"):
        ChatService(backlog=10)


TRANSCRIPT = (b"hello\r\n/nick bob\n" + b"x" * 3000 + b"\r\nnext\n\x1b[2Jclear?\n/who\n"
              + b"y" * 1025 + b"\n" + b"z" * 1024 + b"\r\n/me waves\nend")


def _feed(chunks: list[bytes]):
    chat = room(3)
    effects = []
    for chunk in chunks:
        effects += chat.data_received(1, chunk, 0.0)
    effects += chat.peer_half_closed(1, 0.0)
    return effects


def _outcome(effects):
    """What the peers and the operator see: each session's byte stream, and the other effects in order.

    A burst is gathered into one send per receiver, so how the bytes are split
    into sends depends on the chunking; the streams and the rest must not."""
    streams: dict[int, bytes] = {}
    others = []
    for effect in effects:
        if isinstance(effect, Send):
            streams[effect.session] = streams.get(effect.session, b"") + effect.data
        else:
            others.append(effect)
    return streams, others


def test_chunking_equivalence():
    whole = _outcome(_feed([TRANSCRIPT]))
    assert _outcome(_feed([TRANSCRIPT[i:i + 1] for i in range(len(TRANSCRIPT))])) == whole
    rng = random.Random(7)
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(TRANSCRIPT)), rng.randint(1, 40)))
        pieces = [TRANSCRIPT[a:b] for a, b in zip([0] + cuts, cuts + [len(TRANSCRIPT)])]
        assert _outcome(_feed(pieces)) == whole


def test_a_burst_of_lines_is_one_send_per_receiver():
    chat = room(4)
    burst = b"".join(b"line %d\n" % i for i in range(100))
    effects = chat.data_received(1, burst, 0.0)
    sends = [e for e in effects if isinstance(e, Send)]
    assert sorted(e.session for e in sends) == [2, 3, 4]
    expected = b"".join(b"<user1> line %d\n" % i for i in range(100))
    assert all(e.data == expected for e in sends)
    assert sends[0].data is sends[1].data  # receivers who got the same bytes share one object
    assert len([e for e in effects if isinstance(e, Note)]) == 100


def test_replies_and_closes_keep_their_order_inside_a_burst():
    chat = room(3)
    effects = chat.data_received(1, b"hi\n/nick bob\n/who\nbye all\n/quit\nafter\n", 0.0)
    assert sent(effects, 1) == (b"* you are now bob\n* 4 in the room: bob (you), user2, user3, "
                                b"operator (operator)\n* bye\n")
    assert sent(effects, 2) == b"<user1> hi\n* user1 is now bob\n<bob> bye all\n* bob left\n"
    close_at = effects.index(Close(1))
    assert all(not (isinstance(e, Send) and e.session == 1) for e in effects[close_at:])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20), st.integers(min_value=16, max_value=200))
def test_arbitrary_bytes_never_raise_and_never_leak_control_bytes(chunks, max_line):
    chat = room(3, max_line=max_line)
    effects = []
    for chunk in chunks:
        effects += chat.data_received(2, chunk, 0.0)
        effects += chat.operator_input(chunk, 0.0)
    effects += chat.peer_half_closed(2, 0.0)
    for effect in effects:
        if isinstance(effect, Send):
            text = effect.data.decode("utf-8")
            assert text.endswith("\n")
            for line in text[:-1].split("\n"):
                assert all(ch.isprintable() for ch in line), text
        elif isinstance(effect, Note):
            assert effect.text.isprintable()
    for member in chat.members.values():
        assert len(member.buffer) <= max_line + 1


def test_welcome_lists_who_else_is_in_the_room_in_plain_words():
    chat = ChatService()
    first = sent(chat.session_opened(1, PEER, LOCAL, 0.0), 1)
    assert first == (b"* welcome, you are user1; also in the room: operator (the operator). "
                     b"/help lists commands\n")
    second = sent(chat.session_opened(2, PEER, LOCAL, 0.0), 2)
    assert b"also in the room: user1, operator (the operator)." in second
