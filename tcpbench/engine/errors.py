"""Errors the engine raises, and how a failed connect or bind is classified.

The classification is the heart of "did my SYN arrive?": refused means an RST
(or ICMP port-unreachable) came back, timed out means nothing came back at all,
unreachable means a router or firewall answered with ICMP unreachable.
"""

from __future__ import annotations

import errno
import os
import socket

REFUSED = "refused"
TIMED_OUT = "timed_out"
HOST_UNREACHABLE = "host_unreachable"
NETWORK_UNREACHABLE = "network_unreachable"
NAME_NOT_RESOLVED = "name_not_resolved"
OTHER = "other"

CONNECT_REASONS = (REFUSED, TIMED_OUT, HOST_UNREACHABLE, NETWORK_UNREACHABLE, NAME_NOT_RESOLVED, OTHER)

_EXPLANATIONS = {
    REFUSED: "the host answered with RST or ICMP port-unreachable: nothing listens on that "
             "port, or a firewall REJECTs it",
    TIMED_OUT: "no answer at all: a firewall DROPs the packets, or the host is down or unreachable",
    HOST_UNREACHABLE: "a router or firewall answered with ICMP host-unreachable (for example REJECT "
                      "with icmp-host-prohibited), or the host is not on the local network",
    NETWORK_UNREACHABLE: "there is no route to that network, or a router answered with ICMP "
                         "net-unreachable",
    NAME_NOT_RESOLVED: "the name does not resolve: check the spelling, /etc/hosts or DNS",
    OTHER: "the connect failed for another reason; see the OS message",
}

_LABELS = {
    REFUSED: "connection refused",
    TIMED_OUT: "connection timed out",
    HOST_UNREACHABLE: "host unreachable",
    NETWORK_UNREACHABLE: "network unreachable",
    NAME_NOT_RESOLVED: "name not resolved",
    OTHER: "connect failed",
}


def explain_reason(reason: str) -> str:
    """One line on what a connect outcome usually means for the firewall."""
    return _EXPLANATIONS.get(reason, _EXPLANATIONS[OTHER])


def reason_label(reason: str) -> str:
    """A short human label: 'connection refused', 'host unreachable', ..."""
    return _LABELS.get(reason, _LABELS[OTHER])


def classify_connect_error(exc: BaseException) -> tuple[str, str]:
    """Map an exception from a connect attempt to `(reason, os_message)`."""
    if isinstance(exc, socket.gaierror):
        return NAME_NOT_RESOLVED, exc.strerror or str(exc)
    if isinstance(exc, (TimeoutError,)) and not getattr(exc, "errno", None):
        return TIMED_OUT, "no answer before the timeout"
    if isinstance(exc, OSError):
        code = exc.errno
        # asyncio's sock_connect puts "Connect call failed (addr)" in strerror;
        # the OS's own words for the errno are what people search for.
        message = (os.strerror(code) if code else None) or exc.strerror or str(exc)
        if code == errno.ECONNREFUSED:
            return REFUSED, message
        if code == errno.ETIMEDOUT:
            return TIMED_OUT, message
        if code in (errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.EACCES, errno.EPERM):
            # EACCES/EPERM on connect come from a local firewall REJECT with
            # icmp-admin-prohibited or an OUTPUT rule.
            return HOST_UNREACHABLE, message
        if code == errno.ENETUNREACH:
            return NETWORK_UNREACHABLE, message
        return OTHER, message
    return OTHER, str(exc) or type(exc).__name__


class TcpBenchError(Exception):
    """Base class of the engine's errors. `str()` is a one-line message for a person."""


class ConnectError(TcpBenchError):
    """A client connect failed. `reason` is one of CONNECT_REASONS."""

    def __init__(self, host: str, port: int, reason: str, os_message: str) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        self.os_message = os_message
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if reason == REFUSED:
            text = f"connection refused by {where}"
        elif reason == NAME_NOT_RESOLVED:
            text = f"cannot resolve {host!r} ({os_message})"
        else:
            text = f"{reason_label(reason)} connecting to {where} ({os_message})"
        super().__init__(f"{text}: {explain_reason(reason)}")


class ListenError(TcpBenchError):
    """A listener could not be started. `reason` is in_use, permission, address or other."""

    def __init__(self, host: str, port: int, reason: str, message: str) -> None:
        self.host = host
        self.port = port
        self.reason = reason
        super().__init__(message)


def classify_bind_error(exc: BaseException, host: str, port: int) -> ListenError:
    """Turn a bind/listen failure into a ListenError with a one-line message."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return ListenError(host, port, "address", f"cannot listen on {where}: unknown host {host!r}")
    if isinstance(exc, OSError):
        if exc.errno == errno.EADDRINUSE:
            return ListenError(host, port, "in_use",
                               f"cannot listen on {where}: port {port} is already in use "
                               "(another program listens there; pick another port or 0 for any)")
        if exc.errno in (errno.EACCES, errno.EPERM):
            return ListenError(host, port, "permission",
                               f"cannot listen on {where}: permission denied "
                               "(ports below 1024 need root or CAP_NET_BIND_SERVICE)")
        if exc.errno == errno.EADDRNOTAVAIL:
            return ListenError(host, port, "address",
                               f"cannot listen on {where}: {host} is not an address of this machine")
        return ListenError(host, port, "other", f"cannot listen on {where}: {exc.strerror or exc}")
    return ListenError(host, port, "other", f"cannot listen on {where}: {exc}")
