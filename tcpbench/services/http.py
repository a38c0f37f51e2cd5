"""http: a small, correct HTTP/1.1 server (the fix for netcat-as-web-server).

Each session has a *wire* (services/http_wire.py): bytes in, requests out,
answers as bytes. `--parser httptools` (the default when it is installed) parses
with llhttp and hands anything unusual to h11; `--parser h11` is h11 alone. Both
answer the same bytes. We answer a request only after reading all of it, frame
every answer with Content-Length, and close gracefully (the engine's Close
sends FIN and drains the peer, so the kernel never turns unread input into RST:
that RST is what made Chrome show ERR_CONNECTION_RESET in the first seed).

Errors by blame: garbage from the peer gets the status h11 suggests (400, or 431
for an oversized head) and a close; a head that does not arrive within
`--header-timeout` gets 408; an idle keep-alive connection is closed after
`--keepalive-timeout`. Time comes only from `now`.

`--naive` is a teaching demonstration of the seed's netcat: answer at once on
connect without reading the request, then close with RST (Send + Abort). The RST
is forced on every connection; netcat's depends on whether the request arrived
before its close (a race), and a demonstration must show every time. Never the
default.

Pipelining is answered as the peer reads: one read can hold thousands of
requests, and answering them all at once would put thousands of answers in the
send buffer (2,000 GETs for a 1 MiB body were 2 GiB, for one 64 KiB read). After
`PIPELINE_BATCH` bytes of answers, the rest waits in the wire and a `Resume`
effect asks the engine to call `writable` when the peer has read them.

Every request yields a Note (topic "access") whose text is built from escaped
text: the method and path come from the network.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tcpbench.safetext import escape_bytes, escape_text
from tcpbench.services.base import (Abort, Close, Effects, Note, Option, OptionError, Resume, Send,
                                    SendFile, Service)
from tcpbench.services.http_files import DirectoryRoot
from tcpbench.services.http_wire import CLOSED, END, NEED_DATA, Answer, PeerError, Request, Wire, validate
from tcpbench.services.http_wire_h11 import H11Wire

PARSERS = ("auto", "httptools", "h11")

DEFAULT_BODY = "hello from tcpbench\n"
SERVER_NAME = b"tcpbench"
FRAMING_HEADERS = ("content-length", "transfer-encoding", "connection", "content-type")
PIPELINE_BATCH = 256 * 1024
"""Answer bytes produced per batch while more pipelined requests wait (see the docstring)."""
REASONS = {200: "OK", 206: "Partial Content", 301: "Moved Permanently", 400: "Bad Request", 403: "Forbidden",
           404: "Not Found", 408: "Request Timeout", 413: "Content Too Large",
           416: "Range Not Satisfiable", 431: "Request Header Fields Too Large",
           500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable"}


@dataclass(slots=True)
class _Exchange:
    """One session's HTTP state."""

    wire: Wire
    """An H11Wire or LlhttpWire (services/http_wire.py)."""
    last_activity: float
    head_started: float | None = None
    """When the first byte of a not-yet-complete request head arrived."""
    request: Request | None = None
    request_started: float = 0.0
    done: bool = False
    requests: int = 0
    held: bool = False
    """Pipelined requests wait in the wire until `writable` (the answers so far are unread)."""
    fin: bool = False
    """The peer's FIN came while held: close once the held requests are answered."""


class HttpService(Service):
    name = "http"
    summary = "an HTTP/1.1 server (llhttp or h11): a fixed response or a directory"
    options = (
        Option("body", str, None, "the response body for every path (\\n, \\t, \\\\ and \\xNN escapes; "
               f"default {DEFAULT_BODY!r})", "TEXT"),
        Option("body_file", str, None, "send this file's bytes as the body", "FILE"),
        Option("status", int, 200, "the status code of the fixed response", "CODE"),
        Option("content_type", str, "text/plain; charset=utf-8", "Content-Type of the fixed response",
               "TYPE"),
        Option("header", list, None, "an extra response header 'Name: value' (repeatable)", "HEADER"),
        Option("dir", str, None, "serve files from this directory (index.html, 404s)", "DIR"),
        Option("keepalive_timeout", float, 5.0, "close idle keep-alive connections after S seconds", "S"),
        Option("header_timeout", float, 10.0, "answer 408 when a request head takes longer, or when "
               "a request body stalls that long", "S"),
        Option("max_head", int, 16384, "largest request head in bytes (431 above)", "BYTES"),
        Option("parser", str, "auto", "request parser: httptools (llhttp, fast; h11 reads what it "
               "finds unusual) or h11 alone; auto: httptools when installed", "NAME", choices=PARSERS),
        Option("naive", bool, False, "TEACHING DEMO: behave like netcat (answer without reading, "
                                     "then reset every connection; browsers fail some loads)"),
    )

    tick_interval = 0.5

    def __init__(self, body: str | None = None, body_file: str | None = None, status: int = 200,
                 content_type: str = "text/plain; charset=utf-8", header: list[str] | None = None,
                 dir: str | None = None, keepalive_timeout: float = 5.0, header_timeout: float = 10.0,
                 max_head: int = 16384, parser: str = "auto", naive: bool = False) -> None:
        if body is not None and body_file is not None:
            raise OptionError("give --body or --body-file, not both")
        if dir is not None and (body is not None or body_file is not None):
            raise OptionError("--dir serves files; it cannot be combined with --body/--body-file")
        if not 200 <= status <= 599 or status in (204, 304):
            raise OptionError(f"--status {status}: use a code from 200 to 599 that carries a body "
                              "(not 204 or 304)")
        for name, value in (("keepalive-timeout", keepalive_timeout), ("header-timeout", header_timeout)):
            if not value > 0:
                raise OptionError(f"--{name} must be positive")
        if max_head < 256:
            raise OptionError("--max-head must be at least 256 bytes")
        try:
            self.wire_class = wire_class(parser)
        except ValueError as exc:
            raise OptionError(str(exc)) from None
        if body_file is not None:
            try:
                payload = Path(body_file).read_bytes()
            except OSError as exc:
                raise OptionError(f"cannot read {escape_text(body_file)}: {exc.strerror or exc}") from None
        else:
            payload = DEFAULT_BODY.encode() if body is None else _unescape(body)
        self.extra_headers = [_parse_header(h) for h in header or []]
        try:
            self.root = DirectoryRoot(dir) if dir is not None else None
        except ValueError as exc:
            raise OptionError(str(exc)) from None
        self.body = payload
        self.status = status
        self.content_type = content_type.encode("latin-1", "replace")
        self.keepalive_timeout = keepalive_timeout
        self.header_timeout = header_timeout
        self.max_head = max_head
        self.naive = naive
        self.sessions: dict[int, _Exchange] = {}
        # The fixed answer is checked and put in the wire's form once, not per request.
        fixed = self._answer(status, self.content_type, self.body)
        try:
            validate(fixed)
        except ValueError as exc:
            raise OptionError(f"--header/--content-type: {exc}") from None
        self._fixed = self.wire_class.prepare(fixed)

    # --- hooks --------------------------------------------------------------------

    def session_opened(self, session, peer, local, now) -> Effects:
        if self.naive:
            # The seed's `nc -e echo`: the answer goes out before the request is
            # read, and the socket is closed with the request unread -> RST.
            head = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: " % len(self.body)
                    + self.content_type + b"\r\n\r\n")
            return [Note("naive mode: answered without reading the request, resetting (RST, "
                         "forced on every connection; netcat's depends on a race)",
                         session, "access", (("method", "-"), ("path", "-"), ("status", 200),
                                             ("bytes", len(self.body)), ("duration_ms", 0.0),
                                             ("session", session))),
                    Send(session, head + self.body),
                    Abort(session, "naive mode (netcat demonstration)")]
        self.sessions[session] = _Exchange(self.wire_class(self.max_head), now)
        return []

    def data_received(self, session, data, now) -> Effects:
        exchange = self.sessions.get(session)
        if exchange is None or exchange.done:
            return []
        exchange.last_activity = now
        if exchange.head_started is None and exchange.request is None:
            exchange.head_started = now
        exchange.wire.receive(data)
        if exchange.held:
            return []
        return self._process(session, exchange, now)

    def peer_half_closed(self, session, now) -> Effects:
        exchange = self.sessions.get(session)
        if exchange is None or exchange.done:
            return [Close(session)]
        exchange.wire.receive(b"")
        exchange.fin = True
        if exchange.held:
            return []
        return self._process_to_end(session, exchange, now)

    def writable(self, session, now) -> Effects:
        exchange = self.sessions.get(session)
        if exchange is None or exchange.done or not exchange.held:
            return []
        exchange.held = False
        if exchange.fin:
            return self._process_to_end(session, exchange, now)
        return self._process(session, exchange, now)

    def _process_to_end(self, session: int, exchange: _Exchange, now: float) -> Effects:
        """After the peer's FIN: answer what is complete, then close."""
        effects = self._process(session, exchange, now)
        if not exchange.done and not exchange.held:
            exchange.done = True
            effects.append(Close(session))
        return effects

    def session_closed(self, session, now) -> Effects:
        self.sessions.pop(session, None)
        return []

    def tick(self, now) -> Effects:
        effects: Effects = []
        for session, exchange in list(self.sessions.items()):
            if exchange.done or exchange.held:
                continue  # held: flow control waits for the peer to read, not a timer
            if exchange.request is not None:
                # A body is arriving: 408 when it stalls (nothing for --header-timeout seconds,
                # as nginx's client_body_timeout), so a slow upload still gets through.
                if now - exchange.last_activity >= self.header_timeout:
                    effects += self._error(session, exchange, 408, "the request body stalled", now)
                continue
            if exchange.head_started is not None:
                if now - exchange.head_started >= self.header_timeout:
                    effects += self._error(session, exchange, 408, "the request head did not arrive "
                                           "in time", now)
            elif now - exchange.last_activity >= self.keepalive_timeout:
                exchange.done = True
                effects.append(Close(session))
        return effects

    def describe(self) -> str:
        if self.naive:
            return "http NAIVE (netcat demonstration: resets connections)"
        if self.root is not None:
            return f"http dir {self.root}"
        return f"http {self.status} ({len(self.body)} bytes)"

    # --- the protocol -------------------------------------------------------------------

    def _process(self, session: int, exchange: _Exchange, now: float) -> Effects:
        effects: Effects = []
        wire = exchange.wire
        answered = 0
        while not exchange.done:
            try:
                event = wire.next_event()
            except PeerError as exc:
                effects += self._error(session, exchange, exc.status, exc.reason, now)
                break
            if event is NEED_DATA:
                break
            if event is END:
                answer = self._respond(session, exchange, now)
                effects += answer
                if wire.must_close:
                    exchange.done = True
                    effects.append(Close(session))
                    break
                wire.next_cycle()
                if wire.has_pending:
                    exchange.head_started = now
                    # A file streamed from --dir counts whole: its bytes are as real as a body's.
                    answered += sum(len(e.data) if type(e) is Send else e.length  # type: ignore[union-attr]
                                    for e in answer if type(e) is Send or type(e) is SendFile)
                    if answered >= PIPELINE_BATCH:
                        exchange.held = True
                        effects.append(Resume(session))
                        break
            elif event is CLOSED:
                exchange.done = True
                effects.append(Close(session))
            else:
                exchange.request = event
                exchange.request_started = exchange.head_started or now
                exchange.head_started = None
                if event.expects_continue:
                    effects.append(Send(session, wire.continue_response()))
        return effects

    def _respond(self, session: int, exchange: _Exchange, now: float) -> Effects:
        request = exchange.request
        assert request is not None
        exchange.request = None
        exchange.requests += 1
        head_only = request.method == b"HEAD"
        stream = None
        if self.root is None:
            status, size = self.status, len(self.body)
            prepared = self._fixed
        else:
            # Ranges are defined for GET only (RFC 9110 14.2); If-Range we cannot check.
            wanted = request.range if request.method == b"GET" and not request.if_range else None
            answer = self.root.answer(request.target, wanted)
            status, size, stream = answer.status, answer.length, answer.stream
            extra = answer.headers + (() if answer.location is None
                                      else ((b"Location", answer.location.encode("ascii", "replace")),))
            prepared = self.wire_class.prepare(
                self._answer(status, answer.content_type.encode(), answer.body, extra, size))
        access = self._access(session, request.method, request.target, status,
                              0 if head_only else size, now - exchange.request_started)
        if stream is not None and not head_only:
            # The head now; the engine streams the body from the file as the peer takes it.
            return [Send(session, exchange.wire.respond_head(prepared, size)),
                    SendFile(session, *stream), access]
        return [Send(session, exchange.wire.respond(prepared, head_only)), access]

    def _error(self, session: int, exchange: _Exchange, status: int, why: str, now: float) -> Effects:
        """Answer a peer error (if we still may) and close: the peer is to blame."""
        exchange.done = True
        effects: Effects = []
        if exchange.wire.may_answer:
            # The reason stays in the access Note: the peer's bytes are not echoed back.
            body = f"{status} {REASONS.get(status, 'Error')}\n".encode()
            head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
                    f"Server: {SERVER_NAME.decode()}\r\n"
                    f"Content-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
                    f"Connection: close\r\n\r\n").encode()
            effects.append(Send(session, head + body))
        request = exchange.request
        method = request.method if request is not None else b"-"
        target = request.target if request is not None else b"-"
        started = exchange.request_started if request is not None else (exchange.head_started or now)
        effects.append(self._access(session, method, target, status, 0, now - started, why))
        effects.append(Close(session))
        return effects

    def _answer(self, status: int, content_type: bytes, body: bytes, extra: tuple = (),
                length: int | None = None) -> Answer:
        length = len(body) if length is None else length
        return Answer(status, REASONS.get(status, "").encode(),
                      ((b"Server", SERVER_NAME), (b"Content-Type", content_type),
                       (b"Content-Length", b"%d" % length), *self.extra_headers, *extra), body)

    def _access(self, session: int, method: bytes, target: bytes, status: int, size: int,
                duration: float, why: str = "") -> Note:
        method_text = escape_bytes(method)
        path_text = escape_bytes(target)
        ms = round(duration * 1000, 3)
        text = f"{method_text} {path_text} -> {status}, {size} bytes, {ms} ms"
        if why:
            text += f" ({escape_bytes(why.encode('utf-8', 'replace'))})"
        return Note(text, session, "access", (("method", method_text), ("path", path_text),
                                              ("status", status), ("bytes", size),
                                              ("duration_ms", ms), ("session", session)))


def wire_class(parser: str) -> type[Wire]:
    """The wire for `--parser` ("auto": httptools when it imports, else h11).

    Errors: `ValueError` (one line) for an unknown name or a missing httptools.
    """
    if parser not in PARSERS:
        raise ValueError(f"--parser {parser!r}: choose one of {', '.join(PARSERS)}")
    if parser != "h11":
        try:
            from tcpbench.services.http_wire_llhttp import LlhttpWire
        except ImportError:
            if parser == "httptools":
                raise ValueError("--parser httptools: the httptools package is not installed") from None
        else:
            return LlhttpWire
    return H11Wire


def _unescape(text: str) -> bytes:
    """`--body` as motd's `--message`: UTF-8 text with backslash escapes."""
    from tcpbench.safetext import EscapeError, unescape_bytes

    try:
        return unescape_bytes(text)
    except EscapeError as exc:
        raise OptionError(f"--body: {exc}") from None


def _parse_header(text: str) -> tuple[bytes, bytes]:
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not name or any(c in name for c in " \t\r\n()<>@,;\\\"/[]?={}") \
            or "\r" in value or "\n" in value:
        raise OptionError(f"--header {text!r}: use 'Name: value'")
    if name.lower() in FRAMING_HEADERS:
        raise OptionError(f"--header {name}: tcpbench sets this header itself "
                          "(use --content-type for Content-Type)")
    try:
        return name.encode("ascii"), value.encode("latin-1")
    except UnicodeEncodeError:
        raise OptionError(f"--header {text!r}: only Latin-1 text is allowed") from None
