"""STARTTLS: the plain-text exchange that asks a server to switch to TLS, then the switch.

SMTP (RFC 3207: greeting, EHLO, STARTTLS, 220), IMAP (RFC 3501: greeting, a
tagged STARTTLS, OK) and FTP (RFC 4217: greeting, AUTH TLS, 234). The exchange
runs over the session itself, so its bytes are in the session's byte log and
counters like any others; then `SessionManager.start_tls` wraps the same
connection in TLS.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Callable

from tcpbench.engine import events as ev
from tcpbench.engine.conduit import SessionClosedError
from tcpbench.engine.errors import TcpBenchError

if TYPE_CHECKING:
    from tcpbench.engine.manager import SessionManager
    from tcpbench.engine.session import Session
    from tcpbench.engine.tls import ClientTls

PROTOCOLS = ("smtp", "imap", "ftp")
MAX_REPLY = 64 * 1024
"""Bytes of plain-text reply we read before giving up on a server that never ends a line."""

Transcript = Callable[[str, str], None]
"""`(direction, line)`: direction is '<' for the server's lines and '>' for ours."""


class StartTlsRefused(TcpBenchError):
    """The server did not agree to start TLS (or the exchange broke off). One line."""


async def open_starttls(manager: SessionManager, host: str, port: int, protocol: str,
                        tls: ClientTls, *, timeout: float = 10.0,
                        transcript: Transcript | None = None) -> Session:
    """Connect to HOST:PORT in plain text, run `protocol`'s STARTTLS exchange, then the
    TLS handshake on the same connection; return the session, now speaking TLS.

    Each reply must come within `timeout`. `transcript` is told every line both ways.

    Resource handling: the session belongs to the manager, as with `open_session`.

    Errors: `ConnectError` when TCP does not connect; `StartTlsRefused` when the server
    says no, ends the connection or is too slow (the session is then closed
    gracefully); `TlsHandshakeError` when the handshake itself fails (the session is
    then aborted).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown STARTTLS protocol {protocol!r} (one of {', '.join(PROTOCOLS)})")
    # Subscribed before connecting: a server's greeting can arrive before open_session returns.
    exchange = _Exchange(manager, timeout, transcript or (lambda d, t: None))
    try:
        session = await manager.open_session(host, port, timeout=timeout)
        exchange.attach(session)
        try:
            await _converse(exchange, protocol)
        except StartTlsRefused:
            session.close()
            raise
    finally:
        exchange.unsubscribe()
    await manager.start_tls(session, tls)
    return session


async def _converse(exchange: _Exchange, protocol: str) -> None:
    if protocol == "smtp":
        await exchange.reply(_final("220"), "greeting")
        lines = await exchange.command("EHLO tcpbench.invalid", _final("250"), "EHLO")
        if not any(line[4:].strip().upper().startswith("STARTTLS") for line in lines):
            raise StartTlsRefused("the SMTP server does not offer STARTTLS (not in its EHLO reply)")
        await exchange.command("STARTTLS", _final("220"), "STARTTLS")
    elif protocol == "imap":
        await exchange.reply(lambda line: line.startswith("* "), "greeting", ok=("* OK",))
        await exchange.command("a1 STARTTLS", lambda line: line.startswith("a1 "), "STARTTLS",
                               ok=("a1 OK",))
    else:
        await exchange.reply(_final("220"), "greeting")
        await exchange.command("AUTH TLS", _final("234"), "AUTH TLS")


def _final(code: str) -> Callable[[str], bool]:
    """The last line of a reply that may continue (`250-...` lines, then `250 ...`)."""
    return lambda line: len(line) >= 3 and line[:3].isdigit() and line[3:4] != "-"


class _Exchange:
    def __init__(self, manager: SessionManager, timeout: float, transcript: Transcript) -> None:
        self.session: Session | None = None
        self.timeout = timeout
        self.transcript = transcript
        self.early: dict[int, bytearray] = {}
        """Bytes of client sessions that arrived before we knew which one is ours."""
        self.buffer = bytearray()
        self.arrived = asyncio.Event()
        self.unsubscribe = manager.subscribe(self._on_event)

    def attach(self, session: Session) -> None:
        self.session = session
        self.buffer = self.early.pop(session.id, bytearray())
        self.early.clear()

    def _on_event(self, event: ev.Event) -> None:
        session_id = getattr(event, "session", None)
        if self.session is None:
            if type(event) is ev.BytesReceived:
                self.early.setdefault(event.session, bytearray()).extend(event.data)
            return
        if session_id != self.session.id:
            return
        if type(event) is ev.BytesReceived:
            self.buffer += event.data
            self.arrived.set()
        elif isinstance(event, (ev.PeerHalfClosed, *ev.TERMINAL_EVENTS)):
            self.arrived.set()

    async def command(self, text: str, done: Callable[[str], bool], what: str, *,
                      ok: tuple[str, ...] = ()) -> list[str]:
        self.transcript(">", text)
        assert self.session is not None
        try:
            self.session.send(text.encode("ascii") + b"\r\n")
        except SessionClosedError:
            raise StartTlsRefused(f"the server closed the connection before {what}") from None
        return await self.reply(done, what, ok=ok)

    async def reply(self, done: Callable[[str], bool], what: str, *,
                    ok: tuple[str, ...] = ()) -> list[str]:
        """Lines until `done(line)`; the last must be a success (2xx/3xx, or start with `ok`)."""
        lines: list[str] = []
        session = self.session
        assert session is not None
        try:
            async with asyncio.timeout(self.timeout):
                while True:
                    while b"\n" in self.buffer:
                        raw, _, rest = bytes(self.buffer).partition(b"\n")
                        self.buffer[:] = rest
                        line = raw.decode("latin-1").rstrip("\r")
                        self.transcript("<", line)
                        lines.append(line)
                        if done(line):
                            self._check(line, what, ok)
                            return lines
                    if len(self.buffer) > MAX_REPLY:
                        raise StartTlsRefused(f"the server's {what} reply has no end of line")
                    if session.is_finished or session.peer_fin:
                        raise StartTlsRefused(f"the server closed the connection during {what}")
                    self.arrived.clear()
                    await self.arrived.wait()
        except TimeoutError:
            raise StartTlsRefused(f"no {what} reply within {self.timeout:g} s") from None

    @staticmethod
    def _check(line: str, what: str, ok: tuple[str, ...]) -> None:
        from tcpbench.safetext import escape_text

        good = line.startswith(ok) if ok else line[:1] in ("2", "3")
        if not good:
            raise StartTlsRefused(f"the server refused {what}: {escape_text(line[:200])}")
