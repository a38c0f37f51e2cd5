"""The llhttp wire: httptools for ordinary requests, h11 for the rest (see http_wire.py).

Same answers as `H11Wire`, byte for byte, at a fraction of the cost: h11 is the
reference, and this wire takes the fast path only where it provably agrees.

- Framing is ours, as h11 frames: a head ends at the first `\\n\\r?\\n`; while a
  head is incomplete, more than `max_head` buffered bytes is a 431 and a first
  byte below `!` a 400; a Content-Length body is counted off the buffer.
- A complete head is *ordinary* when it matches h11's grammar (request line,
  header lines) written with CRLF and no folded lines, is HTTP/1.0 or 1.1, not
  CONNECT, llhttp parses it (its header callbacks give us the headers), and
  its Host, Content-Length, Connection and Expect headers are plain: one Host
  (or none on 1.0), at most one Content-Length of digits, no Transfer-Encoding,
  no Upgrade. Then this wire answers it itself.
- Anything else (garbage, a chunked body, bare LF line ends, obs-fold, a method
  llhttp does not know, an incomplete head that is too long or cut by FIN, ...)
  is handed to an `H11Wire` for that one request, from its first byte: h11
  accepts what it accepts, and a refusal carries h11's status and reason. When
  h11 has read the request, the bytes after it come back to this wire.

So llhttp's own leniencies never reach the answer (it takes `GET  /` with two
spaces, HTTP/0.9, a leading CRLF, `Transfer-Encoding: gzip, chunked`: all fail
the checks above and h11 refuses them), nor its extra strictness (it refuses
`get`, HTTP/1.2, a repeated equal Content-Length, obs-fold: h11 accepts them).
"""

from __future__ import annotations

import re

import httptools

from tcpbench.services.http_wire import CLOSED, END, NEED_DATA, Answer, PeerError, Request, serialize_head
from tcpbench.services.http_wire_h11 import H11Wire

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_VALUE = rb"(?:[^\x00\s]++(?:[ \t]++[^\x00\s]++)*+[ \t]*+)?"  # h11's field-value and OWS, linear
ORDINARY_HEAD = re.compile(rb"(" + _TOKEN + rb") ([\x21-\x7e]++) HTTP/([0-9]\.[0-9])\r\n"
                           rb"(?:" + _TOKEN + rb":[ \t]*+" + _VALUE + rb"\r\n)*+\r\n")
"""h11's request-line and header-line grammar (h11/_abnf.py), CRLF only, no obs-fold."""
HEAD_END = re.compile(b"\n\r?\n")
"""Where h11 ends a head (h11/_receivebuffer.py)."""

_NOTED = frozenset((b"host", b"content-length", b"transfer-encoding", b"connection", b"expect",
                    b"upgrade", b"range", b"if-range"))
_MAX_LENGTH_DIGITS = 20  # h11's CONTENT_LENGTH_MAX_DIGITS

_HEAD, _BODY, _PAUSED, _H11 = range(4)


class _Headers:
    """llhttp's on_header callback: keeps the headers whose meaning we must check."""

    __slots__ = ("noted",)

    def __init__(self) -> None:
        self.noted: list[tuple[bytes, bytes]] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name in _NOTED:
            self.noted.append((name, value))


def _has(value: bytes, token: bytes) -> bool:
    return token in [part.strip() for part in value.lower().split(b",")]


class LlhttpWire:
    __slots__ = ("_buf", "_pos", "_eof", "_state", "_search_from", "_remaining", "_length", "_request",
                 "_parser", "_headers", "_h11", "_max_head", "must_close")

    def __init__(self, max_head: int) -> None:
        self._buf = b""
        self._pos = 0
        """Where the unread bytes of `_buf` start (a 256 KiB read of pipelined requests is not
        copied once per request)."""
        self._eof = False
        self._state = _HEAD
        self._search_from = 0
        self._remaining = self._length = 0
        self._request: Request | None = None
        self._headers = _Headers()
        self._parser: httptools.HttpRequestParser | None = None
        self._h11: H11Wire | None = None
        self._max_head = max_head
        self.must_close = False

    @staticmethod
    def prepare(answer: Answer) -> tuple[bytes, bytes, bytes, bytes]:
        """(head keep-alive, head close, body, whole keep-alive answer): no work per request."""
        keep = serialize_head(answer, close=False)
        return keep, serialize_head(answer, close=True), answer.body, keep + answer.body

    # --- the interface ---------------------------------------------------------------

    def receive(self, data: bytes) -> None:
        if not data:
            self._eof = True
        if self._h11 is not None:
            self._h11.receive(data)
        elif data:
            buf = self._buf
            if self._pos < len(buf):
                start = self._pos
                self._buf = buf[start:] + data
                self._search_from = max(0, self._search_from - start)
            else:
                self._buf = bytes(data)
                self._search_from = 0
            self._pos = 0

    def next_event(self):
        state = self._state
        if state == _HEAD:
            return self._read_head()
        if state == _BODY:
            return self._read_body()
        if state == _H11:
            return self._from_h11()
        return NEED_DATA  # _PAUSED: the answer comes first

    def continue_response(self) -> bytes:
        return b"HTTP/1.1 100 Continue\r\n\r\n"

    def respond(self, prepared: tuple[bytes, bytes, bytes, bytes], head_only: bool) -> bytes:
        request = self._request
        close = request is None or not request.keep_alive
        self.must_close = close
        if head_only:
            return prepared[1] if close else prepared[0]
        return prepared[1] + prepared[2] if close else prepared[3]

    def respond_head(self, prepared: tuple[bytes, bytes, bytes, bytes], length: int) -> bytes:
        request = self._request
        close = request is None or not request.keep_alive
        self.must_close = close
        return prepared[1] if close else prepared[0]

    def next_cycle(self) -> None:
        self._request = None
        self._state = _HEAD

    @property
    def has_pending(self) -> bool:
        return self._pos < len(self._buf)

    @property
    def may_answer(self) -> bool:
        return self._h11.may_answer if self._h11 is not None else True

    # --- framing -------------------------------------------------------------------------

    def _read_head(self):
        buf = self._buf
        pos = self._pos
        if pos == len(buf):
            return CLOSED if self._eof else NEED_DATA
        if buf[pos] < 0x21:  # h11: "illegal request line" / "no request line received"
            return self._hand_over()
        found = HEAD_END.search(buf, max(pos, self._search_from))
        if found is None:
            if len(buf) - pos > self._max_head or self._eof:  # h11: 431, "peer unexpectedly closed"
                return self._hand_over()
            self._search_from = max(pos, len(buf) - 2)
            return NEED_DATA
        end = found.end()
        request = self._ordinary(buf, pos, end)
        if request is None:
            return self._hand_over()
        self._pos = end
        self._request = request
        self._state = _BODY
        return request

    def _read_body(self):
        remaining = self._remaining
        if remaining:
            available = len(self._buf) - self._pos
            if not available:
                if self._eof:
                    raise PeerError(400, "peer closed connection without sending complete message body "
                                         f"(received {self._length - remaining} bytes, "
                                         f"expected {self._length})")
                return NEED_DATA
            if available < remaining:
                self._remaining = remaining - available
                self._pos += available
                return NEED_DATA
            self._pos += remaining
            self._remaining = 0
        self._state = _PAUSED
        return END

    def _ordinary(self, buf: bytes, start: int, end: int) -> Request | None:
        """The request whose head is buf[start:end] if it is ordinary (see the module docstring)."""
        match = ORDINARY_HEAD.fullmatch(buf, start, end)
        if match is None:
            return None
        method, target, version = match.groups()
        if method == b"CONNECT" or (version != b"1.1" and version != b"1.0"):
            return None
        parser = self._parser
        if parser is None:
            parser = self._parser = httptools.HttpRequestParser(self._headers)
        noted = self._headers.noted
        noted.clear()
        try:
            parser.feed_data(memoryview(buf)[start:end])
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            self._parser = None
            return None
        hosts = 0
        length = None
        keep_alive = version == b"1.1"
        expects_continue = if_range = False
        ranges: list[bytes] = []
        for name, value in noted:
            if name == b"host":
                hosts += 1
            elif name == b"content-length":
                if length is not None or not value.isdigit() or len(value) > _MAX_LENGTH_DIGITS:
                    length = -1
                    break
                length = int(value)
            elif name == b"connection":
                if keep_alive and _has(value, b"close"):
                    keep_alive = False
            elif name == b"range":
                ranges.append(value)
            elif name == b"if-range":
                if_range = True
            elif name == b"expect":
                expects_continue = expects_continue or (version == b"1.1" and _has(value, b"100-continue"))
            else:  # Transfer-Encoding, Upgrade: h11's business
                length = -1
                break
        if (length is not None and length < 0) or hosts > 1 or (hosts == 0 and version == b"1.1"):
            self._parser = None
            return None
        if length:  # llhttp now waits for a body we count ourselves: a new parser next time
            self._parser = None
        self._remaining = self._length = length or 0
        return Request(method, target, keep_alive, expects_continue,
                       ranges[0] if len(ranges) == 1 else None, if_range)

    # --- the unusual request: h11 reads it -----------------------------------------------

    def _hand_over(self):
        wire = H11Wire(self._max_head)
        if self._pos < len(self._buf):
            wire.receive(self._buf[self._pos:])
        if self._eof:
            wire.receive(b"")
        self._buf = b""
        self._pos = self._search_from = 0
        self._parser = None
        self._h11 = wire
        self._state = _H11
        return self._from_h11()

    def _from_h11(self):
        wire = self._h11
        assert wire is not None
        event = wire.next_event()
        if event is END:
            self._buf = wire.unconsumed()[0]
            self._h11 = None
            self._state = _PAUSED
        elif isinstance(event, Request):
            self._request = event
        return event
