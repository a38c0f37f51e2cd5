"""Running a client TLS handshake for the `SessionManager`: at connect, or midway (STARTTLS).

Kept apart from the manager so the manager stays about owning things; these
functions only need the loop and the `emit` verb (`TlsOwner`).
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING, Protocol

from tcpbench.engine import events as ev
from tcpbench.engine.tls import (CLOSED, SHUTDOWN_TIMEOUT, ClientTls, TlsHandshakeError,
                                 classify_tls_error)

if TYPE_CHECKING:
    from tcpbench.engine.session import Session


class TlsOwner(Protocol):
    loop: asyncio.AbstractEventLoop

    def emit(self, event: ev.Event) -> None: ...


async def connect_tls(owner: TlsOwner, session: Session, sock: socket.socket, tls: ClientTls,
                      host: str, port: int) -> Session:
    """Wrap the connected `sock` in TLS with `session` as its protocol; return the session.

    Resource handling: `sock` is closed on every failure. Errors: `TlsHandshakeError`
    after a `TlsHandshakeFailed` event.
    """
    # Outside the connect timeout: a slow handshake is its own failure, with its own bound.
    peer = sock.getpeername()
    peer = (peer[0], int(peer[1]))
    try:
        async with asyncio.timeout(tls.handshake_timeout + 1.0):
            await owner.loop.create_connection(
                lambda: session, sock=sock, ssl=tls.context, server_hostname=tls.server_hostname,
                ssl_handshake_timeout=tls.handshake_timeout, ssl_shutdown_timeout=SHUTDOWN_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        sock.close()
        reason, message = classify_tls_error(exc, name=tls.server_hostname or host,
                                             timeout=tls.handshake_timeout)
        owner.emit(ev.TlsHandshakeFailed(time.monotonic(), session.id, None, peer, reason, message))
        raise TlsHandshakeError(host, port, reason, message) from None
    except BaseException:
        sock.close()
        raise
    return session


async def start_tls(owner: TlsOwner, session: Session, tls: ClientTls) -> None:
    """STARTTLS: the handshake on `session`'s open connection; see `SessionManager.start_tls`."""
    transport = session.transport
    if transport is None or session.is_finished:
        raise TlsHandshakeError(*session.peer, CLOSED, "the connection has already ended")
    try:
        new_transport = await owner.loop.start_tls(
            transport, session, tls.context, server_hostname=tls.server_hostname,
            ssl_handshake_timeout=tls.handshake_timeout, ssl_shutdown_timeout=SHUTDOWN_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        reason, message = classify_tls_error(exc, name=tls.server_hostname or session.peer[0],
                                             timeout=tls.handshake_timeout)
        failed = ev.TlsHandshakeFailed(time.monotonic(), session.id, None, session.peer, reason,
                                       message)
        session.store.add_event(failed, session.id)
        owner.emit(failed)
        session.abort("the TLS handshake failed")
        raise TlsHandshakeError(*session.peer, reason, message) from None
    session.tls_started(new_transport)
