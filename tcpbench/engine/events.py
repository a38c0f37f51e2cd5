"""Lifecycle events of the engine: frozen dataclasses, named in the past tense.

Subscribers receive them synchronously from the engine's callbacks (see
`SessionManager.subscribe`), so they must be cheap: count, append, mark dirty.
Every event carries `at`, a `time.monotonic()` reading, and `kind`, a short
stable name used by the JSON Lines output of the CLI.

Each event also knows how to explain itself in one line of plain English
(`explain()`): tcpbench is used to *learn* TCP, so "peer sent FIN" comes with
what that means for the person watching.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

# Defined apart so the UI can format addresses before it imports the engine; still
# `events.format_address` and `events.Address` for everyone else.
from tcpbench.engine.address import Address, format_address


@dataclass(frozen=True, slots=True)
class Event:
    """Base class of every engine event."""

    at: float
    kind: ClassVar[str] = "event"

    def explain(self) -> str:
        """A one-line explanation of what the event means in TCP terms."""
        return ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: `event` first, bytes as their length only."""
        out: dict[str, Any] = {"event": self.kind}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bytes):
                continue
            if isinstance(value, tuple) and len(value) == 2 and field.name.endswith(
                ("peer", "local", "address")
            ):
                value = format_address(value)
            out[field.name] = value
        return out


# --- listeners -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListenerStarted(Event):
    listener: int
    service: str
    address: Address
    kind: ClassVar[str] = "listener_started"

    def explain(self) -> str:
        return f"listening: the kernel now completes handshakes on {format_address(self.address)}"


@dataclass(frozen=True, slots=True)
class ListenerStopped(Event):
    listener: int
    service: str
    address: Address
    connections: int = 0
    """Connections it accepted over its life (refused-by-rule ones not counted)."""
    bytes_in: int = 0
    bytes_out: int = 0
    kind: ClassVar[str] = "listener_stopped"

    def explain(self) -> str:
        return "stopped listening: new SYNs to this port are now answered with RST (refused)"


@dataclass(frozen=True, slots=True)
class ListenerFailed(Event):
    service: str
    host: str
    port: int
    reason: str
    message: str
    kind: ClassVar[str] = "listener_failed"

    def explain(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class ConnectionRefusedByRule(Event):
    """A listener's admission rules turned a connection away before it became a session."""

    listener: int
    peer: Address
    reason: str
    """`max-conns`, `denied` (a --deny rule matched) or `not-allowed` (no --allow rule did)."""
    detail: str
    """For a person: which rule, or how many connections were open."""
    how: str
    """How it was turned away: close (FIN), reset (RST) or banner (a line, then FIN)."""
    kind: ClassVar[str] = "refused_by_rule"

    def explain(self) -> str:
        done = {"close": "closed it at once (the peer sees FIN, no data)",
                "reset": "reset it (the peer sees RST: connection reset)",
                "banner": "sent the refusal banner and closed (FIN)"}.get(self.how, self.how)
        return f"turned away: the kernel completed the handshake, then we {done}"


# --- sessions ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionOpened(Event):
    session: int
    local: Address
    peer: Address
    listener: int | None
    """The listener that accepted it, or None for a client session we opened."""
    kind: ClassVar[str] = "opened"

    @property
    def origin(self) -> str:
        return "client" if self.listener is None else f"listener {self.listener}"

    def explain(self) -> str:
        if self.listener is None:
            return "connected: our SYN was answered with SYN-ACK; the three-way handshake is done"
        return "accepted: a peer completed the three-way handshake with our listener"


@dataclass(frozen=True, slots=True)
class BytesReceived(Event):
    session: int
    offset: int
    """Stream offset of the first byte of `data` in the received direction."""
    data: bytes
    kind: ClassVar[str] = "received"

    @property
    def size(self) -> int:
        return len(self.data)

    def explain(self) -> str:
        return (f"received {len(self.data)} byte(s): our kernel acknowledged them (ACK) as they "
                "arrived, and tcpbench read them from the socket")

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "at": self.at, "session": self.session,
                "offset": self.offset, "size": len(self.data)}


@dataclass(frozen=True, slots=True)
class BytesSent(Event):
    session: int
    offset: int
    """Stream offset of the first byte of `data` in the sent direction."""
    data: bytes
    kind: ClassVar[str] = "sent"

    @property
    def size(self) -> int:
        return len(self.data)

    def explain(self) -> str:
        return (f"sent {len(self.data)} byte(s): handed to our kernel, which sends them in "
                "segments and resends any the peer does not acknowledge")

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "at": self.at, "session": self.session,
                "offset": self.offset, "size": len(self.data)}


@dataclass(frozen=True, slots=True)
class PeerHalfClosed(Event):
    session: int
    after_our_fin: bool = False
    """We had sent FIN first: the peer's FIN answers ours and ends the connection."""
    kind: ClassVar[str] = "peer_fin"

    def explain(self) -> str:
        if self.after_our_fin:
            return ("peer sent FIN after ours: both sides are done sending, so the connection "
                    "ends (we close and the kernel keeps TIME_WAIT)")
        return "peer sent FIN: it will send nothing more, but still reads; you can keep sending"


@dataclass(frozen=True, slots=True)
class WeHalfClosed(Event):
    session: int
    kind: ClassVar[str] = "our_fin"

    def explain(self) -> str:
        return "we sent FIN: we will send nothing more, but we still read what the peer sends"


@dataclass(frozen=True, slots=True)
class SessionClosed(Event):
    session: int
    closed_by: str
    """'peer' when the peer's FIN came first, 'us' when ours did."""
    bytes_in: int
    bytes_out: int
    peer_fin: bool = True
    """The peer's FIN arrived (False: we sent ours and stopped waiting for it)."""
    kind: ClassVar[str] = "closed"

    def explain(self) -> str:
        if self.closed_by == "peer":
            return "closed: the peer sent FIN first, then we closed our side; an orderly close"
        if not self.peer_fin:
            return ("closed: we sent FIN first, but the peer never sent its FIN, so we stopped "
                    "waiting and let go; its side stays in CLOSE_WAIT until its program closes "
                    "(nc without -N), ours in FIN_WAIT2 for a while; no RST")
        return "closed: we sent FIN first and the peer closed too; an orderly close, no RST"


@dataclass(frozen=True, slots=True)
class SessionReset(Event):
    session: int
    bytes_in: int
    bytes_out: int
    message: str
    kind: ClassVar[str] = "reset"

    def explain(self) -> str:
        return ("reset by peer: it sent RST, so the connection died at once and unread or "
                "in-flight data was thrown away")


@dataclass(frozen=True, slots=True)
class SessionAborted(Event):
    session: int
    bytes_in: int
    bytes_out: int
    reason: str
    kind: ClassVar[str] = "aborted"

    def explain(self) -> str:
        return "aborted by us: we sent RST (SO_LINGER 0); the peer sees 'connection reset'"


@dataclass(frozen=True, slots=True)
class SessionTimedOut(Event):
    session: int
    idle_seconds: float
    kind: ClassVar[str] = "timed_out"

    def explain(self) -> str:
        return f"timed out: nothing happened for {self.idle_seconds:g} s, so we are closing it"


@dataclass(frozen=True, slots=True)
class ConnectFailed(Event):
    session: int
    host: str
    port: int
    reason: str
    """One of the `tcpbench.engine.errors.ConnectFailure` reasons."""
    message: str
    """The OS message (strerror), or a resolver message."""
    kind: ClassVar[str] = "connect_failed"

    def explain(self) -> str:
        from tcpbench.engine.errors import explain_reason

        return explain_reason(self.reason)


@dataclass(frozen=True, slots=True)
class ServiceNoted(Event):
    """Something a service wants the operator to see: an HTTP access-log line,
    a chat message, a child's stderr. `fields` carries the structured form."""

    session: int | None
    listener: int | None
    topic: str
    text: str
    fields: tuple[tuple[str, Any], ...] = ()
    kind: ClassVar[str] = "note"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.topic, "at": self.at, "session": self.session,
                               "listener": self.listener, "text": self.text}
        out.update(dict(self.fields))
        return out


# --- TLS -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsNegotiated(Event):
    """A TLS handshake completed on a session (client, listener, or STARTTLS).

    Text fields come from the peer's certificate: escape them before showing them.
    The certificate fields are empty when the peer sent none (a client of our listener)."""

    session: int
    version: str
    cipher: str
    bits: int
    alpn: str
    """The application protocol both sides chose ('' when none)."""
    sni: str
    """The server name the client asked for ('' when none)."""
    verified: bool
    """True when we checked the peer's certificate against trusted CAs and the name."""
    subject: str = ""
    issuer: str = ""
    sans: tuple[str, ...] = ()
    not_before: str = ""
    not_after: str = ""
    fingerprint: str = ""
    kind: ClassVar[str] = "tls"

    def explain(self) -> str:
        facts = f"TLS negotiated: {self.version}, {self.cipher}"
        facts += f", ALPN {self.alpn}" if self.alpn else ""
        facts += f", SNI {self.sni}" if self.sni else ""
        if self.subject:
            facts += (f"; certificate {self.subject}, issuer {self.issuer}, names "
                      f"{', '.join(self.sans) or 'none'}, valid {self.not_before} to {self.not_after}")
        if self.subject and not self.verified:
            return facts + "; NOT verified (insecure): anyone could be on the other end"
        if self.subject:
            return facts + "; verified: signed by a CA we trust, for the name we asked for"
        return facts + "; from here on the bytes shown are the plaintext inside TLS"


@dataclass(frozen=True, slots=True)
class TlsHandshakeFailed(Event):
    """A TLS handshake failed: `reason` is one of `tcpbench.engine.tls.TLS_REASONS`."""

    session: int | None
    listener: int | None
    """The listener whose client failed, or None for our own client session."""
    peer: Address
    reason: str
    message: str
    """One line for a person: what went wrong and what to try."""
    kind: ClassVar[str] = "tls_failed"

    def explain(self) -> str:
        return self.message


@dataclass(frozen=True, slots=True)
class TlsBytesCounted(Event):
    """A TLS session ended: its plaintext bytes and the bytes TCP carried (records, handshake).

    `wire_in`/`wire_out` are the kernel's TCP_INFO counts; -1 when the OS has none."""

    session: int
    bytes_in: int
    bytes_out: int
    wire_in: int
    wire_out: int
    kind: ClassVar[str] = "tls_bytes"

    def explain(self) -> str:
        if self.wire_in < 0:
            return f"TLS ended: {self.bytes_in} plaintext bytes in, {self.bytes_out} out"
        return (f"TLS ended: {self.bytes_in} plaintext bytes in, {self.bytes_out} out; TCP carried "
                f"{self.wire_in} in, {self.wire_out} out (records and handshake)")


TERMINAL_EVENTS = (SessionClosed, SessionReset, SessionAborted)
