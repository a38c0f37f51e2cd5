"""`--dir` ranges and streamed bodies, and 408 for a stalled body: bytes in, effects out (both parsers)."""

from __future__ import annotations

import pytest

from tcpbench.services.base import Close, Note, Send, SendFile
from tcpbench.services.http import HttpService
from tcpbench.services.http_files import INLINE_LIMIT, UNSATISFIABLE, parse_range
from tests.services.test_http import WIRES, opened, responses, sent

S = 7
DATA = bytes(range(256)) * 4  # 1024 bytes, every offset recognisable


@pytest.fixture(params=WIRES)
def parser(request) -> str:
    return request.param


@pytest.fixture
def site(tmp_path):
    (tmp_path / "small.bin").write_bytes(DATA)
    with open(tmp_path / "big.bin", "wb") as f:
        f.truncate(INLINE_LIMIT * 8)  # sparse: 2 MiB of zeros, no disk used
    return tmp_path


def request(service: HttpService, head: bytes, now: float = 0.0) -> list:
    opened(service)
    return service.data_received(S, head, now)


def get(service: HttpService, path: bytes, *headers: bytes, method: bytes = b"GET") -> list:
    lines = b"".join(h + b"\r\n" for h in headers)
    return request(service, method + b" " + path + b" HTTP/1.1\r\nHost: x\r\n" + lines + b"\r\n")


@pytest.mark.parametrize("value, size, expected", [
    (None, 100, None),
    (b"bytes=0-9", 100, (0, 9)),
    (b"bytes=90-", 100, (90, 99)),
    (b"bytes=-10", 100, (90, 99)),
    (b"bytes=-1000", 100, (0, 99)),
    (b"bytes=50-1000", 100, (50, 99)),
    (b" bytes = 5-6 ", 100, (5, 6)),
    (b"bytes=100-", 100, UNSATISFIABLE),
    (b"bytes=-0", 100, UNSATISFIABLE),
    (b"bytes=0-", 0, UNSATISFIABLE),
    (b"bytes=9-3", 100, None),          # invalid range-spec: ignored
    (b"bytes=0-1,5-6", 100, None),      # several ranges: ignored (no multipart)
    (b"items=0-1", 100, None),
    (b"bytes=abc", 100, None),
    (b"bytes=\xff", 100, None),
    (b"bytes=" + b"9" * 30 + b"-", 100, None),
])
def test_parse_range(value, size, expected) -> None:
    assert parse_range(value, size) == expected


@pytest.mark.parametrize("header, status, body, content_range", [
    (b"Range: bytes=2-5", 206, DATA[2:6], "bytes 2-5/1024"),
    (b"Range: bytes=1000-", 206, DATA[1000:], "bytes 1000-1023/1024"),
    (b"Range: bytes=-3", 206, DATA[-3:], "bytes 1021-1023/1024"),
    (b"Range: bytes=2000-", 416, b"range not satisfiable\n", "bytes */1024"),
    (b"Range: bytes=0-1, 4-5", 200, DATA, None),
    (b"X-Nothing: 1", 200, DATA, None),
])
def test_ranges_of_a_small_file(site, parser, header, status, body, content_range) -> None:
    [(got, headers, got_body)] = responses(sent(get(HttpService(dir=str(site), parser=parser),
                                                    b"/small.bin", header)))
    assert (got, got_body) == (status, body)
    assert headers.get("content-range") == content_range
    assert headers["accept-ranges"] == "bytes"
    assert int(headers["content-length"]) == len(body)


def test_if_range_and_head_ignore_the_range(site, parser) -> None:
    service = HttpService(dir=str(site), parser=parser)
    [(status, _, body)] = responses(sent(get(service, b"/small.bin", b"Range: bytes=0-1",
                                             b'If-Range: "abc"')))
    assert (status, body) == (200, DATA)
    effects = get(HttpService(dir=str(site), parser=parser), b"/small.bin", b"Range: bytes=0-1",
                  method=b"HEAD")
    [(status, headers, _)] = responses(sent(effects), head_only=(0,))
    assert status == 200 and headers["content-length"] == "1024"


def test_a_big_file_is_streamed_not_read(site, parser) -> None:
    size = INLINE_LIMIT * 8
    effects = get(HttpService(dir=str(site), parser=parser), b"/big.bin")
    head = [e for e in effects if isinstance(e, Send)]
    stream = [e for e in effects if isinstance(e, SendFile)]
    assert len(head) == 1 and head[0].data.endswith(b"\r\n\r\n")  # the head only
    assert b"Content-Length: %d\r\n" % size in head[0].data
    assert stream == [SendFile(S, str(site / "big.bin"), 0, size)]
    note = next(e for e in effects if isinstance(e, Note))
    assert dict(note.fields)["bytes"] == size
    assert effects.index(head[0]) < effects.index(stream[0])


def test_a_big_range_is_streamed_and_keep_alive_goes_on(site, parser) -> None:
    service = HttpService(dir=str(site), parser=parser)
    first = INLINE_LIMIT
    effects = get(service, b"/big.bin", b"Range: bytes=%d-" % first)
    assert b"HTTP/1.1 206 Partial Content\r\n" in effects[0].data
    assert b"Content-Range: bytes %d-%d/%d\r\n" % (first, INLINE_LIMIT * 8 - 1, INLINE_LIMIT * 8) \
        in effects[0].data
    assert [e for e in effects if isinstance(e, SendFile)][0].offset == first
    assert not any(isinstance(e, Close) for e in effects)
    # The connection is ready for the next request, on both wires.
    more = service.data_received(S, b"GET /small.bin HTTP/1.1\r\nHost: x\r\n\r\n", 0.0)
    [(status, _, body)] = responses(sent(more))
    assert (status, body) == (200, DATA)


def test_a_big_head_request_sends_no_body(site, parser) -> None:
    effects = get(HttpService(dir=str(site), parser=parser), b"/big.bin", method=b"HEAD")
    assert not any(isinstance(e, SendFile) for e in effects)
    [(status, headers, _)] = responses(sent(effects), head_only=(0,))
    assert status == 200 and headers["content-length"] == str(INLINE_LIMIT * 8)


def test_a_stalled_body_gets_408_and_a_slow_one_does_not(parser) -> None:
    service = HttpService(parser=parser, header_timeout=2.0)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"
    effects = request(service, head + b"abc", now=0.0)
    assert not sent(effects)
    assert service.tick(1.5) == []
    effects += service.data_received(S, b"de", 1.9)  # slow but moving: the clock restarts
    assert service.tick(3.0) == []
    answer = service.tick(3.9)
    [(status, headers, _)] = responses(sent(answer))
    assert status == 408 and headers["connection"] == "close"
    assert any(isinstance(e, Close) for e in answer)
    note = next(e for e in answer if isinstance(e, Note))
    assert "the request body stalled" in note.text and dict(note.fields)["method"] == "POST"
