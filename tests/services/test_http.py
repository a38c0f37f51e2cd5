"""The http service as h11 tests itself: bytes in, effects out, no sockets.

Every test runs once per parser (`--parser httptools` and `--parser h11`): the
answers must not depend on which one reads the requests.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from tcpbench.services.base import Abort, Close, Note, OptionError, Send
from tcpbench.services.http import HttpService

WIRES = ("httptools", "h11")
PARSER = WIRES[0]
S = 7
PEER = ("127.0.0.1", 5555)
LOCAL = ("127.0.0.1", 8080)
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(autouse=True, scope="module", params=WIRES)
def parser(request):
    """Run the module once per parser (module scope: hypothesis tests may use it)."""
    global PARSER
    PARSER = request.param
    yield request.param
    PARSER = WIRES[0]


def http(**options) -> HttpService:
    return HttpService(parser=PARSER, **options)


def opened(service: HttpService, session: int = S, now: float = 0.0) -> list:
    return service.session_opened(session, PEER, LOCAL, now)


def feed(service: HttpService, chunks: list[bytes], now: float = 0.0) -> list:
    effects: list = []
    for chunk in chunks:
        effects += service.data_received(S, chunk, now)
    return effects


def sent(effects: list) -> bytes:
    return b"".join(e.data for e in effects if isinstance(e, Send))


def responses(data: bytes, head_only: tuple[int, ...] = ()) -> list[tuple[int, dict, bytes]]:
    """Split a byte stream into (status, headers, body) by Content-Length."""
    out = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        assert sep, data
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        if status < 200:  # 100 Continue: no body, not an answer to count
            data = rest
            continue
        size = 0 if len(out) in head_only else int(headers["content-length"])
        out.append((status, headers, rest[:size]))
        data = rest[size:]
    return out


def parsed(effects: list) -> list[tuple[int, dict, bytes]]:
    """Responses, knowing from the access Notes which answered a HEAD."""
    methods = [dict(e.fields)["method"] for e in effects if isinstance(e, Note)]
    return responses(sent(effects), tuple(i for i, m in enumerate(methods) if m == "HEAD"))


def closes(effects: list) -> int:
    return sum(isinstance(e, Close) for e in effects)


def test_a_get_gets_the_fixed_body_byte_exact() -> None:
    service = http(body="hi\n")
    assert opened(service) == []
    effects = feed(service, [GET])
    assert sent(effects) == (b"HTTP/1.1 200 OK\r\nServer: tcpbench\r\n"
                             b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n\r\nhi\n")
    assert closes(effects) == 0  # keep-alive


def test_options_shape_the_fixed_response() -> None:
    service = http(body="<b>x</b>", status=404, content_type="text/html",
                          header=["X-One: 1", "Cache-Control: no-store"])
    opened(service)
    [(status, headers, body)] = responses(sent(feed(service, [GET])))
    assert (status, body) == (404, b"<b>x</b>")
    assert headers["content-type"] == "text/html"
    assert headers["x-one"] == "1" and headers["cache-control"] == "no-store"


def test_body_takes_escapes_like_motd() -> None:
    service = http(body="a\\tb\\n\\x00")
    opened(service)
    assert responses(sent(feed(service, [GET])))[0][2] == b"a\tb\n\x00"
    with pytest.raises(OptionError, match="--body"):
        http(body="bad\\")


def test_body_file(tmp_path) -> None:
    path = tmp_path / "b.bin"
    path.write_bytes(bytes(range(256)))
    service = http(body_file=str(path))
    opened(service)
    assert responses(sent(feed(service, [GET])))[0][2] == bytes(range(256))


@pytest.mark.parametrize("kwargs, message", [
    ({"body": "a", "body_file": "b"}, "not both"),
    ({"header": ["nocolon"]}, "Name: value"),
    ({"header": ["Content-Length: 5"]}, "itself"),
    ({"header": ["X: a\r\nEvil: 1"]}, "Name: value"),
    ({"status": 204}, "--status"),
    ({"status": 99}, "--status"),
    ({"dir": "/nonexistent/dir"}, "not a directory"),
    ({"body_file": "/nonexistent/file"}, "cannot read"),
    ({"keepalive_timeout": 0}, "positive"),
    ({"max_head": 10}, "--max-head"),
])
def test_bad_options_are_one_line(kwargs, message) -> None:
    with pytest.raises(OptionError, match=message) as info:
        http(**kwargs)
    assert "\n" not in str(info.value)


def test_pipelined_requests_are_answered_in_order_on_one_connection() -> None:
    service = http(body="x")
    opened(service)
    stream = (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
              b"HEAD /b HTTP/1.1\r\nHost: x\r\n\r\n"
              b"POST /c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
              b"GET /d HTTP/1.1\r\nHost: x\r\n\r\n")
    effects = feed(service, [stream])
    answers = responses(sent(effects), head_only=(1,))
    assert [a[0] for a in answers] == [200] * 4
    assert [a[2] for a in answers] == [b"x", b"", b"x", b"x"]
    assert answers[1][1]["content-length"] == "1"  # HEAD tells the length, sends no body
    notes = [dict(e.fields) for e in effects if isinstance(e, Note)]
    assert [(n["method"], n["path"], n["bytes"]) for n in notes] == [
        ("GET", "/a", 1), ("HEAD", "/b", 0), ("POST", "/c", 1), ("GET", "/d", 1)]
    assert all(n["session"] == S and n["status"] == 200 for n in notes)
    assert closes(effects) == 0


def test_a_request_is_answered_only_once_it_was_read_whole() -> None:
    service = http(body="x")
    opened(service)
    assert sent(feed(service, [b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab"])) == b""
    assert responses(sent(feed(service, [b"cd"])))[0][0] == 200


def test_chunked_request_body_and_expect_100_continue() -> None:
    service = http(body="x")
    opened(service)
    effects = feed(service, [b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n"])
    assert sent(effects) == b"HTTP/1.1 100 Continue\r\n\r\n"
    effects = feed(service, [b"3\r\nabc\r\n0\r\n\r\n"])
    assert responses(sent(effects))[0][0] == 200


@pytest.mark.parametrize("request_bytes", [
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
])
def test_http10_and_connection_close_end_with_a_graceful_close(request_bytes) -> None:
    service = http(body="x")
    opened(service)
    effects = feed(service, [request_bytes + GET])  # the pipelined extra request is ignored
    assert len(responses(sent(effects))) == 1
    assert isinstance(effects[-1], Close) and closes(effects) == 1
    assert not [e for e in effects if isinstance(e, Abort)]


@pytest.mark.parametrize("garbage", [b"garbage\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n",
                                     b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(50) + b"\r\n\r\n",
                                     b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n"])
def test_garbage_gets_400_and_a_graceful_close(garbage) -> None:
    service = http()
    opened(service)
    effects = feed(service, [garbage])
    [(status, headers, _)] = responses(sent(effects))
    assert status == 400 and headers["connection"] == "close"
    assert headers["server"] == "tcpbench"  # an error answer names its server as a 200 does
    assert isinstance(effects[-1], Close)
    assert feed(service, [GET]) == []  # nothing more is read after the error


def test_an_oversized_head_gets_431() -> None:
    service = http(max_head=1024)
    opened(service)
    effects = feed(service, [b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 2000])
    assert responses(sent(effects))[0][0] == 431
    assert isinstance(effects[-1], Close)


def test_a_slow_head_gets_408_from_the_tick() -> None:
    service = http(header_timeout=2.0)
    opened(service, now=0.0)
    assert feed(service, [b"GET / HT"], now=1.0) == []
    assert service.tick(2.5) == []
    effects = service.tick(3.0)
    assert responses(sent(effects))[0][0] == 408 and isinstance(effects[-1], Close)
    assert service.tick(10.0) == []


def test_an_idle_keepalive_connection_is_closed_quietly() -> None:
    service = http(keepalive_timeout=5.0)
    opened(service, now=0.0)
    feed(service, [GET], now=1.0)
    assert service.tick(5.9) == []
    assert service.tick(6.0) == [Close(S)]
    assert service.tick(20.0) == []


def test_peer_fin_while_idle_closes_and_mid_request_answers_400() -> None:
    service = http()
    opened(service)
    assert service.peer_half_closed(S, 0.0) == [Close(S)]
    service2 = http()
    opened(service2)
    feed(service2, [b"GET / HTTP/1.1\r\nHo"])
    effects = service2.peer_half_closed(S, 0.0)
    assert responses(sent(effects))[0][0] == 400 and isinstance(effects[-1], Close)


def test_request_then_fin_is_answered_then_closed() -> None:
    service = http(body="x")
    opened(service)
    effects = feed(service, [GET]) + service.peer_half_closed(S, 0.0)
    assert len(responses(sent(effects))) == 1 and effects[-1] == Close(S)


def test_sessions_are_independent_and_forgotten_when_closed() -> None:
    service = http(body="x")
    for session in (1, 2):
        opened(service, session)
    assert service.data_received(1, b"GET / HTTP/1.1\r\nHo", 0.0) == []
    assert responses(sent(service.data_received(2, GET, 0.0)))[0][0] == 200
    service.session_closed(1, 0.0)
    service.session_closed(2, 0.0)
    assert service.sessions == {}


@pytest.mark.parametrize("target, shown", [
    (b"/[@click=app.quit]%1b", "/[@click=app.quit]%1b"),  # accepted: markup stays plain text
    (b"/\x1b]52;c;ZXZpbA==\x07\xff", "\\x1b]52"),  # refused by h11: the reason is escaped
])
def test_access_note_text_is_escaped(target, shown) -> None:
    service = http()
    opened(service)
    effects = feed(service, [b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n"])
    [note] = [e for e in effects if isinstance(e, Note)]
    assert note.topic == "access"
    assert all(0x20 <= ord(c) <= 0x7E for c in note.text), note.text
    assert all(0x20 <= ord(c) <= 0x7E for c in str(dict(note.fields)["path"]))
    assert shown in note.text


def test_naive_mode_answers_at_once_and_resets() -> None:
    service = http(body="a", naive=True)
    effects = opened(service)
    assert [type(e) for e in effects] == [Note, Send, Abort]
    assert effects[1].data.startswith(b"HTTP/1.1 200 OK\r\n") and effects[1].data.endswith(b"\r\n\r\na")
    assert "NAIVE" in service.describe()
    assert http().naive is False


# --- chunking equivalence and arbitrary input ------------------------------------

TRANSCRIPT = (b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
              b"POST /two HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
              b"HEAD /three HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /four HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")


def normalized(effects: list) -> tuple[bytes, list]:
    return sent(effects), [e for e in effects if not isinstance(e, Send)]


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in zip(points, points[1:]) if b > a]


@pytest.mark.parametrize("transcript", [TRANSCRIPT, TRANSCRIPT[:60] + b"\x00garbage\r\n\r\n"])
def test_one_chunk_byte_by_byte_and_random_splits_give_the_same_effects(transcript) -> None:
    def run(chunks: list[bytes]) -> tuple[bytes, list]:
        service = http(body="x")
        opened(service)
        return normalized(feed(service, chunks) + service.peer_half_closed(S, 0.0))

    whole = run([transcript])
    assert run([bytes([b]) for b in transcript]) == whole
    rng = random.Random(1234)
    for _ in range(50):
        cuts = [rng.randrange(1, len(transcript)) for _ in range(rng.randrange(1, 8))]
        assert run(split_at(transcript, cuts)) == whole


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=6), st.booleans())
def test_arbitrary_bytes_give_answers_or_a_peer_error_never_an_exception(chunks, fin) -> None:
    service = http(body="x", max_head=512)
    opened(service)
    effects = feed(service, chunks)
    if fin:
        effects += service.peer_half_closed(S, 0.0)
    effects += service.tick(100.0)
    statuses = [status for status, _, _ in parsed(effects)]
    assert all(status == 200 or 400 <= status < 500 for status in statuses)
    if any(status >= 400 for status in statuses):  # a peer error ends the connection, gracefully
        assert [e for e in effects if not isinstance(e, Note)][-1] == Close(S)
        assert statuses.index(next(s for s in statuses if s >= 400)) == len(statuses) - 1
    assert not [e for e in effects if isinstance(e, Abort)]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_after_a_valid_prefix(tail) -> None:
    service = http(body="x")
    opened(service)
    effects = feed(service, [GET + tail]) + service.peer_half_closed(S, 0.0)
    statuses = [s for s, _, _ in parsed(effects)]
    assert statuses[0] == 200 and all(s == 200 or 400 <= s < 500 for s in statuses)
    assert isinstance(effects[-1], Close)


def test_the_access_note_of_a_bad_request_quotes_the_bytes_without_python_reprs() -> None:
    service = http()
    opened(service)
    [note] = [e for e in feed(service, [b"garbage\r\n\r\n"]) if isinstance(e, Note)]
    assert note.text.endswith("-> 400, 0 bytes, 0.0 ms (illegal request line: 'garbage')"), note.text
    [note] = [e for e in feed_new(b"\x16\x03\x01\r\n\r\n") if isinstance(e, Note)]
    assert "bytearray" not in note.text and "'\\\\x16\\\\x03\\\\x01'" in note.text, note.text


def feed_new(data: bytes) -> list:
    service = http()
    opened(service)
    return feed(service, [data])
