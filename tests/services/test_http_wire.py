"""The two parsers answer alike: llhttp's leniencies and strictness never show.

`--parser httptools` takes a fast path for ordinary requests and hands the rest
to h11 (tcpbench/services/http_wire_llhttp.py). Here: each case where llhttp
alone would decide differently from h11, the fast path really being taken for
what clients send, and a differential fuzz (near-HTTP transcripts, random
splits, FIN, ticks: both parsers give the very same effects).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings, strategies as st

from tcpbench.services import http_wire_llhttp
from tcpbench.services.base import Close, Note, OptionError, Send
from tcpbench.services.http import HttpService, wire_class
from tcpbench.services.http_wire_h11 import H11Wire
from tcpbench.services.http_wire_llhttp import LlhttpWire

S = 3
WIRES = ("httptools", "h11")


def run(parser: str, chunks: list[bytes], fin: bool = True, tick: bool = True, **options) -> list:
    service = HttpService(parser=parser, body="x", **options)
    effects = service.session_opened(S, ("127.0.0.1", 1), ("127.0.0.1", 2), 0.0)
    for chunk in chunks:
        effects += service.data_received(S, chunk, 0.0)
    if fin:
        effects += service.peer_half_closed(S, 0.0)
    return effects + service.tick(100.0) if tick else effects


def both(chunks: list[bytes], fin: bool = True, tick: bool = True, **options) -> list:
    """The effects, asserted equal for both parsers."""
    fast, reference = (run(parser, chunks, fin, tick, **options) for parser in WIRES)
    assert fast == reference
    return reference


def summary(effects: list) -> list:
    """(status, path) per answer, then 'close' if the connection ends."""
    out: list = [(dict(e.fields)["status"], dict(e.fields)["path"]) for e in effects if isinstance(e, Note)]
    return out + ["close"] * any(isinstance(e, Close) for e in effects)


GET2 = b"GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"

# (what, request bytes, the answers): llhttp alone would decide each of these differently.
CASES = [
    # llhttp accepts, h11 refuses: refused for both.
    ("two spaces in the request line", b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", [(400, "-"), "close"]),
    ("a request line without a version", b"GET /HTTP/1.1\r\nHost: x\r\n\r\n", [(400, "-"), "close"]),
    ("HTTP/0.9", b"GET /\r\n\r\n", [(400, "-"), "close"]),
    ("an empty line before the request", b"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", [(400, "-"), "close"]),
    ("no Host on HTTP/1.1", b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", [(400, "-"), "close"]),
    ("two Host headers", b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", [(400, "-"), "close"]),
    ("a coding before chunked", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
     b"0\r\n\r\n", [(501, "-"), "close"]),
    ("an empty coding before chunked", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,chunked\r\n\r\n"
     b"0\r\n\r\n", [(501, "-"), "close"]),
    ("Content-Length of 21 digits", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 000000000000000000001"
     b"\r\n\r\nx", [(400, "-"), "close"]),
    # Both llhttp and h11 would take these; we refuse them for both (request smuggling).
    ("Content-Length and chunked", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + GET2, [(400, "-"), "close"]),
    ("chunked and Content-Length", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
     b"Content-Length: 3\r\n\r\n0\r\n\r\n" + GET2, [(400, "-"), "close"]),
    # llhttp refuses, h11 accepts: accepted for both, and the connection goes on.
    ("a lower-case method", b"get / HTTP/1.1\r\nHost: x\r\n\r\n" + GET2, [(200, "/"), (200, "/2")]),
    ("an unknown method", b"FROB / HTTP/1.1\r\nHost: x\r\n\r\n" + GET2, [(200, "/"), (200, "/2")]),
    ("HTTP/1.2", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n" + GET2, [(200, "/"), (200, "/2")]),
    ("HTTP/2.0 in HTTP/1 syntax", b"GET / HTTP/2.0\r\nHost: x\r\n\r\n" + GET2, [(200, "/"), (200, "/2")]),
    ("bare LF line ends", b"GET / HTTP/1.1\nHost: x\n\n" + GET2, [(200, "/"), (200, "/2")]),
    ("an obs-folded header", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n" + GET2,
     [(200, "/"), (200, "/2")]),
    ("a control byte in a value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\x012\r\n\r\n" + GET2,
     [(200, "/"), (200, "/2")]),
    ("a repeated equal Content-Length", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
     b"Content-Length: 1\r\n\r\nx" + GET2, [(200, "/"), (200, "/2")]),
    ("a Content-Length list", b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\nx" + GET2,
     [(200, "/"), (200, "/2")]),
    ("a chunked body", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"3;ext\r\nabc\r\n0\r\nTrailer: t\r\n\r\n" + GET2, [(200, "/"), (200, "/2")]),
    # Upgrade: llhttp stops parsing; h11 answers it as a plain request and reads on.
    ("a websocket upgrade", b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
     b"\r\n" + GET2, [(200, "/"), (200, "/2")]),
    ("an h2c upgrade", b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
     b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n" + GET2, [(200, "/"), (200, "/2")]),
    # CONNECT: h11 would switch to a tunnel (and the old service crashed); answered, then closed.
    ("CONNECT", b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n" + GET2,
     [(200, "example.com:443"), "close"]),
    # HTTP/1.0 closes even when it asks for keep-alive (llhttp would keep it): h11's rule.
    ("HTTP/1.0 keep-alive", b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + GET2, [(200, "/"), "close"]),
]


@pytest.mark.parametrize("what, data, expected", CASES, ids=[c[0] for c in CASES])
def test_where_llhttp_alone_would_differ_both_parsers_answer_as_h11(what, data, expected) -> None:
    effects = both([data], fin=False, tick=False)
    assert summary(effects) == expected
    if "close" in expected:
        assert isinstance(effects[-1], Close)


def test_the_connect_answer_says_connection_close() -> None:
    data = b"".join(e.data for e in both([CASES[-2][1]], fin=False, tick=False) if isinstance(e, Send))
    assert b"\r\nConnection: close\r\n\r\nx" in data and data.count(b"HTTP/1.1 ") == 1


def test_refusals_give_h11s_reasons() -> None:
    notes = {what: next(e.text for e in both([data], fin=False, tick=False) if isinstance(e, Note))
             for what, data, _ in CASES}
    assert notes["two Host headers"].endswith("(Found multiple Host: headers)")
    assert notes["Content-Length and chunked"].endswith(
        "(both Content-Length and Transfer-Encoding (refused: request smuggling))")
    assert notes["a coding before chunked"].endswith("(Only Transfer-Encoding: chunked is supported)")
    assert "illegal request line: 'GET  / HTTP/1.1'" in notes["two spaces in the request line"]


@pytest.mark.parametrize("data, status", [
    (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 600, 431),  # an incomplete head over --max-head
    (b"GET / HTTP/1.1\r\nHost: x\r\n", 400),  # FIN inside the head
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab", 400),  # FIN inside the body
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", 400),
    (b"\x16\x03\x01\x00", 400),  # TLS: refused at the first byte
])
def test_incomplete_requests_get_the_same_error(data, status) -> None:
    effects = both([data], max_head=512)
    assert summary(effects)[0][0] == status and isinstance(effects[-1], Close)


def test_max_head_bounds_the_buffer_of_an_incomplete_head_as_in_h11() -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 600 + b"\r\n\r\n"
    assert summary(both([head], max_head=512))[0][0] == 200  # arrived whole: h11 takes it
    assert summary(both([head[:400], head[400:]], max_head=512))[0][0] == 200
    assert summary(both([head[:520], head[520:]], max_head=512))[0][0] == 431


WRK = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
CURL = b"GET /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"
BROWSER = (b"GET /?run=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: keep-alive\r\n"
           b"sec-ch-ua: \"Chromium\";v=\"120\", \"Not?A_Brand\";v=\"8\"\r\nUpgrade-Insecure-Requests: 1\r\n"
           b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)\r\n"
           b"Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\nAccept-Encoding: gzip, deflate, br\r\n\r\n")
POSTED = b"POST /f HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"
HTTP10 = b"GET / HTTP/1.0\r\nUser-Agent: ApacheBench/2.3\r\n\r\n"
CONTINUED = b"PUT / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nz"


@pytest.mark.parametrize("data", [WRK, CURL, BROWSER, POSTED, HTTP10, CONTINUED])
def test_what_clients_send_takes_the_fast_path(data, monkeypatch) -> None:
    handed = []
    monkeypatch.setattr(http_wire_llhttp, "H11Wire", lambda max_head: handed.append(1) or H11Wire(max_head))
    effects = run("httptools", [data * 3], fin=False, tick=False)
    assert not handed, "an ordinary request was handed to h11"
    answers = [a for a in summary(effects) if a != "close"]
    assert [status for status, _ in answers] == [200] * (1 if data is HTTP10 else 3)
    assert effects == run("h11", [data * 3], fin=False, tick=False)


def test_the_parser_option() -> None:
    assert wire_class("auto") is LlhttpWire and wire_class("httptools") is LlhttpWire
    assert wire_class("h11") is H11Wire
    assert HttpService(parser="h11").wire_class is H11Wire
    with pytest.raises(OptionError, match="--parser"):
        HttpService(parser="fast")


def test_a_bad_extra_header_value_is_an_option_error_for_both() -> None:
    for parser in WIRES:
        with pytest.raises(OptionError, match="--header"):
            HttpService(parser=parser, header=["X-A: a\x00b"])


# --- differential fuzz ---------------------------------------------------------------------

METHODS = [b"GET", b"HEAD", b"POST", b"PUT", b"get", b"FROB", b"CONNECT", b"OPTIONS", b""]
TARGETS = [b"/", b"/a?b=c", b"*", b"http://h/p", b"/%2e", b"/\xff", b"/a b", b""]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.2", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1", b"http/1.1", b""]
HEADERS = [b"Host: x", b"Host:x", b"Host: x ", b"Host:", b"host: y", b"Content-Length: 0",
           b"Content-Length: 3", b"Content-Length: 1, 1", b"Content-Length: x", b"Content-Length: -1",
           b"Content-Length:  2 ", b"Transfer-Encoding: chunked", b"Transfer-Encoding: Chunked ",
           b"Transfer-Encoding: gzip", b"Connection: close", b"Connection: keep-alive, Close",
           b"Connection: upgrade", b"Upgrade: websocket", b"Expect: 100-continue", b"Expect: 100-CONTINUE, x",
           b"X-A: a\x01b", b"X-A: \x80\xff", b"X-A:\ta b\t", b" folded", b"\tfolded", b"Bad Name: 1",
           b"X-A : 1", b": empty", b"X-A: a\rb", b"X-A: a\x00b", b"X-A: a\x0bb", b"NoColon"]
EOLS = [b"\r\n"] * 6 + [b"\n", b"\r", b"\r\r\n", b""]
BODIES = [b"", b"abc", b"ab", b"abcd", b"3\r\nabc\r\n0\r\n\r\n", b"0\r\n\r\n", b"3\r\nabc\r\n0\r\nT: v\r\n\r\n",
          b"3\r\nab", b"zz\r\n", b"1;ext=1\r\nq\r\n0\r\n\r\n", b"1\r\nq\rx"]


@st.composite
def near_http(draw) -> bytes:
    requests = []
    for _ in range(draw(st.integers(1, 3))):
        eol = lambda: draw(st.sampled_from(EOLS))  # noqa: E731
        line = draw(st.sampled_from(METHODS)) + b" " * draw(st.sampled_from([1, 1, 1, 2, 0]))
        line += draw(st.sampled_from(TARGETS)) + b" " + draw(st.sampled_from(VERSIONS))
        headers = draw(st.lists(st.sampled_from(HEADERS), max_size=5))
        request = line + eol() + b"".join(h + eol() for h in headers) + eol()
        requests.append(request + draw(st.sampled_from(BODIES)))
    return b"".join(requests)


def splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = [0, *sorted({c % (len(data) + 1) for c in cuts}), len(data)]
    return [data[a:b] for a, b in zip(points, points[1:]) if b > a]


@settings(max_examples=1500, deadline=None)
@given(near_http(), st.lists(st.integers(0, 10_000), max_size=6), st.booleans())
def test_near_http_transcripts_give_the_same_effects_for_both_parsers(data, cuts, fin) -> None:
    both(splits(data, cuts), fin)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=6), st.booleans())
def test_arbitrary_bytes_give_the_same_effects_for_both_parsers(chunks, fin) -> None:
    both(chunks, fin, max_head=256)


def test_byte_by_byte_and_one_chunk_agree_for_both_parsers() -> None:
    rng = random.Random(7)
    data = (WRK + POSTED + GET2 + b"POST / HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n" + BROWSER + HTTP10)
    whole = both([data])
    assert both([bytes([b]) for b in data]) == whole
    for _ in range(20):
        assert both(splits(data, [rng.randrange(len(data)) for _ in range(5)])) == whole


def test_a_read_full_of_pipelined_requests_is_answered_whole() -> None:
    data = (WRK + POSTED + CONTINUED) * 300  # one 60 KiB read
    effects = both([data], fin=False, tick=False)
    assert [status for status, _ in summary(effects)] == [200] * 900
