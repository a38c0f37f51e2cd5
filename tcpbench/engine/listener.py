"""A listening socket as the manager keeps it (`Listener`), and the checks before it listens."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from tcpbench.engine.acceptor import Acceptor
from tcpbench.engine.admission import AdmissionPolicy, Gate
from tcpbench.engine.bytestore import ByteStore
from tcpbench.engine.idle import IdleWatch
from tcpbench.engine.tls import ServerTls
from tcpbench.services.base import Service


@dataclass
class Listener:
    """A listening socket and the service that answers its connections."""

    id: int
    service: Service
    address: tuple[str, int]
    acceptor: Acceptor
    idle_timeout: float | None = None
    tls: ServerTls | None = None
    """The TLS setting when the listener speaks TLS (its certificate, fingerprint)."""
    tls_failures: int = 0
    """Clients whose TLS handshake failed (they never became sessions)."""
    sessions: set[int] = field(default_factory=set)
    accepted: int = 0
    admission: AdmissionPolicy | None = None
    """Who may connect, how many at once, how the others are turned away (None: everyone)."""
    refused: int = 0
    """Connections turned away by `admission` (each was a `ConnectionRefusedByRule` event)."""
    idle: IdleWatch | None = None
    gate: Gate | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    state: str = "listening"
    started_at: float = field(default_factory=time.monotonic)
    dirty: bool = True
    notes: ByteStore = field(default_factory=lambda: ByteStore(0))
    """Listener-wide notes that belong to no live session: the operator's chat lines,
    the fuzz seed, a note about a session that has already ended. Bounded; records carry
    session 0 (or the ended session's id). A viewer merges it with the listener's sessions."""

    @property
    def service_name(self) -> str:
        return self.service.name

    @property
    def port(self) -> int:
        return self.address[1]



async def listen_check(loop: asyncio.AbstractEventLoop, service: Service,
                        socks: list[socket.socket]) -> str | None:
    """The service's refusal of the bound address (`Service.listen_check`), or None."""
    check = service.listen_check
    if check is None:
        return None
    sock = socks[0]
    dual = (sock.family == socket.AF_INET6
            and not sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY))
    try:
        return await check(short_address(sock.getsockname()), dual, loop.getaddrinfo)
    except BaseException:
        for s in socks:
            s.close()
        raise


def short_address(address: Any) -> tuple[str, int]:
    """(host, port) of a socket address (IPv6 addresses carry flow info and scope too)."""
    return (address[0], int(address[1]))

