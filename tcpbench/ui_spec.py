"""Parsing the UI's start-up flags: `--listen SERVICE:[HOST:]PORT` and `--connect HOST:PORT`.

Kept apart from the app so bad flags are reported (one line, exit status 2)
before Textual is even imported. IPv6 hosts go in brackets: `echo:[::1]:7000`.
"""

from __future__ import annotations

from dataclasses import dataclass

from tcpbench.usage import UsageError


@dataclass(frozen=True)
class ListenSpec:
    service: str
    host: str
    port: int


@dataclass(frozen=True)
class ConnectSpec:
    host: str
    port: int


def _port(text: str, where: str) -> int:
    # ASCII only: str.isdigit() also takes '²' and '١', which int() refuses or reads.
    if not (text.isascii() and text.isdigit()):
        raise UsageError(f"{where}: port {text!r} is not a number (0-65535)")
    port = int(text)
    if port > 65535:
        raise UsageError(f"{where}: port {port} is out of range (0-65535)")
    return port


def split_host_port(text: str, where: str, *, default_host: str | None = None) -> tuple[str, int]:
    """`HOST:PORT`, `[V6]:PORT`, or just `PORT` when `default_host` is given.

    Errors: `UsageError` with one line naming `where` (the flag and its value).
    """
    text = text.strip()
    if text.startswith("["):
        end = text.find("]")
        if end == -1:
            raise UsageError(f"{where}: missing ']' after the IPv6 address")
        host, rest = text[1:end], text[end + 1:]
        if not host:
            raise UsageError(f"{where}: empty IPv6 address in brackets")
        if not rest.startswith(":"):
            raise UsageError(f"{where}: expected ':PORT' after ']'")
        return host, _port(rest[1:], where)
    if ":" not in text:
        if default_host is None:
            raise UsageError(f"{where}: expected HOST:PORT")
        return default_host, _port(text, where)
    host, _, port = text.rpartition(":")
    if ":" in host:
        raise UsageError(f"{where}: put an IPv6 address in brackets, e.g. [::1]:7000")
    if not host:
        if default_host is None:
            raise UsageError(f"{where}: expected HOST:PORT (the host is empty)")
        host = default_host
    return host, _port(port, where)


def parse_listen(text: str, known_services: object = None) -> ListenSpec:
    """`SERVICE:[HOST:]PORT`; the host defaults to 127.0.0.1 (this machine only).

    `known_services` (a container of names), when given, is checked too.
    """
    where = f"--listen {text!r}"
    service, sep, rest = text.partition(":")
    if not sep or not service:
        raise UsageError(f"{where}: expected SERVICE:[HOST:]PORT, e.g. echo:7000")
    if known_services is not None and service not in known_services:  # type: ignore[operator]
        names = ", ".join(sorted(known_services))  # type: ignore[call-overload]
        raise UsageError(f"{where}: unknown service {service!r} (known: {names})")
    host, port = split_host_port(rest, where, default_host="127.0.0.1")
    return ListenSpec(service, host, port)


def parse_connect(text: str) -> ConnectSpec:
    """`HOST:PORT` or `[V6]:PORT`; port 0 is not a place to connect to."""
    where = f"--connect {text!r}"
    host, port = split_host_port(text, where)
    if port == 0:
        raise UsageError(f"{where}: port 0 cannot be connected to (1-65535)")
    return ConnectSpec(host, port)
