"""The TLS part of a probe: on an open port, does a TLS handshake succeed, and with what?

Like `openssl s_client -connect`, it reports what the server presents rather than
deciding whether to trust it: the handshake does not verify the certificate
(a probe of a self-signed or expired service must still say what is there), and
the certificate's subject and expiry are read from it. With a banner wanted, the
greeting is read inside TLS (SMTPS, IMAPS, POP3S greet there).
"""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
from dataclasses import dataclass

from tcpbench.engine.tls import (HANDSHAKE_TIMEOUT, SHUTDOWN_TIMEOUT, is_ip_literal,
                                 classify_tls_error, negotiated)

BANNER_LIMIT = 4096
BANNER_QUIET = 0.25
CLOSE_WAIT = 1.0


@dataclass(frozen=True)
class TlsProbe:
    """Whether TLS was negotiated on a port; peer text escaped only when shown."""

    negotiated: bool
    version: str = ""
    cipher: str = ""
    alpn: str = ""
    subject: str = ""
    issuer: str = ""
    not_after: str = ""
    """ISO 8601, UTC ('' when no certificate)."""
    reason: str = ""
    """Why not (one of `tcpbench.engine.tls.TLS_REASONS`), when not negotiated."""
    error: str = ""

    def expires_in_days(self, now: datetime.datetime | None = None) -> float | None:
        if not self.not_after:
            return None
        end = datetime.datetime.strptime(self.not_after, "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=datetime.timezone.utc)
        now = now or datetime.datetime.now(datetime.timezone.utc)
        return (end - now).total_seconds() / 86400

    def to_dict(self) -> dict[str, object]:
        return {"negotiated": self.negotiated, "version": self.version, "cipher": self.cipher,
                "alpn": self.alpn, "subject": self.subject, "issuer": self.issuer,
                "not_after": self.not_after, "reason": self.reason, "error": self.error}


def probe_context() -> ssl.SSLContext:
    """A client context that shows whatever the server presents (no verification)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _Reader(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = bytearray()
        self.ended: str | None = None
        self.changed = asyncio.Event()
        self.lost = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.data += data
        self.changed.set()

    def eof_received(self) -> bool:
        self.ended = "closed"
        self.changed.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.ended is None:
            self.ended = "reset" if isinstance(exc, ConnectionResetError) else "closed"
        self.changed.set()
        if not self.lost.done():
            self.lost.set_result(None)


async def tls_probe(sock: socket.socket, host: str, *, timeout: float, banner: bool = False,
                    send: bytes | None = None, greeting_wait: float = 0.5
                    ) -> tuple[TlsProbe, bytes | None, bytes | None]:
    """Handshake on the connected `sock`; then (with `banner`) read the greeting inside
    TLS, send `send` and read the answer. Returns `(result, banner, answer)`.

    `host` is sent as SNI when it is a name. Resource handling: the TLS connection is
    closed (close_notify, bounded) before this returns; the caller still closes `sock`.
    Errors: none; a failed handshake is a result with `negotiated=False`.
    """
    loop = asyncio.get_running_loop()
    sni = None if is_ip_literal(host) else host
    handshake = min(timeout, HANDSHAKE_TIMEOUT)
    try:
        async with asyncio.timeout(handshake + 1.0):
            transport, reader = await loop.create_connection(
                _Reader, sock=sock, ssl=probe_context(), server_hostname=sni or "",
                ssl_handshake_timeout=handshake, ssl_shutdown_timeout=SHUTDOWN_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        reason, message = classify_tls_error(exc, timeout=handshake)
        return TlsProbe(False, reason=reason, error=message), None, None
    try:
        info = negotiated(0, transport.get_extra_info("ssl_object"))
        result = TlsProbe(True, info.version, info.cipher, info.alpn, info.subject, info.issuer,
                          info.not_after)
        greeting = answer = None
        if banner or send is not None:
            greeting = await _read(reader, greeting_wait if send is not None else timeout)
            if send is not None and reader.ended is None:
                transport.write(send)
                answer = await _read(reader, timeout)
        return result, greeting, answer
    finally:
        transport.close()
        try:
            await asyncio.wait_for(asyncio.shield(reader.lost), CLOSE_WAIT)
        except TimeoutError:
            transport.abort()


async def _read(reader: _Reader, wait: float) -> bytes:
    loop = asyncio.get_running_loop()
    start = len(reader.data)
    deadline = loop.time() + wait
    while len(reader.data) - start < BANNER_LIMIT and reader.ended is None:
        remaining = deadline - loop.time()
        if len(reader.data) > start:
            remaining = min(remaining, BANNER_QUIET)
        if remaining <= 0:
            break
        reader.changed.clear()
        try:
            await asyncio.wait_for(reader.changed.wait(), remaining)
        except TimeoutError:
            break
    return bytes(reader.data[start:start + BANNER_LIMIT])
