"""The h11 wire: one `h11.Connection(h11.SERVER)` per connection (see http_wire.py).

h11 parses, frames, and knows keep-alive, pipelining and HEAD; its
`RemoteProtocolError.error_status_hint` is the status we answer. This wire is
the strict reference the llhttp wire must match, and it parses the unusual
requests the llhttp wire hands over.

Two things h11 would let through are refused or bounded here, for both wires:
a request with both Content-Length and Transfer-Encoding is a 400 (RFC 9112
6.3: such a request is a smuggling attempt or a broken proxy; h11 would let
Transfer-Encoding win and keep the connection), and CONNECT is answered like
any request and then closed (h11 would switch to a tunnel we do not serve).
"""

from __future__ import annotations

import h11

from tcpbench.services.http_wire import (CLOSED, END, NEED_DATA, Answer, PeerError, Request,
                                         comma_values, peer_reason, serialize_head)

BOTH_FRAMINGS = "both Content-Length and Transfer-Encoding (refused: request smuggling)"


class _Length:
    """Stands for `n` body bytes in h11's Content-Length accounting (only `len` is used)."""

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n


class H11Wire:
    __slots__ = ("_conn", "_request", "must_close")

    def __init__(self, max_head: int) -> None:
        self._conn = h11.Connection(h11.SERVER, max_incomplete_event_size=max_head)
        self._request: Request | None = None
        self.must_close = False

    @staticmethod
    def prepare(answer: Answer) -> tuple:
        # Built (and validated) once for the fixed answer: that halves h11's cost
        # per request (measured 60 -> 34 us).
        return (answer, h11.Response(status_code=answer.status, reason=answer.reason,
                                     headers=list(answer.headers)), h11.Data(data=answer.body))

    def receive(self, data: bytes) -> None:
        self._conn.receive_data(data)

    def next_event(self):
        conn = self._conn
        while True:
            try:
                event = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise PeerError(exc.error_status_hint, peer_reason(exc)) from None
            kind = type(event)
            if kind is h11.Data:
                continue
            if kind is h11.Request:
                return self._request_from(event)
            if kind is h11.EndOfMessage:
                return END
            if kind is h11.ConnectionClosed:
                return CLOSED
            return NEED_DATA  # NEED_DATA, or PAUSED until next_cycle

    def _request_from(self, event: h11.Request) -> Request:
        chunked = length = close = if_range = False
        ranges: list[bytes] = []
        for name, value in event.headers:  # h11's names are lower case
            if name == b"range":
                ranges.append(bytes(value))
            elif name == b"if-range":
                if_range = True
            elif name == b"transfer-encoding":
                chunked = True
            elif name == b"content-length":
                length = True
            elif name == b"connection":
                close = close or b"close" in comma_values(((name, value),), name)
        if chunked and length:
            raise PeerError(400, BOTH_FRAMINGS)
        keep_alive = not close and event.method != b"CONNECT" and event.http_version >= b"1.1"
        self._request = Request(bytes(event.method), bytes(event.target), keep_alive,
                                self._conn.they_are_waiting_for_100_continue,
                                ranges[0] if len(ranges) == 1 else None, if_range)
        return self._request

    def continue_response(self) -> bytes:
        return self._conn.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue"))

    def respond(self, prepared: tuple, head_only: bool) -> bytes:
        answer, response, body = prepared
        request = self._request
        if request is not None and request.method == b"CONNECT":
            # h11 would turn the connection into a tunnel after a 2xx: answer by hand, then close.
            self.must_close = True
            head = serialize_head(answer, close=True)
            return head if head_only else head + answer.body
        conn = self._conn
        data = conn.send(response)
        if not head_only and answer.body:
            data += conn.send(body)
        data += conn.send(h11.EndOfMessage())
        self.must_close = conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE
        return data

    def respond_head(self, prepared: tuple, length: int) -> bytes:
        answer, response, _ = prepared
        conn = self._conn
        data = conn.send(response)
        # The body goes out apart (the engine streams it), but h11 must count it to
        # frame the response: hand it a stand-in of the right length, never sent.
        conn.send_with_data_passthrough(h11.Data(data=_Length(length)))
        data += conn.send(h11.EndOfMessage())
        self.must_close = conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE
        return data

    def next_cycle(self) -> None:
        self._request = None
        self._conn.start_next_cycle()

    @property
    def has_pending(self) -> bool:
        return bool(self._conn.trailing_data[0])

    def unconsumed(self) -> tuple[bytes, bool]:
        """The bytes after the current request, and whether FIN came (for a wire that took over)."""
        return self._conn.trailing_data

    @property
    def may_answer(self) -> bool:
        return self._conn.our_state in (h11.IDLE, h11.SEND_RESPONSE)

