"""The contract between the engine and a service.

A service is the protocol logic of one listener. It is sans-IO: the engine calls
it with what happened (a session opened, bytes arrived, the peer sent FIN, a
timer tick, the operator typed something) and the current time, and it answers
with a list of *effects* (send these bytes to that session, close it, tell the
operator something). The engine alone turns effects into socket operations. So a
service never touches a socket, a task or the clock, and is tested with plain
function calls.

Services whose job *is* I/O (fuzz streaming at line rate, exec's child process,
relay's upstream connection) set `handler` instead: the engine then runs
`handler(conn)` as a task per session, where `conn` is a small async API with
flow control (see `tcpbench.engine.conduit.Conduit`). Their decision logic still
lives in pure helpers where there is any.

One service object serves all sessions of its listener, so shared state (a chat
room, an HTTP directory) lives on it; per-session state is keyed by session id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

# --- effects -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Queue bytes to a session. The engine applies flow control."""

    session: int
    data: bytes


@dataclass(frozen=True, slots=True)
class SendFile:
    """Stream `length` bytes of the file at `path`, from `offset`, to a session.

    The engine reads the file in chunks as the peer takes them (flow control), so
    a big file is never held whole. Effects for the same session that come after
    it wait until it is all sent. If the file cannot be read to the end, the
    session is aborted: the peer was promised `length` bytes.
    """

    session: int
    path: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class HalfClose:
    """Send FIN after the queued bytes; keep reading."""

    session: int


@dataclass(frozen=True, slots=True)
class Close:
    """Graceful close: flush, send FIN, drain the peer briefly, close. Never RST."""

    session: int


@dataclass(frozen=True, slots=True)
class Abort:
    """Close at once with RST (SO_LINGER 0)."""

    session: int
    reason: str = "aborted by the service"


@dataclass(frozen=True, slots=True)
class Resume:
    """Call the service's `writable(session, now)` once the session's send buffer is below
    its low-water mark (soon, if it is already): a service that holds work back until
    the peer reads (http's pipelined answers) asks for it to go on."""

    session: int


@dataclass(frozen=True, slots=True)
class Note:
    """Tell the operator something (access log, chat line, warning)."""

    text: str
    session: int | None = None
    topic: str = "note"
    fields: tuple[tuple[str, Any], ...] = ()


Effect = Send | SendFile | HalfClose | Close | Abort | Note | Resume
Effects = list[Effect]


# --- options -------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One option of a service, declared once for the CLI and the UI dialog.

    `name` is the Python name (`keep_open`); the CLI flag is `--keep-open`.
    `type` is str, int, float, bool (a flag) or list (a repeatable str).
    """

    name: str
    type: type
    default: Any = None
    help: str = ""
    metavar: str | None = None
    choices: Sequence[str] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


class OptionError(ValueError):
    """A service option has a bad value; `str()` is a one-line message."""


# --- the service base class -------------------------------------------------------


class Service:
    """Base class: every hook does nothing and returns no effects.

    Subclasses set `name`, `summary`, `options` and override the hooks they need.
    """

    name: ClassVar[str] = "service"
    summary: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()

    tick_interval: float | None = None
    """If set, the engine calls `tick(now)` about this often (seconds)."""

    backlog_limit: int | None = None
    """If set, a session whose unsent bytes exceed this is reported through
    `backlog_exceeded` instead of throttling the reader (chat: a slow client must
    not stall the room). If None, a session whose peer reads slowly has its own
    reading paused until its send buffer drains (echo: a client that does not
    read slows the echo)."""

    handler: Callable[..., Any] | None = None
    """If set, an `async def handler(conduit)` run as one task per session; the
    sans-IO hooks below are then not called for data."""

    listen_check: Callable[..., Any] | None = None
    """If set, `await listen_check(address, dual, getaddrinfo)` runs once the socket is
    bound: a returned str refuses the listener with that one-line reason (relay: a
    target that is the listener itself would be a loop). `dual`: an IPv6 wildcard
    socket that takes IPv4 too; `getaddrinfo` is the loop's resolver."""

    close_on_peer_fin: bool = True
    """After the peer's FIN, close our side once our queued bytes are out."""

    def session_opened(self, session: int, peer: tuple[str, int], local: tuple[str, int],
                       now: float) -> Effects:
        return []

    def data_received(self, session: int, data: bytes, now: float) -> Effects:
        return []

    def peer_half_closed(self, session: int, now: float) -> Effects:
        return [Close(session)] if self.close_on_peer_fin else []

    def session_closed(self, session: int, now: float) -> Effects:
        return []

    def writable(self, session: int, now: float) -> Effects:
        """The session's send buffer drained after a `Resume` effect asked to be told."""
        return []

    def backlog_exceeded(self, session: int, now: float) -> Effects:
        return [Abort(session, "its unsent backlog exceeded the limit")]

    def tick(self, now: float) -> Effects:
        return []

    def operator_input(self, data: bytes, now: float) -> Effects:
        """The operator typed into the listener (the UI's send bar, stdin in headless mode)."""
        return []

    def operator_closed(self, now: float) -> Effects:
        """The operator's input ended (EOF on stdin in headless mode): nothing more will come."""
        return []

    def describe(self) -> str:
        """A short description of this listener's configuration, for the UI."""
        return self.name


@dataclass(frozen=True)
class ServiceInfo:
    """What the registry knows about a service before one is built."""

    name: str
    summary: str
    options: tuple[Option, ...]
    build: Callable[..., Service]
    dangerous: bool = False
    """Needs explicit opt-in (exec)."""
    extra: dict[str, Any] = field(default_factory=dict)
