"""Port probe: does a SYN to HOST:PORT get an answer, and what kind?

Like `nc -vz` (and `nc -vt` with `banner=True`), but every result says what it
usually means for a firewall: open (the handshake completed), refused (RST or
ICMP port-unreachable), timed out (nothing came back: DROP), host or network
unreachable (an ICMP error from a router or a REJECT rule).

The name is resolved once and every address it has (IPv4 and IPv6) is probed,
because a firewall rule often covers one family and not the other. Results
come back in the order of the requested ports (then addresses), each as soon
as it and every result before it is known, so a table can be printed as the
probe runs.

This module is asyncio and stdlib only; the CLI and the UI both use it.
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, AsyncIterator, Iterable, Sequence

from tcpbench.engine.errors import (NAME_NOT_RESOLVED, OTHER, TIMED_OUT, classify_connect_error,
                                    explain_reason)
from tcpbench.safetext import escape_bytes, unescape_bytes

if TYPE_CHECKING:
    # Imported where --tls is asked for: ssl and the TLS layer (with the engine's
    # events) cost a plain `nc -vz`-style probe tens of ms of start-up.
    from tcpbench.engine.probe_tls import TlsProbe

OPEN = "open"
OUTCOMES = (OPEN, "refused", TIMED_OUT, "host_unreachable", "network_unreachable",
            NAME_NOT_RESOLVED, OTHER)

EXPLAIN_OPEN = ("the port accepts connections; a service (or something in front of it) "
                "answered the handshake")
EXPLAIN_SERVICE_REFUSED = (
    "the handshake succeeded (no firewall blocks the port), but the service turned us away at "
    "once ({how}): that is how TCP wrappers (/etc/hosts.deny) or the service's own access "
    "list says no; check hosts.deny and the service's log")

DEFAULT_TIMEOUT = 3.0
DEFAULT_CONCURRENCY = 100
MAX_CONCURRENCY = 1000
BANNER_LIMIT = 4096
# Once a banner starts, keep reading until the peer is quiet this long (SMTP
# greetings can be several lines in several segments).
BANNER_QUIET = 0.25
# With --send we listen for a greeting only this long before sending, so
# services that wait for the client (HTTP) do not cost the full timeout.
GREETING_BEFORE_SEND = 0.5
# Graceful close: after our FIN, read (and drop) the peer's bytes until its FIN
# or a linger. Closing with unread input would make the kernel send RST. The
# linger scales with the connect's round trip: a peer that answers our FIN does
# so within a few round trips, while a listener that never accepts (a full
# backlog, a stopped process) never answers, and a flat wait would cost every
# such port the whole cap.
CLOSE_LINGER_MIN = 0.05
CLOSE_LINGER_MAX = 0.5
CLOSE_LINGER_ROUND_TRIPS = 10


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one connect attempt to one address and port.

    `outcome` is one of OUTCOMES; `ms` is the connect time in milliseconds (the
    time until the answer, or until we gave up); `error` is the OS message ("" when
    open); `banner` and `answer` are the raw bytes the service sent first and after
    our `send` (None when not asked for). `service_refused` is set when the port is
    open but the service refused us at once (a `421` greeting, or an immediate
    close or reset with no data), the TCP-wrappers pattern.
    `port` is None only for a name-not-resolved result, which stands for all ports.
    """

    host: str
    address: str
    port: int | None
    outcome: str
    ms: float
    error: str
    explanation: str
    banner: bytes | None = None
    answer: bytes | None = None
    service_refused: bool = False
    tls: TlsProbe | None = None
    """With `tls=True`: whether a TLS handshake succeeded on the open port, and with what."""

    @property
    def ok(self) -> bool:
        """True when the port is open, the service did not turn us away, and TLS (if asked
        for) was negotiated."""
        return (self.outcome == OPEN and not self.service_refused
                and (self.tls is None or self.tls.negotiated))

    def to_dict(self) -> dict[str, object]:
        """A JSON-safe dict; peer bytes are escaped to printable ASCII."""
        return {
            "host": self.host, "address": self.address, "port": self.port,
            "outcome": self.outcome, "ms": round(self.ms, 3), "error": self.error,
            "explanation": self.explanation,
            "banner": None if self.banner is None else escape_bytes(self.banner),
            "answer": None if self.answer is None else escape_bytes(self.answer),
            "service_refused": self.service_refused,
            **({} if self.tls is None else {"tls": self.tls.to_dict()}),
        }


MAX_PORT = 65535


def parse_ports(text: str) -> list[int]:
    """`22`, `22,80,443`, `8000-8010`, `ssh`, `http`, or a mix: the ports, deduplicated, in order.

    Service names are looked up with `socket.getservbyname(name, "tcp")`.
    Errors: `ValueError` with a one-line message naming the bad item.
    """
    ports: dict[int, None] = {}
    items = text.split(",")
    for raw in items:
        item = raw.strip()
        if not item:
            raise ValueError(f"empty item in port list {text!r} (write e.g. 22,80,8000-8010)")
        if "-" in item and not _is_service(item):
            low_text, _, high_text = item.partition("-")
            low, high = _one_port(low_text.strip(), item), _one_port(high_text.strip(), item)
            if low > high:
                raise ValueError(f"port range {item!r} runs backwards (write {high}-{low})")
            for port in range(low, high + 1):
                ports.setdefault(port, None)
        else:
            ports.setdefault(_one_port(item, item), None)
    return list(ports)


def _is_service(name: str) -> bool:
    try:
        socket.getservbyname(name, "tcp")
    except (OSError, UnicodeError, ValueError):  # ValueError: a NUL in the name
        return False
    return True


def _one_port(text: str, item: str) -> int:
    if text.isascii() and text.isdigit():  # not '²' (isdigit, but int() refuses it)
        port = int(text)
        if not 1 <= port <= MAX_PORT:
            raise ValueError(f"port {port} is out of range (1-{MAX_PORT})")
        return port
    if not text or not all(c.isalnum() or c in "-_." for c in text) or not text.isascii():
        raise ValueError(f"bad port {item!r}: give a number (1-{MAX_PORT}), a range like "
                         "8000-8010 or a service name like ssh")
    try:
        return socket.getservbyname(text, "tcp")
    except OSError:
        raise ValueError(f"unknown service name {text!r} (not in /etc/services; give the "
                         "port number)") from None


def outcome_label(outcome: str) -> str:
    """'timed_out' -> 'timed out': the word a person reads in the table."""
    return outcome.replace("_", " ")


async def resolve_addresses(host: str) -> list[str]:
    """Every address `host` resolves to, IPv4 and IPv6, without duplicates, in resolver order.

    Errors: `socket.gaierror` when the name does not resolve.
    """
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for family, _, _, _, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            address = sockaddr[0]
            if family == socket.AF_INET6 and sockaddr[3]:
                address = f"{address}%{sockaddr[3]}" if "%" not in address else address
            seen.setdefault(address, None)
    if not seen:
        raise socket.gaierror(socket.EAI_NONAME, "no IPv4 or IPv6 address")
    return list(seen)


async def probe(host: str, ports: Sequence[int], *, timeout: float = DEFAULT_TIMEOUT,
                concurrency: int = DEFAULT_CONCURRENCY, banner: bool = False,
                send: bytes | None = None, addresses: Sequence[str] | None = None,
                tls: bool = False) -> AsyncIterator[ProbeResult]:
    """Probe every port on every address of `host`; yield results in port, then address, order.

    `timeout` bounds each connect, and separately each banner read. At most
    `concurrency` connects are in flight. With `banner` (implied by `send`), an
    open port is read for what the service says first; `send` (bytes, sent as
    given) is written after that and the answer read too. `addresses` skips
    resolution (the caller resolved with `resolve_addresses`). With `tls`, each open
    port also gets a TLS handshake (see `tcpbench.engine.probe_tls`), and the banner
    is read inside TLS.

    Resource handling: every socket is closed before its result is yielded; open
    ones gracefully (our FIN, then the peer's input drained for up to
    `close_linger`), so no probe causes a RST. Closing the generator early cancels
    the probes in flight and closes their sockets.

    Errors: `ValueError` for a bad timeout or concurrency. Connect failures are
    results, not exceptions; an unresolvable name is one result with
    outcome name_not_resolved and port None.
    """
    if not timeout > 0:
        raise ValueError("timeout must be greater than 0")
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be between 1 and {MAX_CONCURRENCY}")
    if addresses is None:
        try:
            addresses = await resolve_addresses(host)
        except (socket.gaierror, UnicodeError) as exc:
            _, message = classify_connect_error(exc) if isinstance(exc, OSError) else (None, str(exc))
            yield ProbeResult(host, "", None, NAME_NOT_RESOLVED, 0.0, message,
                              explain_reason(NAME_NOT_RESOLVED))
            return
    jobs = [(port, address) for port in ports for address in addresses]
    results: dict[int, ProbeResult] = {}
    ready = asyncio.Event()
    next_job = iter(range(len(jobs)))

    async def worker() -> None:
        try:
            for index in next_job:
                port, address = jobs[index]
                results[index] = await probe_one(host, address, port, timeout=timeout,
                                                 banner=banner or send is not None, send=send,
                                                 tls=tls)
                ready.set()
        finally:
            ready.set()  # a worker that died must wake the consumer, which re-raises

    workers = [asyncio.create_task(worker(), name="tcpbench-probe")
               for _ in range(min(concurrency, len(jobs)))]
    try:
        for index in range(len(jobs)):
            while index not in results:
                failed = [w for w in workers if w.done() and not w.cancelled() and w.exception()]
                if failed:
                    raise failed[0].exception()  # type: ignore[misc]  # our bug: surface it
                ready.clear()
                await ready.wait()
            yield results.pop(index)
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


async def probe_list(host: str, ports: Sequence[int], **kwargs: object) -> list[ProbeResult]:
    """`probe()` collected into a list (same arguments, same resource handling)."""
    return [result async for result in probe(host, ports, **kwargs)]  # type: ignore[arg-type]


async def probe_one(host: str, address: str, port: int, *, timeout: float,
                    banner: bool = False, send: bytes | None = None,
                    tls: bool = False) -> ProbeResult:
    """One connect to `address`:`port` (an IP literal), classified; see `probe()`.

    Resource handling: the socket is closed before this returns (gracefully when
    it connected). Errors: none; every failure is a result.
    """
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as exc:  # e.g. EMFILE, or no IPv6 on this machine
        reason, message = classify_connect_error(exc)
        return ProbeResult(host, address, port, reason, 0.0, message, explain_reason(reason))
    started = time.perf_counter()
    try:
        sock.setblocking(False)
        try:
            sockaddr = _sockaddr(family, address, port)
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, sockaddr)
        except (OSError, TimeoutError) as exc:
            ms = (time.perf_counter() - started) * 1000
            reason, message = classify_connect_error(exc)
            if reason == TIMED_OUT and not getattr(exc, "errno", None):
                message = f"no answer within {timeout:g} s"
            return ProbeResult(host, address, port, reason, ms, message, explain_reason(reason))
        ms = (time.perf_counter() - started) * 1000
        if tls:
            from tcpbench.engine.probe_tls import tls_probe
            greeting_wait = min(timeout, GREETING_BEFORE_SEND)
            outcome, greeting, answer = await tls_probe(sock, host, timeout=timeout, banner=banner,
                                                        send=send, greeting_wait=greeting_wait)
            return ProbeResult(host, address, port, OPEN, ms, "", EXPLAIN_OPEN, greeting, answer,
                               tls=outcome)
        if not banner:
            await _graceful_close(loop, sock, close_linger(ms / 1000))
            return ProbeResult(host, address, port, OPEN, ms, "", EXPLAIN_OPEN)
        return await _talk(loop, sock, host, address, port, ms, timeout, send)
    finally:
        sock.close()


# "HEAD / HTTP/1.0": an HTTP server answers only after the blank line that ends
# the request's head, which `nc -C` users type themselves and a one-line --send cannot.
_HTTP_REQUEST_LINE = re.compile(rb"[A-Z]+ \S+ HTTP/\d\.\d")


def line_to_send(text: str) -> bytes:
    """The bytes `--send TEXT` writes: TEXT's escapes undone, then CRLF.

    A request that starts with an HTTP request line also ends in the blank line that
    ends its head, so `--send 'HEAD / HTTP/1.0'` gets an answer. Errors: `EscapeError`
    (a ValueError) for a bad escape.
    """
    data = unescape_bytes(text) + b"\r\n"
    first_line = data.split(b"\n", 1)[0].rstrip(b"\r")
    if (_HTTP_REQUEST_LINE.fullmatch(first_line)
            and not data.endswith((b"\r\n\r\n", b"\n\n"))):
        data += b"\r\n"
    return data


def close_linger(connect_s: float) -> float:
    """How long the graceful close waits for the peer's FIN, given the connect time in s."""
    return min(CLOSE_LINGER_MAX, max(CLOSE_LINGER_MIN, CLOSE_LINGER_ROUND_TRIPS * connect_s))


def _sockaddr(family: int, address: str, port: int) -> tuple:
    if family == socket.AF_INET6:
        # getaddrinfo fills in the scope id of a link-local "fe80::1%eth0".
        return socket.getaddrinfo(address, port, family, socket.SOCK_STREAM,
                                  flags=socket.AI_NUMERICHOST)[0][4]
    return (address, port)


async def _talk(loop: asyncio.AbstractEventLoop, sock: socket.socket, host: str, address: str,
                port: int, ms: float, timeout: float, send: bytes | None) -> ProbeResult:
    """Read the greeting, send `send`, read the answer; then close gracefully."""
    greeting_wait = min(timeout, GREETING_BEFORE_SEND) if send is not None else timeout
    greeting, ended = await read_banner(loop, sock, greeting_wait)
    # Only the greeting phase tells a refusal: a peer that answers what we sent and
    # then closes (HTTP/1.0) has served us, not turned us away.
    how = _refusal(greeting, ended)
    answer: bytes | None = None
    if send is not None and ended is None:
        try:
            await asyncio.wait_for(loop.sock_sendall(sock, send), timeout)
            answer, ended = await read_banner(loop, sock, timeout)
        except (OSError, TimeoutError) as exc:
            ended = "reset" if isinstance(exc, ConnectionResetError) else None
    explanation = EXPLAIN_OPEN
    if how is not None:
        explanation = EXPLAIN_SERVICE_REFUSED.format(how=how)
    elif not greeting and ended is None and send is None:
        explanation += ("; it sent nothing first (it waits for the client to speak, as HTTP "
                        "and TLS do; try --send)")
    if ended is None:
        await _graceful_close(loop, sock, close_linger(ms / 1000))
    return ProbeResult(host, address, port, OPEN, ms, "", explanation, greeting, answer,
                       how is not None)


def _refusal(greeting: bytes, ended: str | None) -> str | None:
    """How the service refused us at once, or None: the TCP-wrappers pattern."""
    first_line = greeting.lstrip().split(b"\n", 1)[0]
    if first_line.startswith(b"421"):
        return f"'{escape_bytes(first_line.rstrip())}' right after connect"
    if not greeting and ended == "closed":
        return "the connection was closed at once, with no data"
    if not greeting and ended == "reset":
        return "the connection was reset at once, with no data"
    return None


async def read_banner(loop: asyncio.AbstractEventLoop, sock: socket.socket,
                      wait: float) -> tuple[bytes, str | None]:
    """Read what the peer says within `wait` s: `(bytes, ended)`.

    Stops at BANNER_LIMIT bytes, after BANNER_QUIET s without new bytes once some
    arrived, or when the peer ends the connection; `ended` is then "closed" (FIN)
    or "reset" (RST), else None. Errors: none (OS errors end the read).
    """
    data = bytearray()
    deadline = loop.time() + wait
    while len(data) < BANNER_LIMIT:
        remaining = deadline - loop.time()
        if data:
            remaining = min(remaining, BANNER_QUIET)
        if remaining <= 0:
            break
        try:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, BANNER_LIMIT - len(data)), remaining)
        except TimeoutError:
            break
        except OSError:  # ECONNRESET, or another error that ends the connection
            return bytes(data), "reset"
        if not chunk:
            return bytes(data), "closed"
        data += chunk
    return bytes(data), None


async def _graceful_close(loop: asyncio.AbstractEventLoop, sock: socket.socket,
                          linger: float) -> None:
    """Send FIN, then drop the peer's bytes until its FIN or `linger` s, so close sends no RST."""
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        return  # already reset or not connected: nothing to be graceful about
    deadline = loop.time() + linger
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        try:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), remaining)
        except (TimeoutError, OSError):
            return
        if not chunk:
            return


def summarize(results: Iterable[ProbeResult]) -> dict[str, int]:
    """Counts per outcome (plus 'service_refused'), in OUTCOMES order, zeros left out."""
    counts: dict[str, int] = {}
    for result in results:
        counts[result.outcome] = counts.get(result.outcome, 0) + 1
        if result.service_refused:
            counts["service_refused"] = counts.get("service_refused", 0) + 1
    order = {name: i for i, name in enumerate(OUTCOMES + ("service_refused",))}
    return dict(sorted(counts.items(), key=lambda kv: order.get(kv[0], 99)))


__all__ = ["DEFAULT_CONCURRENCY", "DEFAULT_TIMEOUT", "EXPLAIN_OPEN", "MAX_CONCURRENCY", "OPEN",
           "OUTCOMES", "ProbeResult", "close_linger", "line_to_send", "outcome_label", "parse_ports",
           "probe", "probe_list", "probe_one", "read_banner", "resolve_addresses", "summarize"]
