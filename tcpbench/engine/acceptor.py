"""Accepting connections: keep the kernel's accept queue short, admit in small batches.

asyncio's `Server` accepts everything queued whenever the listening socket is
readable, then spends about 30 us per connection making its transport before it
looks at the socket again. A burst (a port scanner, a load test, a class of
students, 10,000 connects from one script) refills the kernel's queue during
that time; once the queue (`somaxconn`, 4096 here) is full the kernel drops SYNs
and every dropped client waits a whole second to retry. Measured with 10,000
connects: 1-2 s until all were accepted, with thousands of `ListenOverflows` in
`nstat`, against about 0.4 s of actual work.

The `Acceptor` drains the queue with up to `DRAIN_LIMIT` `accept()` calls between
batches of `BATCH` admissions, so accepted sockets wait in memory (bounded by
`MAX_WAITING`) instead of SYNs being dropped, and no drain holds the loop long, and hands each one to
`loop.connect_accepted_socket`: public asyncio API only, so it works on uvloop too.

Draining alone is not enough for a burst from one fast client: it issues
10,000 connects in 70 ms, and `accept()` costs 10-20 us here, so a single queue
of 4,096 still overflows. `bind_listening_sockets` therefore opens
`ACCEPT_QUEUES` sockets on the same port with SO_REUSEPORT (as nginx's
`reuseport` does): the kernel spreads new connections over their queues, and
16,384 handshakes can wait while we catch up. A port someone else already
listens on is still refused (a probe bind without SO_REUSEPORT comes first).
"""

from __future__ import annotations

import asyncio
import asyncio.selector_events
import errno
import socket
from collections import deque
from collections.abc import Callable
from typing import Any

Screen = Callable[[socket.socket, Any], bool]
"""`screen(conn, peer_address)`: True admits; False means it took `conn` (and turned it
away). If the screen has a `failed()` method, it is called for an admitted connection
that never got its transport (so a count of admissions in flight stays exact)."""

from tcpbench.engine.tls import SHUTDOWN_TIMEOUT

LISTEN_BACKLOG = 4096
"""Per queue; the kernel caps it at net.core.somaxconn (4096 on current kernels)."""
ACCEPT_QUEUES = 4
"""Listening sockets per listener (one where SO_REUSEPORT is missing)."""
BATCH = 64
"""Connections admitted (a transport each) between two drains of the kernel's queue."""
MAX_WAITING = 8192
"""Accepted sockets that may wait for their transport; beyond, the kernel queue holds them."""
DRAIN_LIMIT = 1024
"""`accept()` calls per loop iteration, over all queues (about 15-20 ms here).
Draining a storm's 3,000 queued connections in one go held every other session up
for 50-75 ms; the kernel's queues (`ACCEPT_QUEUES` x `LISTEN_BACKLOG`) hold the rest
until the next iteration. 256 per iteration cut the stall but made 10,000 connects
take 0.53 s to accept instead of 0.18 s."""
RESOURCE_PAUSE = 1.0
"""Seconds to stop accepting when the process is out of file descriptors or memory."""
_RESOURCE_ERRORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Acceptor:
    """Accepts on one listening socket and admits each connection with `protocol_factory`.

    Resource handling: owns the listening sockets (one port, one or more accept
    queues) and every accepted socket until its transport exists (then the
    transport owns it). `close()` stops accepting, closes the listening sockets
    and the sockets not yet admitted.

    Errors: running out of file descriptors (EMFILE) or memory pauses accepting
    for `RESOURCE_PAUSE` seconds and calls `on_trouble(exc)` once per pause;
    connections the peer abandoned before we accepted them are skipped.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, socks: list[socket.socket],
                 protocol_factory: Callable[[], asyncio.Protocol],
                 on_trouble: Callable[[OSError], None], screen: Screen | None = None, *,
                 tls: Any = None,
                 on_tls_failure: Callable[[Any, BaseException], None] | None = None) -> None:
        self.loop = loop
        self.screen = screen
        """Asked about each connection before it gets a transport (the listener's admission rules)."""
        self.tls = tls
        """A `tcpbench.engine.tls.ServerTls`: each connection's handshake runs before its
        protocol is made; a failure goes to `on_tls_failure(peer_address, exc)`."""
        self.on_tls_failure = on_tls_failure
        self.socks = socks
        self.protocol_factory = protocol_factory
        self.on_trouble = on_trouble
        self._waiting: deque[tuple[socket.socket, Any]] = deque()
        self._admitting: set[asyncio.Task[Any]] = set()
        self._batch_scheduled = False
        self._reading = False
        self._resume_handle: asyncio.TimerHandle | None = None
        self.closed = False
        self._make_transport = None if tls is not None else _direct_transport_maker(loop)
        """asyncio's own way to make an accepted socket's transport, where the loop has one
        and the listener is plain TCP (a TLS connection's handshake runs first, in a Task)."""

    def start(self) -> None:
        for sock in self.socks:
            sock.setblocking(False)
        self._read()

    def close(self) -> None:
        """Stop accepting now; close the listening socket and the sockets still waiting."""
        if self.closed:
            return
        self.closed = True
        self._unread()
        if self._resume_handle is not None:
            self._resume_handle.cancel()
        while self._waiting:
            self._waiting.popleft()[0].close()
        for sock in self.socks:
            sock.close()

    async def wait_closed(self) -> None:
        """Wait (briefly) for the admissions already under way."""
        if self._admitting:
            await asyncio.wait(list(self._admitting), timeout=1.0)

    # --- the accept loop ----------------------------------------------------------

    def _read(self) -> None:
        if not self._reading and not self.closed:
            for sock in self.socks:
                self.loop.add_reader(sock.fileno(), self._on_readable, sock)
            self._reading = True

    def _unread(self) -> None:
        if self._reading:
            for sock in self.socks:
                self.loop.remove_reader(sock.fileno())
            self._reading = False

    def _on_readable(self, sock: socket.socket) -> None:
        self._drain(sock)
        if self._waiting and not self._batch_scheduled:
            # At once, not at the next loop iteration: a lone connection (one request
            # with Connection: close) must not wait behind everything else that is ready.
            self._admit_batch()

    def _drain(self, sock: socket.socket) -> None:
        """Move up to `DRAIN_LIMIT` / queues of what `sock`'s kernel queue holds into `_waiting`.

        Each queue's reader drains its own queue once per loop iteration, so one
        iteration spends at most `DRAIN_LIMIT` accepts however deep the queues are.
        """
        waiting = self._waiting
        budget = min(DRAIN_LIMIT // len(self.socks), MAX_WAITING - len(waiting))
        accept = sock.accept
        while budget > 0:
            try:
                pair = accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the peer gave up before we accepted it
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRORS:
                    self._pause(exc)
                    return
                raise
            waiting.append(pair)
            budget -= 1
        if len(waiting) >= MAX_WAITING:
            self._unread()  # full: the kernel's queues hold the rest until we admit some

    def _admit_batch(self) -> None:
        self._batch_scheduled = False
        if self.closed:
            return
        waiting = self._waiting
        screen = self.screen
        for _ in range(min(BATCH, len(waiting))):
            conn, address = waiting.popleft()
            if screen is not None:
                try:
                    admitted = screen(conn, address)
                except Exception as exc:
                    conn.close()
                    self.loop.call_exception_handler({"message": "tcpbench: screening a connection "
                                                      "failed", "exception": exc})
                    continue
                if not admitted:
                    continue
            if self._make_transport is not None:
                self._admit_now(conn, address)
                continue
            # The task leaves `_admitting` itself as it ends: a done callback would cost
            # every connection one more turn of the loop.
            self._admitting.add(self.loop.create_task(self._admit(conn)))
        if self._resume_handle is None:
            self._read()  # if a full `_waiting` stopped it: the readers drain again next iteration
        if waiting and not self._batch_scheduled:
            self._batch_scheduled = True
            self.loop.call_soon(self._admit_batch)

    def _admit_now(self, conn: socket.socket, address: Any) -> None:
        """Give `conn` its transport at once, as asyncio's own server does for each accept
        (the peer's address from `accept()`, so the transport need not ask the kernel)."""
        try:
            conn.setblocking(False)
            self._make_transport(conn, self.protocol_factory(), extra={"peername": address})
        except BaseException as exc:
            self._not_admitted(conn, exc)

    async def _admit(self, conn: socket.socket) -> None:
        try:
            tls = self.tls
            if tls is not None:
                await self._admit_tls(conn, tls)
                return
            try:
                await self.loop.connect_accepted_socket(self.protocol_factory, conn)
            except BaseException as exc:
                self._not_admitted(conn, exc)
        finally:
            self._admitting.discard(asyncio.current_task())  # type: ignore[arg-type]

    def _not_admitted(self, conn: socket.socket, exc: BaseException) -> None:
        """`conn` got no transport because of `exc`: close it; report our own errors once."""
        conn.close()
        self._admission_failed()
        if isinstance(exc, OSError):
            return  # the peer reset it before it was admitted: nothing to report
        if not isinstance(exc, Exception):
            raise exc  # cancelled (the listener is closing), or the process is ending
        # Reported here, once: re-raising would report it again from an admission's task.
        self.loop.call_exception_handler({"message": "tcpbench: admitting a connection failed",
                                          "exception": exc})

    def _admission_failed(self) -> None:
        failed = getattr(self.screen, "failed", None)
        if failed is not None:
            failed()

    async def _admit_tls(self, conn: socket.socket, tls: Any) -> None:
        try:
            peer = conn.getpeername()
        except OSError:
            conn.close()
            self._admission_failed()
            return
        try:
            await self.loop.connect_accepted_socket(
                self.protocol_factory, conn, ssl=tls.context,
                ssl_handshake_timeout=tls.handshake_timeout, ssl_shutdown_timeout=SHUTDOWN_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            conn.close()  # a failed handshake: asyncio closed the transport; the socket too
            self._admission_failed()
            if self.on_tls_failure is not None and not self.closed:
                self.on_tls_failure(peer, exc)
        except BaseException:
            conn.close()
            self._admission_failed()
            raise

    def _pause(self, exc: OSError) -> None:
        self._unread()
        if self._resume_handle is None:
            self.on_trouble(exc)
            self._resume_handle = self.loop.call_later(RESOURCE_PAUSE, self._resume)

    def _resume(self) -> None:
        self._resume_handle = None
        self._read()


def _direct_transport_maker(loop: asyncio.AbstractEventLoop) -> Callable[..., Any] | None:
    """`loop._make_socket_transport` on asyncio's selector loop, else None.

    `connect_accepted_socket` (the public way, which every other loop gets) wraps
    that call in two coroutines, a Future and our Task per connection. Made directly,
    `serve http` answered `wrk -c50 -H 'Connection: close'` 6% faster (median of 5
    rotated rounds, +0.3% to +11%), and 10,000 connects were all accepted in 0.20 s
    instead of 0.22. asyncio's own `Server` calls `_make_socket_transport` for each
    accept, and so do we on the loop whose signature we know (CPython 3.11 to 3.13
    keep it); a subclass that overrides the transport's making, and uvloop, take the
    public path.
    """
    selector_loop = asyncio.selector_events.BaseSelectorEventLoop
    if (not isinstance(loop, selector_loop)
            or type(loop)._make_socket_transport is not selector_loop._make_socket_transport):
        return None
    return loop._make_socket_transport


async def bind_listening_sockets(loop: asyncio.AbstractEventLoop, host: str,
                                 port: int) -> list[socket.socket]:
    """Listening sockets on HOST:PORT (the first of its addresses), `ACCEPT_QUEUES` of them.

    `host` "::" or "" listens on IPv6 and IPv4 (dual-stack); port 0 picks a free
    port, which all the sockets then share.

    Errors: `OSError` from bind or listen (port in use, permission denied, an
    address not on this machine) and `socket.gaierror` for a name that does not
    resolve; nothing stays open after an error.
    """
    infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    if not infos:
        raise socket.gaierror(socket.EAI_NONAME, "no address")
    family, socktype, proto, _, sockaddr = infos[0]
    dual = family == socket.AF_INET6 and host in ("::", "")
    reuseport = hasattr(socket, "SO_REUSEPORT") and ACCEPT_QUEUES > 1
    if reuseport and port:
        # Someone else (even a program using SO_REUSEPORT itself) on this port must
        # make this fail as "port in use", never quietly share the port with us.
        _make_listening(family, socktype, proto, sockaddr, dual, reuseport=False).close()
    socks: list[socket.socket] = []
    try:
        first = _make_listening(family, socktype, proto, sockaddr, dual, reuseport=reuseport)
        socks.append(first)
        if reuseport:
            shared = first.getsockname()
            for _ in range(ACCEPT_QUEUES - 1):
                socks.append(_make_listening(family, socktype, proto, shared, dual, reuseport=True))
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def _make_listening(family: int, socktype: int, proto: int, address: Any, dual: bool, *,
                    reuseport: bool) -> socket.socket:
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            # "::" means every address, IPv4 included; asyncio would set V6ONLY.
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual else 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock
