"""TLS on the standard library's `ssl`: contexts, the handshake story, and why one failed.

TLS is added where a connection is created, never inside `Session`: asyncio's
`create_connection(ssl=...)`, `connect_accepted_socket(ssl=...)` and
`start_tls` wrap the socket transport, and the session (an `asyncio.Protocol`)
only ever sees plaintext. That keeps the session's byte counts and byte log
the plaintext; the bytes TCP carried (records and handshake included) come from
the kernel (`TCP_INFO`, `wire_counts`) and are reported when a TLS session ends.

A failed handshake is classified into one of `TLS_REASONS` with one line for a
person (`classify_tls_error`): the certificate is from an unknown CA or
self-signed, names another host, has expired; no common protocol version; the
peer does not speak TLS at all; it closed or reset the connection mid-handshake.
"""

from __future__ import annotations

import errno
import socket
import ssl
import struct
import time
import weakref
from dataclasses import dataclass
from typing import Any, Sequence

from tcpbench.engine import events as ev
from tcpbench.engine.errors import ConnectError

UNKNOWN_CA = "unknown_ca"
NAME_MISMATCH = "name_mismatch"
EXPIRED = "expired"
NOT_YET_VALID = "not_yet_valid"
PROTOCOL_VERSION = "protocol_version"
NOT_TLS = "not_tls"
CLOSED = "closed"
RESET = "reset"
TIMED_OUT = "timed_out"
HANDSHAKE_FAILED = "handshake_failed"
OTHER = "other"
TLS_REASONS = (UNKNOWN_CA, NAME_MISMATCH, EXPIRED, NOT_YET_VALID, PROTOCOL_VERSION, NOT_TLS,
               CLOSED, RESET, TIMED_OUT, HANDSHAKE_FAILED, OTHER)

HANDSHAKE_TIMEOUT = 10.0
"""Seconds a handshake may take before the connection is given up (asyncio's default is 60)."""
SHUTDOWN_TIMEOUT = 3.0
"""Seconds to wait for the peer's close_notify after ours before the socket is closed anyway."""

# OpenSSL's X509_V_ERR_* codes, as `SSLCertVerificationError.verify_code`.
_VERIFY_REASONS = {9: NOT_YET_VALID, 10: EXPIRED, 2: UNKNOWN_CA, 18: UNKNOWN_CA, 19: UNKNOWN_CA,
                   20: UNKNOWN_CA, 21: UNKNOWN_CA, 62: NAME_MISMATCH, 64: NAME_MISMATCH}
# OpenSSL's reason names, as `SSLError.reason`.
_SSL_REASONS = {
    "WRONG_VERSION_NUMBER": NOT_TLS, "PACKET_LENGTH_TOO_LONG": NOT_TLS, "HTTP_REQUEST": NOT_TLS,
    "RECORD_LAYER_FAILURE": NOT_TLS, "UNKNOWN_PROTOCOL": NOT_TLS, "BAD_RECORD_TYPE": NOT_TLS,
    "LENGTH_TOO_SHORT": NOT_TLS, "UNEXPECTED_MESSAGE": NOT_TLS, "HTTPS_PROXY_REQUEST": NOT_TLS,
    "UNSUPPORTED_PROTOCOL": PROTOCOL_VERSION, "TLSV1_ALERT_PROTOCOL_VERSION": PROTOCOL_VERSION,
    "NO_PROTOCOLS_AVAILABLE": PROTOCOL_VERSION, "VERSION_TOO_LOW": PROTOCOL_VERSION,
    "VERSION_TOO_HIGH": PROTOCOL_VERSION,
    "TLSV1_ALERT_UNKNOWN_CA": UNKNOWN_CA, "SSLV3_ALERT_BAD_CERTIFICATE": UNKNOWN_CA,
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": UNKNOWN_CA, "SSLV3_ALERT_CERTIFICATE_EXPIRED": EXPIRED,
    "UNEXPECTED_EOF_WHILE_READING": CLOSED,
    "SSLV3_ALERT_HANDSHAKE_FAILURE": HANDSHAKE_FAILED, "NO_SHARED_CIPHER": HANDSHAKE_FAILED,
    "NO_APPLICATION_PROTOCOL": HANDSHAKE_FAILED,
    "TLSV1_ALERT_NO_APPLICATION_PROTOCOL": HANDSHAKE_FAILED,
}
_PEER_REJECTED = ("TLSV1_ALERT_UNKNOWN_CA", "SSLV3_ALERT_BAD_CERTIFICATE",
                  "SSLV3_ALERT_CERTIFICATE_UNKNOWN", "SSLV3_ALERT_CERTIFICATE_EXPIRED")


class TlsHandshakeError(ConnectError):
    """TCP connected, but the TLS handshake failed. `reason` is one of `TLS_REASONS`."""

    def __init__(self, host: str, port: int, reason: str, message: str) -> None:
        Exception.__init__(self, f"TLS handshake with {_where(host, port)} failed: {message}")
        self.host = host
        self.port = port
        self.reason = reason
        self.os_message = message


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class TlsConfigError(ValueError):
    """A TLS setting cannot be used (a CA, certificate or key file that does not load, a bad
    ALPN name). `str()` is one line for a person."""


@dataclass(frozen=True)
class ClientTls:
    """How a client session does TLS: the context, and the name sent as SNI and verified."""

    context: ssl.SSLContext
    server_hostname: str | None
    verify: bool
    handshake_timeout: float = HANDSHAKE_TIMEOUT


def client_tls(host: str, *, sni: str | None = None, insecure: bool = False,
               ca_file: str | None = None, alpn: Sequence[str] = (),
               handshake_timeout: float = HANDSHAKE_TIMEOUT) -> ClientTls:
    """A client TLS setting for a connection to `host`.

    The certificate is verified against the system's CAs (or `ca_file`'s) and the
    name `sni` (default `host`) unless `insecure`. SNI is sent for names, not for
    IP literals (RFC 6066 forbids it).

    Errors: `TlsConfigError` for a CA file that does not load or a bad ALPN name.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise TlsConfigError(f"cannot use --ca {ca_file}: {_os_words(exc)}") from None
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    _set_alpn(context, alpn)
    return ClientTls(context, sni or host, not insecure, handshake_timeout)


@dataclass(frozen=True)
class ServerTls:
    """How a listener does TLS: the context, and the certificate it presents."""

    context: ssl.SSLContext
    der: bytes
    self_signed: bool
    handshake_timeout: float = HANDSHAKE_TIMEOUT

    @property
    def fingerprint(self) -> str:
        from tcpbench.engine.certs import fingerprint

        return fingerprint(self.der)

    @property
    def subject(self) -> str:
        from tcpbench.engine.certs import describe_der

        return describe_der(self.der).subject


def server_tls(host: str, *, cert_file: str | None = None, key_file: str | None = None,
               alpn: Sequence[str] = (), handshake_timeout: float = HANDSHAKE_TIMEOUT) -> ServerTls:
    """A listener TLS setting: `cert_file`/`key_file` (PEM; the key may be inside the
    certificate file), or without them a self-signed certificate made now for this
    machine's name, localhost, the loopback addresses and `host`.

    Errors: `TlsConfigError` when the files do not load or do not match.
    """
    from tcpbench.engine import certs

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _set_alpn(context, alpn)
    _remember_sni(context)
    if key_file and not cert_file:
        raise TlsConfigError("--key needs --cert (the certificate that goes with the key)")
    if cert_file:
        try:
            context.load_cert_chain(cert_file, key_file or None)
            with open(cert_file, "rb") as handle:
                der = certs.pem_to_der(handle.read())
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise TlsConfigError(f"cannot use --cert {cert_file}"
                                 f"{' --key ' + key_file if key_file else ''}: {_os_words(exc)}") from None
        return ServerTls(context, der, False, handshake_timeout)
    made = certs.make_self_signed(certs.default_names(host))
    certs.load_into(context, made)
    return ServerTls(context, made.der, True, handshake_timeout)


def service_alpn(service_name: str) -> tuple[str, ...]:
    """ALPN names a listener's service can honestly accept: HTTP/1.1 for http, none otherwise
    (a browser offering h2 then falls back to HTTP/1.1, which is what we speak)."""
    return ("http/1.1",) if service_name == "http" else ()


def _set_alpn(context: ssl.SSLContext, alpn: Sequence[str]) -> None:
    names = [name for name in alpn if name]
    for name in names:
        if not name.isascii() or not 0 < len(name) < 256 or not name.isprintable():
            raise TlsConfigError(f"bad ALPN protocol name {name!r} (e.g. h2,http/1.1)")
    if names:
        context.set_alpn_protocols(names)


_SNI_SEEN: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _remember_sni(context: ssl.SSLContext) -> None:
    # The server side of `ssl` does not keep the name a client asked for; the callback
    # runs during the handshake, so it is known when the session reports it.
    def on_sni(ssl_object: Any, server_name: str | None, _context: Any) -> None:
        if server_name:
            try:
                _SNI_SEEN[ssl_object] = server_name
            except TypeError:
                pass
        return None

    context.sni_callback = on_sni


def negotiated(session_id: int, ssl_object: Any) -> ev.TlsNegotiated:
    """The `TlsNegotiated` event for a completed handshake on `ssl_object` (an `SSLObject`)."""
    now = time.monotonic()
    verified = ssl_object.context.verify_mode != ssl.CERT_NONE
    name, _protocol, bits = ssl_object.cipher() or ("", "", 0)
    version = ssl_object.version() or ""
    alpn = ssl_object.selected_alpn_protocol() or ""
    if ssl_object.server_side:
        sni = _SNI_SEEN.get(ssl_object, "")
    else:  # an IP literal is verified but never sent as SNI (RFC 6066)
        sni = ssl_object.server_hostname or ""
        sni = "" if is_ip_literal(sni) else sni
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return ev.TlsNegotiated(now, session_id, version, name, bits or 0, alpn, sni, False)
    from tcpbench.engine.certs import describe_der

    try:
        info = describe_der(der)
    except ValueError:
        return ev.TlsNegotiated(now, session_id, version, name, bits or 0, alpn, sni, verified,
                                "(unreadable certificate)")
    return ev.TlsNegotiated(now, session_id, version, name, bits or 0, alpn, sni, verified,
                            info.subject, info.issuer, info.sans, info.not_before, info.not_after,
                            info.fingerprint)


def is_ip_literal(name: str) -> bool:
    """True for an IPv4 or IPv6 address (a scope id allowed), False for a name."""
    import ipaddress

    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return True


def wire_counts(transport: Any) -> tuple[int, int] | None:
    """(bytes received, bytes sent and acknowledged) as TCP counted them, or None where the
    OS does not say (Linux's TCP_INFO has them since 4.1)."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    tcp_info = getattr(socket, "TCP_INFO", None)
    if sock is None or tcp_info is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 144)
    except (OSError, ValueError):
        return None
    if len(raw) < 136:
        return None
    acked, received = struct.unpack_from("=QQ", raw, 120)
    return received, acked


def classify_tls_error(exc: BaseException, *, server_side: bool = False, name: str = "",
                       timeout: float = HANDSHAKE_TIMEOUT) -> tuple[str, str]:
    """Map a handshake failure to `(reason, one line for a person)`.

    `server_side` says the peer is a client of our listener (the wording differs:
    it rejected *our* certificate); `name` is the server name we verified.
    """
    peer = "the client" if server_side else "the peer"
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = _VERIFY_REASONS.get(exc.verify_code or 0, OTHER)
        detail = exc.verify_message or str(exc)
        if reason == UNKNOWN_CA:
            return reason, (f"certificate not trusted ({detail}): it is self-signed or from a CA "
                            "we do not know; trust its CA with --ca FILE, or skip verification "
                            "with --insecure")
        if reason == NAME_MISMATCH:
            return reason, (f"certificate name mismatch: it is not valid for {name!r} ({detail}); "
                            "ask for the name it carries with --sni NAME, or use --insecure")
        if reason == EXPIRED:
            return reason, f"certificate expired: {detail} (check the server's renewal, and this machine's clock)"
        if reason == NOT_YET_VALID:
            return reason, f"certificate not yet valid: {detail} (check this machine's clock)"
        return OTHER, f"certificate verification failed: {detail}"
    if isinstance(exc, ssl.SSLError):
        code = getattr(exc, "reason", None) or ""
        reason = _SSL_REASONS.get(code, CLOSED if isinstance(exc, ssl.SSLEOFError) else OTHER)
        words = code.lower().replace("_", " ") or str(exc)
        if reason == NOT_TLS:
            if code == "HTTP_REQUEST":
                return reason, ("the client sent plain HTTP to this TLS port (it should use "
                                "https://)")
            if server_side:
                return reason, f"the client does not speak TLS: its first bytes are not a TLS ClientHello ({words})"
            return reason, (f"the peer does not speak TLS on this port: its answer is not a TLS "
                            f"record ({words}); a plain-text service? try without --tls, or "
                            "--starttls")
        if reason in (UNKNOWN_CA, EXPIRED) and code in _PEER_REJECTED:
            if server_side:
                return reason, (f"the client rejected our certificate ({words}): expected with a "
                                "self-signed one until the client trusts it (curl --cacert, or -k)")
            return reason, f"the peer rejected our certificate ({words})"
        if reason == PROTOCOL_VERSION:
            return reason, f"no TLS version that both sides accept ({words})"
        if reason == HANDSHAKE_FAILED:
            return reason, f"{peer} refused the handshake ({words}): no cipher, group or ALPN protocol in common"
        if reason == CLOSED:
            return reason, (f"{peer} closed the connection during the TLS handshake"
                            + (" (a client that does not trust our certificate hangs up like this)"
                               if server_side else ""))
        return OTHER, f"TLS handshake failed: {words}"
    if isinstance(exc, (TimeoutError, ConnectionAbortedError)) and not getattr(exc, "errno", None):
        hint = "" if server_side else " (it may not speak TLS and be waiting for plain text)"
        return TIMED_OUT, f"no TLS handshake within {timeout:g} s{hint}"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        if getattr(exc, "errno", None) in (errno.ECONNRESET, errno.EPIPE):
            return RESET, f"{peer} reset the connection (RST) during the TLS handshake"
        # asyncio reports a FIN during the handshake as a bare ConnectionResetError.
        return CLOSED, (f"{peer} closed the connection during the TLS handshake"
                        + (" (a client that does not trust our certificate hangs up like this)"
                           if server_side else " (it may not speak TLS, or rejected our ClientHello)"))
    if isinstance(exc, OSError):
        return OTHER, f"TLS handshake failed: {_os_words(exc)}"
    return OTHER, f"TLS handshake failed: {exc or type(exc).__name__}"


def _os_words(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and getattr(exc, "reason", None):
        return str(exc.reason).lower().replace("_", " ")
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
