"""`tcpbench probe HOST PORTS`: like `nc -vz` / `nc -vt`, but every result says what it means.

For people testing firewalls: each port on each address of HOST is reported as
open, refused, timed out, host/network unreachable or name not resolved, with
the connect time, the OS error and a one-line explanation. `--banner` reads what
the service says first (and `--send TEXT` what it answers), escaped to printable
ASCII so a peer cannot drive the terminal.

Exit status: 0 when every port is open (and no service turned us away at once,
see `--banner`; with `--tls`, TLS was negotiated), 1 otherwise, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from tcpbench.cli.args import parse_positive
from tcpbench.cli.runner import run
from tcpbench.engine.probe import (DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, MAX_CONCURRENCY,
                                   ProbeResult, line_to_send, outcome_label, parse_ports, probe,
                                   resolve_addresses, summarize)
from tcpbench.safetext import EscapeError, escape_bytes, escape_text

if TYPE_CHECKING:
    from tcpbench.engine.probe_tls import TlsProbe

TABLE_BANNER = 160  # characters of a banner shown in the table (JSON has it all)


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "probe", help="probe TCP ports and explain each result (like nc -vz, for firewall tests)",
        description="Connect to each PORT on every address of HOST and say what happened: "
                    "open, refused (RST: nothing listens, or REJECT), timed out (DROP), "
                    "unreachable (ICMP from a router or firewall). Exit 0 when every port is "
                    "open (with --banner: and no service turned us away at once), 1 otherwise, "
                    "2 for bad arguments.")
    parser.add_argument("host", metavar="HOST",
                        help="a name (every IPv4 and IPv6 address it has is probed) or an address")
    parser.add_argument("ports", type=_port_list, metavar="PORTS",
                        help="22 | 22,80,443 | 8000-8010 | ssh,http (service names) | a mix")
    parser.add_argument("--timeout", "-w", type=parse_positive, default=DEFAULT_TIMEOUT,
                        metavar="S", help=f"connect timeout per port, and banner wait, in seconds "
                                          f"(default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--concurrency", "-c", type=_concurrency, default=DEFAULT_CONCURRENCY,
                        metavar="N", help=f"connects in flight at once (default "
                                          f"{DEFAULT_CONCURRENCY}, at most {MAX_CONCURRENCY})")
    parser.add_argument("--banner", "-b", action="store_true",
                        help="after connecting, show what the service says first (SSH, FTP, SMTP)")
    parser.add_argument("--send", type=_send_text, metavar="TEXT",
                        help="send TEXT + CRLF after the banner and show the answer "
                             "(\\r \\n \\t \\xNN escapes; an HTTP request line such as "
                             "'HEAD / HTTP/1.0' also gets the blank line that ends it); "
                             "implies --banner")
    parser.add_argument("--tls", action="store_true",
                        help="on each open port, also try a TLS handshake and report the version, "
                             "the certificate's subject and expiry (not verified: like "
                             "openssl s_client, it shows what is there); --banner reads inside TLS")
    parser.add_argument("--json", action="store_true",
                        help="JSON Lines: host, address, port, outcome, ms, error, explanation, "
                             "banner, answer, service_refused")
    # `nc -vz host port` is in people's fingers (and in every firewall how-to): accept
    # -v and -z instead of failing; probe is already verbose and sends nothing.
    parser.add_argument("-v", "-z", dest="nc_habits", action="count", default=0,
                        help="accepted for nc habits (-vz); probe always explains and sends nothing")
    parser.set_defaults(run=main)


def _port_list(text: str) -> list[int]:
    try:
        return parse_ports(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _concurrency(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"concurrency {text!r} is not a whole number") from None
    if not 1 <= value <= MAX_CONCURRENCY:
        raise argparse.ArgumentTypeError(f"concurrency {value} is out of range (1-{MAX_CONCURRENCY})")
    return value


def _send_text(text: str) -> bytes:
    try:
        return line_to_send(text)
    except EscapeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(args: argparse.Namespace) -> int:
    return run(lambda stop: _probe(args, stop))


async def _probe(args: argparse.Namespace, stop: asyncio.Event) -> int:
    task = asyncio.ensure_future(_probe_all(args))
    stopper = asyncio.ensure_future(stop.wait())
    await asyncio.wait([task, stopper], return_when=asyncio.FIRST_COMPLETED)
    if not task.done():  # Ctrl-C: cancel the probes (their sockets close) and say so
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        print("tcpbench: probe interrupted", file=sys.stderr)
        return 1
    stopper.cancel()
    return task.result()


async def _probe_all(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    addresses: list[str] | None
    try:
        addresses = await resolve_addresses(args.host)
    except (socket.gaierror, UnicodeError):
        addresses = None  # probe() turns this into a name_not_resolved result
    printer = (JsonPrinter(sys.stdout) if args.json
               else TablePrinter(sys.stdout, addresses or [args.host], timeout=args.timeout))
    results: list[ProbeResult] = []
    async for result in probe(args.host, args.ports, timeout=args.timeout,
                              concurrency=args.concurrency, banner=args.banner, send=args.send,
                              addresses=addresses, tls=args.tls):
        results.append(result)
        printer.row(result)
    if not args.json:
        printer.summary(args.host, addresses or [], results, time.perf_counter() - started)
    return 0 if results and all(r.ok for r in results) else 1


class JsonPrinter:
    """One JSON object per result and line; peer bytes escaped."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def row(self, result: ProbeResult) -> None:
        _write(self.stream, json.dumps(result.to_dict(), ensure_ascii=True))


class TablePrinter:
    """Aligned columns, printed as results arrive; banners on indented lines below their row."""

    def __init__(self, stream: TextIO, addresses: list[str], *, timeout: float) -> None:
        self.stream = stream
        self.address_width = max([len("ADDRESS")] + [len(a) for a in addresses])
        # The widest common errors: the OS's refusal, and our timeout message.
        self.error_width = max(len("Connection refused"), len(f"no answer within {timeout:g} s"))
        self.header_done = False

    def _line(self, address: str, port: str, outcome: str, ms: str, error: str, text: str) -> str:
        return (f"{address:<{self.address_width}}  {port:>5}  {outcome:<19}  {ms:>9}  "
                f"{error:<{self.error_width}}  {text}").rstrip()

    def row(self, result: ProbeResult) -> None:
        if not self.header_done:
            self.header_done = True
            _write(self.stream, self._line("ADDRESS", "PORT", "OUTCOME", "MS", "ERROR", "EXPLANATION"))
        outcome = outcome_label(result.outcome)
        if result.service_refused:
            outcome = "open, refused"
        port = "-" if result.port is None else str(result.port)
        ms = "-" if result.port is None else f"{result.ms:.1f}"
        # Resolver messages and the host name are shown escaped: both can come from outside.
        _write(self.stream, self._line(escape_text(result.address or result.host), port, outcome,
                                       ms, escape_text(result.error), result.explanation))
        if result.tls is not None:
            _write(self.stream, "    tls: " + _tls_line(result.tls))
        if result.banner is not None:
            _write(self.stream, "    banner: " + _clip(result.banner) if result.banner
                   else "    banner: (nothing)")
        if result.answer is not None:
            _write(self.stream, "    answer: " + _clip(result.answer) if result.answer
                   else "    answer: (nothing)")

    def summary(self, host: str, addresses: list[str], results: list[ProbeResult],
                seconds: float) -> None:
        counts = ", ".join(f"{n} {outcome_label(k)}" for k, n in summarize(results).items())
        ports = len({r.port for r in results if r.port is not None})
        where = f"{escape_text(host)} ({len(addresses)} address{'es' if len(addresses) != 1 else ''})"
        _write(self.stream, f"probed {ports} port{'s' if ports != 1 else ''} on {where} in "
                            f"{seconds:.2f} s: {counts}")


def _tls_line(tls: TlsProbe) -> str:
    if not tls.negotiated:
        return f"not negotiated: {escape_text(tls.error)}"
    parts = [escape_text(tls.version), escape_text(tls.cipher)]
    if tls.alpn:
        parts.append(f"ALPN {escape_text(tls.alpn)}")
    if tls.subject:
        parts.append(f"subject {escape_text(tls.subject)}")
        days = tls.expires_in_days()
        when = "" if days is None else (f" (EXPIRED {-days:.0f} days ago)" if days < 0
                                        else f" (in {days:.0f} days)")
        parts.append(f"expires {escape_text(tls.not_after)}{when}")
    else:
        parts.append("no certificate")
    return ", ".join(parts)


def _clip(data: bytes) -> str:
    text = escape_bytes(data)
    return text if len(text) <= TABLE_BANNER else text[:TABLE_BANNER] + f"... ({len(data)} bytes)"


def _write(stream: TextIO, line: str) -> None:
    try:
        stream.write(line + "\n")
        stream.flush()
    except (BrokenPipeError, ValueError):
        pass
