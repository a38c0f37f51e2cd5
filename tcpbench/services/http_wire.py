"""One HTTP/1.1 server connection on the wire, sans-IO: request bytes in, events out, answers as bytes.

`HttpService` (services/http.py) drives a *wire* per session and never looks at
HTTP bytes itself. Two wires implement the same small interface:

- `H11Wire` (http_wire_h11.py): an `h11.Connection(h11.SERVER)`, the strict
  reference, the fallback when httptools is missing.
- `LlhttpWire` (http_wire_llhttp.py): httptools (llhttp, the parser uvicorn
  uses) for ordinary requests, answers serialized by hand; whatever is not
  ordinary is handed to an h11 connection, so it answers exactly as h11 does.

The interface (a wire is one connection; nothing here blocks or reads a clock):

    wire.receive(data)      bytes from the peer; b"" means the peer sent FIN
    wire.next_event()       NEED_DATA | a Request (its head is read) | END (its
                            body is read too) | CLOSED (FIN between requests);
                            raises PeerError(status, reason) for garbage
    wire.respond(prepared, head_only) -> bytes    the answer to the request just ENDed
    wire.respond_head(prepared, length) -> bytes  only the head of it: the engine streams
                            the `length` body bytes that its Content-Length announces
    wire.must_close         after respond: the connection ends here (HTTP/1.0, close)
    wire.next_cycle()       ready for the next (pipelined) request
    wire.has_pending        bytes of a next request are already buffered
    wire.may_answer         a PeerError may still get an error answer
    wire.continue_response()    the 100 Continue for a Request with expects_continue
    WireClass.prepare(answer)    an Answer in the form that wire's respond takes
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import h11


class _Marker:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA = _Marker("NEED_DATA")
END = _Marker("END")
"""The request announced by the last Request event has been read whole."""
CLOSED = _Marker("CLOSED")
"""The peer closed between requests: nothing to answer."""

class PeerError(Exception):
    """The peer sent something that is not HTTP/1.1 (its fault): answer `status` if we may, close."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(slots=True)
class Request:
    """A request whose head has been read (the body may still be arriving)."""

    method: bytes
    target: bytes
    keep_alive: bool
    """h11's rule: HTTP/1.1 or later and no `close` in Connection (HTTP/1.0 always closes)."""
    expects_continue: bool
    """HTTP/1.1 with `Expect: 100-continue`: the peer waits for a 100 before its body."""
    range: bytes | None = None
    """The Range header's value (None without one, or with several: then it is ignored)."""
    if_range: bool = False
    """An If-Range header came: we cannot validate it, so the whole file is sent (RFC 9110 13.1.5)."""


@dataclass(frozen=True, slots=True)
class Answer:
    """A complete response: status, headers in order (names as written), and the body."""

    status: int
    reason: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


class Wire(Protocol):
    """One connection's HTTP/1.1 server side (the interface in the module docstring)."""

    must_close: bool

    def __init__(self, max_head: int) -> None: ...

    @staticmethod
    def prepare(answer: Answer) -> Any: ...

    def receive(self, data: bytes) -> None: ...

    def next_event(self) -> Request | _Marker: ...

    def continue_response(self) -> bytes: ...

    def respond(self, prepared: Any, head_only: bool) -> bytes: ...

    def respond_head(self, prepared: Any, length: int) -> bytes: ...

    def next_cycle(self) -> None: ...

    @property
    def has_pending(self) -> bool: ...

    @property
    def may_answer(self) -> bool: ...


def validate(answer: Answer) -> None:
    """Raise `ValueError` (one line) if h11 would refuse to send `answer` (bad header bytes)."""
    try:
        h11.Response(status_code=answer.status, reason=answer.reason, headers=list(answer.headers))
    except h11.LocalProtocolError as exc:
        raise ValueError(str(exc)) from None


def serialize_head(answer: Answer, close: bool) -> bytes:
    """The status line and headers exactly as h11 writes them for `answer`.

    h11 writes Host headers first, keeps the order and case of the rest, and
    appends `Connection: close` when the connection ends after this response.
    """
    lines = [b"HTTP/1.1 %d %s\r\n" % (answer.status, answer.reason)]
    hosts = [(n, v) for n, v in answer.headers if n.lower() == b"host"]
    for name, value in hosts + [(n, v) for n, v in answer.headers if n.lower() != b"host"]:
        lines.append(b"%s: %s\r\n" % (name, value))
    if close:
        lines.append(b"Connection: close\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def comma_values(headers, name: bytes) -> list[bytes]:
    """h11's get_comma_header over (lower-case name, value) pairs: lower-cased, split, stripped."""
    out = []
    for found, value in headers:
        if found == name:
            out += [v for v in (part.strip() for part in value.lower().split(b",")) if v]
    return out


_BYTES_REPR = re.compile(r"""bytearray\(b('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\)""")


def peer_reason(exc: Exception) -> str:
    """h11's reason without Python reprs: "illegal request line: 'garbage'", not bytearray(b'...')."""
    return _BYTES_REPR.sub(lambda m: m.group(1), str(exc))
