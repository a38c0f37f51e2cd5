"""Fuzzing the http service through both wires (h11, and llhttp with its hand-over to h11).

Properties, for any bytes from the peer, cut any way:
- only the documented outcomes: answers (200 here, or the 4xx h11 suggests) and
  a graceful Close; never an exception, never an Abort;
- the effects are well formed (tests/fuzz/effects.py) and access notes printable ASCII;
- one chunk, byte by byte and random splits give the same effects;
- both parsers give the same bytes and the same notes (llhttp must agree with
  h11, its reference, on everything).
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, strategies as st

from tcpbench.services.base import Abort, Close, Note, Send
from tcpbench.services.http import HttpService
from tests.fuzz.budget import count, fuzz_settings, size
from tests.fuzz.effects import check_well_formed, split_at

S = 7
PIECES = [
    b"GET", b"POST", b"HEAD", b"PUT", b"CONNECT", b"OPTIONS", b"get", b"G\xc3\xa9T", b" ", b"  ", b"/",
    b"/a?b=c", b"*", b"http://x/", b"/%00", b"/\x1b]0;x\x07", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.2",
    b"HTTP/0.9", b"HTTP/2", b"\r\n", b"\r\n\r\n", b"\n", b"\r", b"Host: x", b"Host:", b"Host: a, b",
    b"Content-Length: 3", b"Content-Length: 0", b"Content-Length: -1", b"Content-Length: 3, 3",
    b"Content-Length: 99999999999999999999999", b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: gzip, chunked", b"Transfer-Encoding: identity", b"Connection: close",
    b"Connection: keep-alive", b"Connection: upgrade", b"Expect: 100-continue", b"Upgrade: h2c",
    b"3\r\nabc\r\n0\r\n\r\n", b"3;ext=1\r\nabc\r\n", b"0\r\n\r\n", b"ffffffffffffffffffff\r\n", b"abc",
    b"\x00", b"\xff", b":", b"\t", b" x", b"X-A: \x01", b"X-B:\xe2\x80\xae", b"[@click=app.quit]",
]
TEMPLATE = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def run(parser: str, chunks: list[bytes], fin: bool, later: float = 100.0):
    """Open, feed `chunks`, maybe FIN, then a late tick: (bytes sent, other effects)."""
    service = HttpService(parser=parser, body="x", max_head=512)
    effects = service.session_opened(S, ("127.0.0.1", 1), ("127.0.0.1", 2), 0.0)
    for chunk in chunks:
        if chunk:  # the engine never delivers an empty read (b"" is its FIN, peer_half_closed)
            effects += service.data_received(S, chunk, 0.0)
    if fin:
        effects += service.peer_half_closed(S, 0.0)
    effects += service.tick(later)
    check_well_formed(effects, {S})
    assert not [e for e in effects if isinstance(e, Abort)]
    statuses = [dict(e.fields)["status"] for e in effects if isinstance(e, Note)]
    # 501: h11's hint for a Transfer-Encoding it does not implement (gzip).
    assert all(s == 200 or 400 <= s < 500 or s == 501 for s in statuses), statuses
    if any(s >= 400 for s in statuses):  # a peer error is the last answer, and a close follows
        assert statuses.index(next(s for s in statuses if s >= 400)) == len(statuses) - 1
        assert isinstance([e for e in effects if not isinstance(e, Note)][-1], Close)
    if fin:
        # (Without FIN, a stalled request *body* is left to the engine's idle timeout: its
        # 408 is the harden branch's; a stalled head or idle keep-alive ends at the tick.)
        assert any(isinstance(e, Close) for e in effects)
    data = b"".join(e.data for e in effects if isinstance(e, Send))
    # A note's reason text is h11's, and h11 words it by where the bytes were cut
    # ("no request line received" vs "illegal request line" for a lone CRLF): compare
    # what the note reports, not its wording. The bytes on the wire must be identical.
    return data, [(type(e).__name__, *((dict(e.fields)[k] for k in ("method", "path", "status", "bytes"))
                                       if isinstance(e, Note) else ()))
                  for e in effects if not isinstance(e, Send)]


def check_all_ways(data: bytes, fin: bool, cuts: list[int]) -> None:
    """Both parsers; one chunk, random splits, byte by byte: all the same."""
    reference = run("h11", [data], fin)
    assert run("httptools", [data], fin) == reference
    for parser in ("h11", "httptools"):
        assert run(parser, split_at(data, cuts), fin) == reference
    assert run("httptools", [data[i:i + 1] for i in range(len(data))], fin) == reference
    count("http", 5)


http_tokens = st.lists(st.sampled_from(PIECES) | st.binary(max_size=8), max_size=40).map(b"".join)


@fuzz_settings(normal=150, long=6000)
@given(http_tokens, st.booleans(), st.lists(st.integers(1, 400), max_size=6))
def test_http_like_bytes_both_parsers_every_cut(data, fin, cuts) -> None:
    check_all_ways(data, fin, cuts)


@fuzz_settings(normal=60, long=3000)
@given(st.binary(max_size=300), st.booleans(), st.lists(st.integers(1, 300), max_size=4))
def test_random_bytes_after_valid_requests(tail, fin, cuts) -> None:
    check_all_ways(TEMPLATE * 2 + tail, fin, cuts)


@pytest.mark.parametrize("seed", [1, 2])
def test_seeded_random_bytes(seed) -> None:
    """Mutations of a valid request (flip, insert, delete) and raw random bytes, from a seed."""
    rng = random.Random(seed)
    base = (b"POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /chunk HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    for _ in range(size(40, 4000)):
        if rng.random() < 0.3:
            data = rng.randbytes(rng.randrange(0, 300))
        else:
            data = bytearray(base)
            for _ in range(rng.randrange(1, 6)):
                at = rng.randrange(len(data))
                choice = rng.random()
                if choice < 0.4:
                    data[at] = rng.randrange(256)
                elif choice < 0.7:
                    data[at:at] = rng.choice(PIECES)
                else:
                    del data[at:at + rng.randrange(1, 8)]
            data = bytes(data)
        cuts = [rng.randrange(1, max(2, len(data))) for _ in range(rng.randrange(0, 6))]
        check_all_ways(data, rng.random() < 0.5, cuts)
