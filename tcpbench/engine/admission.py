"""Admission: who may connect to a listener, how many at once, and how the rest are turned away.

A listener's `AdmissionPolicy` holds its CIDR rules (`--allow` / `--deny`, as
ncat has them), its connection limit (`--max-conns`) and the way a refused
connection is turned away (`--refuse`), modelled on TCP wrappers:

- `close`: accept, then close at once. The peer sees the handshake succeed and
  then a FIN: a clean EOF with no data.
- `reset`: accept, then close with SO_LINGER 0. The peer sees RST
  ("connection reset by peer").
- `banner:TEXT`: accept, send TEXT and CRLF (say `421 Service not available`),
  FIN, drain what the peer sends for a short bounded time, close: a graceful
  close, never an RST.

Rules: deny wins over allow; with any allow rule, a peer must match one. An
IPv4 peer on a dual-stack listener arrives as an IPv4-mapped IPv6 address
(`::ffff:10.1.2.3`); it is matched as the IPv4 address it is, and also as the
mapped IPv6 one (a `::ffff:0:0/96` rule still works).

The decision is made before a connection gets a transport or a session (see
`Acceptor`), so a refused peer costs an accept and a close, and nothing a
service could be confused by. Every refusal is reported by the manager as a
`ConnectionRefusedByRule` event and counted per listener.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Union

from tcpbench.engine import events as ev

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]

REFUSE_MODES = ("close", "reset", "banner")
BANNER_LINGER = 1.0
"""Seconds a banner refusal drains the peer's input after its FIN before closing."""
BANNER_LIMIT = 512
"""Longest banner (bytes, CRLF included): it must fit the socket buffer in one send."""
MAX_LINGERING = 256
"""Banner refusals draining at once; beyond, a refusal closes at once (a storm must not pile up)."""

MAX_CONNS = "max-conns"
DENIED = "denied"
NOT_ALLOWED = "not-allowed"


class AdmissionError(ValueError):
    """A rule, a rules file or a refusal mode that cannot be used; the message is one line."""


def parse_cidr(text: str) -> Network:
    """`10.0.0.0/8`, `::1`, `fe80::/10`, `192.168.1.7` (a single host) as a network.

    Host bits may be set (`10.1.2.3/8` means `10.0.0.0/8`), as ncat accepts them.

    Errors: `AdmissionError` naming the text, for anything else.
    """
    cleaned = text.strip()
    try:
        return ipaddress.ip_network(cleaned, strict=False)
    except ValueError:
        raise AdmissionError(f"{text!r} is not an IPv4 or IPv6 address or CIDR "
                             "(e.g. 10.0.0.0/8, ::1, fd00::/8)") from None


def read_cidr_file(path: str) -> tuple[Network, ...]:
    """One CIDR per line; blank lines and `#` comments (whole-line or trailing) are skipped.

    Errors: `AdmissionError` for a file that cannot be read or a bad line (with its number).
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise AdmissionError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    networks = []
    for number, line in enumerate(lines, 1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            networks.append(parse_cidr(entry))
        except AdmissionError as exc:
            raise AdmissionError(f"{path} line {number}: {exc}") from None
    return tuple(networks)


@dataclass(frozen=True)
class Refusal:
    """How refused connections are turned away: `mode` is close, reset or banner."""

    mode: str = "close"
    banner: bytes = b""

    def describe(self) -> str:
        if self.mode == "banner":
            return "banner " + self.banner.decode("ascii", "replace").rstrip("\r\n")
        return self.mode


def parse_refusal(text: str) -> Refusal:
    """`close`, `reset`, or `banner:TEXT` (TEXT is sent with CRLF, printable ASCII only).

    Errors: `AdmissionError` for another mode, an empty or oversized banner, or
    control characters in it.
    """
    mode, sep, rest = text.partition(":")
    if mode in ("close", "reset") and not sep:
        return Refusal(mode)
    if mode == "banner":
        return banner_refusal(rest)
    raise AdmissionError(f"refusal {text!r}: expected close, reset or banner:TEXT")


def banner_refusal(text: str) -> Refusal:
    """A `banner` refusal sending `text` and CRLF. Errors: `AdmissionError`."""
    if not text.strip():
        raise AdmissionError("the refusal banner is empty (e.g. banner:421 Service not available)")
    if any(not (" " <= ch <= "~") for ch in text):
        raise AdmissionError("the refusal banner must be printable ASCII on one line")
    data = text.encode("ascii") + b"\r\n"
    if len(data) > BANNER_LIMIT:
        raise AdmissionError(f"the refusal banner is longer than {BANNER_LIMIT - 2} characters")
    return Refusal("banner", data)


@dataclass(frozen=True)
class AdmissionPolicy:
    """A listener's limits and rules. The default admits everyone, without limit.

    `decide(host, live)` is O(rules) with no I/O: it runs once per accepted connection.
    """

    allow: tuple[Network, ...] = ()
    deny: tuple[Network, ...] = ()
    max_conns: int | None = None
    refusal: Refusal = Refusal()

    def __post_init__(self) -> None:
        if self.max_conns is not None and self.max_conns < 1:
            raise AdmissionError(f"max-conns must be at least 1 (got {self.max_conns})")

    @property
    def restricts(self) -> bool:
        return bool(self.allow or self.deny or self.max_conns is not None)

    def decide(self, host: str, live: int) -> tuple[str, str] | None:
        """None to admit a peer at `host` while `live` connections are open; else
        (reason, detail): reason is `max-conns`, `denied` or `not-allowed`."""
        if self.allow or self.deny:
            forms = _forms(host)
            for network in self.deny:
                if any(address in network for address in forms):
                    return DENIED, f"denied by {network}"
            if self.allow and not any(address in network for network in self.allow
                                      for address in forms):
                return NOT_ALLOWED, "not in any allowed network"
        if self.max_conns is not None and live >= self.max_conns:
            return MAX_CONNS, f"{self.max_conns} connections already open (max-conns)"
        return None

    def describe(self) -> str:
        parts = []
        if self.max_conns is not None:
            parts.append(f"max {self.max_conns}")
        if self.allow:
            parts.append("allow " + ",".join(map(str, self.allow)))
        if self.deny:
            parts.append("deny " + ",".join(map(str, self.deny)))
        if parts:
            parts.append(f"refuse by {self.refusal.describe()}")
        return "; ".join(parts)


def build_policy(*, allow: Iterable[str] = (), deny: Iterable[str] = (), allow_files: Iterable[str] = (),
                 deny_files: Iterable[str] = (), max_conns: int | None = None,
                 refusal: Refusal | None = None) -> AdmissionPolicy:
    """A policy from the texts a person typed (flags or dialog fields).

    Errors: `AdmissionError` with one line naming the bad rule, file line or value.
    """
    allowed = [parse_cidr(text) for text in allow]
    denied = [parse_cidr(text) for text in deny]
    for path in allow_files:
        allowed.extend(read_cidr_file(path))
    for path in deny_files:
        denied.extend(read_cidr_file(path))
    return AdmissionPolicy(tuple(allowed), tuple(denied), max_conns, refusal or Refusal())


def _forms(host: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...]:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return ()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return (address.ipv4_mapped, address)
    return (address,)


class Gate:
    """A listener's `Acceptor` screen: applies `policy` to each accepted socket.

    Resource handling: a refused socket is turned away and closed here (banner
    refusals linger as tasks in `lingering`, which the owner cancels on shutdown).

    Errors: none raised; every refusal is emitted as a `ConnectionRefusedByRule`
    and counted through `on_refused`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, listener_id: int, policy: AdmissionPolicy,
                 emit: Callable[[ev.Event], None], live: Callable[[], int],
                 on_refused: Callable[[], None], lingering: set[asyncio.Task[None]]) -> None:
        self.loop = loop
        self.listener_id = listener_id
        self.policy = policy
        self.emit = emit
        self.live = live
        self.on_refused = on_refused
        self.lingering = lingering
        self.pending = 0
        """Admitted, not yet a registered session (its transport is being made): these
        count against max-conns too, or a burst would overshoot it."""

    def connected(self) -> None:
        """An admitted connection became a session (the owner's `register`)."""
        if self.pending:
            self.pending -= 1

    def failed(self) -> None:
        """An admitted connection never became a session (the peer reset it first)."""
        self.connected()

    def __call__(self, conn: socket.socket, address: Any) -> bool:
        host = str(address[0]) if isinstance(address, tuple) else ""
        verdict = self.policy.decide(host, self.live() + self.pending)
        if verdict is None:
            self.pending += 1
            return True
        reason, detail = verdict
        refusal = self.policy.refusal
        turn_away(self.loop, conn, refusal, self.lingering)
        self.on_refused()
        if host.startswith("::ffff:") and "." in host:
            host = host[7:]  # shown as sessions show it: the IPv4 peer it is
        port = int(address[1]) if isinstance(address, tuple) and len(address) > 1 else 0
        self.emit(ev.ConnectionRefusedByRule(time.monotonic(), self.listener_id, (host, port), reason,
                                             detail, refusal.mode))
        return False


# --- turning a connection away (socket level: before any transport exists) ---------------


def turn_away(loop: asyncio.AbstractEventLoop, conn: socket.socket, refusal: Refusal,
              lingering: set[asyncio.Task[None]]) -> None:
    """Turn the accepted socket `conn` away as `refusal` says; it is closed in the end.

    Resource handling: `conn` belongs to this function. A banner refusal runs
    as a task kept in `lingering` (cancel them to close their sockets at once);
    beyond `MAX_LINGERING` of them, a banner refusal closes without lingering.
    """
    conn.setblocking(False)
    if refusal.mode == "reset":
        try:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        conn.close()
        return
    if refusal.mode == "banner":
        try:
            conn.send(refusal.banner)  # small: it fits the empty send buffer at once
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            conn.close()
            return
        if len(lingering) < MAX_LINGERING:
            task = loop.create_task(_drain_then_close(loop, conn))
            lingering.add(task)
            task.add_done_callback(lingering.discard)
            return
    else:
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass
    _discard_input(conn)
    conn.close()


async def _drain_then_close(loop: asyncio.AbstractEventLoop, conn: socket.socket) -> None:
    # The peer may have sent a request before it read our banner: closing with that
    # unread would make the kernel answer with RST, and the peer might lose the banner.
    try:
        async with asyncio.timeout(BANNER_LINGER):
            while await loop.sock_recv(conn, 4096):
                pass
    except (OSError, TimeoutError):
        pass
    finally:
        conn.close()


def _discard_input(conn: socket.socket) -> None:
    # Bytes already received and unread turn close() into RST; read what has arrived.
    try:
        for _ in range(16):
            if not conn.recv(65536):
                return
    except OSError:
        pass
