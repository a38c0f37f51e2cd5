"""`tcpbench connect HOST PORT`: like `nc HOST PORT`, with the TCP story on request.

stdin goes to the socket and the socket to stdout; EOF on stdin sends FIN (like
`nc -N`) and we keep reading until the peer closes. Exit 0 when the peer closes
in order, 1 on a failed connect or a reset, with one line that says what the
failure usually means.

When stdout is a terminal, control bytes from the peer are escaped (a peer must
not drive your terminal); when it is a pipe or a file, bytes pass untouched.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from typing import Any

from tcpbench.cli import tls_args
from tcpbench.cli.args import parse_port, parse_positive
from tcpbench.cli.output import HEADLESS_STORE_CAP, EventPrinter
from tcpbench.cli.runner import StdinReader, run
from tcpbench.engine import ConnectError, SessionClosedError, SessionManager
from tcpbench.engine import events as ev
from tcpbench.engine.events import format_address
from tcpbench.engine.starttls import StartTlsRefused, open_starttls
from tcpbench.safetext import BYTE_TO_TEXT, escape_text

# On a terminal: keep line structure (LF, CR LF, TAB), escape every other control byte.
_TTY_TRANSLATE = {b: BYTE_TO_TEXT[b] for b in range(256)
                  if BYTE_TO_TEXT[b] != chr(b) and b not in (0x0A, 0x09, 0x5C)}


def add_parser(commands: Any) -> None:
    connect = commands.add_parser(
        "connect", help="open a client session: stdin to the socket, the socket to stdout",
        description="Connect to HOST PORT like 'nc HOST PORT'. EOF on stdin sends FIN.")
    connect.add_argument("host", type=parse_remote_host,
                         help="a name or an address; an IPv6 address bare or in brackets ([::1])")
    connect.add_argument("port", type=parse_remote_port,
                         help="1-65535, or a service name as nc takes it (http, smtp)")
    connect.add_argument("--crlf", "-C", action="store_true", help="send line endings as CRLF")
    connect.add_argument("--timeout", "-w", type=parse_positive, default=10.0, metavar="S",
                         help="connect timeout in seconds (default 10)")
    connect.add_argument("--verbose", "-v", action="store_true",
                         help="report the TCP lifecycle (connected, FIN, RST) on stderr")
    tls_args.add_client_options(connect, starttls=True)
    connect.set_defaults(run=main)


def parse_remote_host(text: str) -> str:
    # "[::1]" is how URLs and HOST:PORT forms write an IPv6 address; the resolver wants it bare.
    if len(text) > 2 and text[0] == "[" and text[-1] == "]":
        return text[1:-1]
    return text


def parse_remote_port(text: str) -> int:
    if text[:1].isalpha():
        try:
            return socket.getservbyname(text, "tcp")
        except (OSError, UnicodeError):
            raise argparse.ArgumentTypeError(
                f"port {text!r} is neither a number (1-65535) nor a known service name") from None
    if text.isascii() and text.isdigit() and int(text) == 0:
        # Port 0 means "any free port" only when listening; nobody can be reached there.
        raise argparse.ArgumentTypeError("port 0 cannot be connected to (use 1-65535)")
    return parse_port(text, lowest=1)


def main(args: argparse.Namespace) -> int:
    tls = tls_args.build_client(args, args.host, args.timeout)
    return run(lambda stop: _connect(args, stop, tls))


def _print_transcript(direction: str, line: str) -> None:
    print(f"tcpbench: starttls {direction} {escape_text(line)}", file=sys.stderr, flush=True)


def _terminal_safe(data: bytes) -> bytes:
    text = data.decode("latin-1").translate(_TTY_TRANSLATE)
    return text.replace("\\r\n", "\r\n").encode("ascii")


async def _connect(args: argparse.Namespace, stop: asyncio.Event, tls: Any = None) -> int:
    out = sys.stdout.buffer
    to_tty = os.isatty(out.fileno()) if hasattr(out, "fileno") else False
    outcome: dict[str, str] = {}
    plain = {"exchange": False}
    """True during the STARTTLS exchange: its lines go to stderr as a transcript instead."""

    def on_event(event: ev.Event) -> None:
        if isinstance(event, ev.BytesReceived):
            if plain["exchange"]:
                return
            try:
                out.write(_terminal_safe(event.data) if to_tty else event.data)
                out.flush()
            except (BrokenPipeError, ValueError):
                pass
        elif isinstance(event, ev.PeerHalfClosed):
            # The peer is done: like nc, finish once our queued bytes are out.
            peer_done = manager.sessions.get(event.session)
            if peer_done is not None:
                manager.loop.call_soon(peer_done.close)
        elif isinstance(event, ev.SessionReset):
            outcome["end"] = "reset"
        elif isinstance(event, ev.SessionAborted):
            outcome["end"] = "aborted"

    verbose = EventPrinter(stream=sys.stderr, show_data=False, buffered=False) if args.verbose else None

    async with SessionManager(store_cap=HEADLESS_STORE_CAP) as manager:
        manager.subscribe(on_event)
        if verbose is not None:
            manager.subscribe(lambda e: None if isinstance(e, (ev.BytesReceived, ev.BytesSent))
                              else verbose(e))
        starttls = getattr(args, "starttls", None)
        try:
            if starttls:
                plain["exchange"] = True
                session = await open_starttls(manager, args.host, args.port, starttls, tls,
                                              timeout=args.timeout, transcript=_print_transcript)
                plain["exchange"] = False
            else:
                session = await manager.open_session(args.host, args.port, timeout=args.timeout,
                                                     tls=tls)
        except (ConnectError, StartTlsRefused) as exc:
            print(f"tcpbench: {exc}", file=sys.stderr)
            return 1
        if args.verbose:
            print(f"tcpbench: connected to {format_address(session.peer)} from "
                  f"{format_address(session.local)}", file=sys.stderr, flush=True)

        def from_stdin(data: bytes) -> None:
            if session.is_finished:
                return
            if not data:
                if session.tls is not None:
                    # TLS cannot half-close (close_notify ends both ways): read what is still
                    # coming for the linger time, like socat -t, unless the peer closes first.
                    manager.loop.call_later(manager.linger, session.close)
                else:
                    session.half_close()
                return
            if args.crlf:
                data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            try:
                session.send(data)
            except SessionClosedError:
                pass

        StdinReader(manager.loop, from_stdin, lines=args.crlf).start()
        closed = asyncio.ensure_future(asyncio.shield(session.closed_future))
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait([closed, stopper], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not session.is_finished:
            session.close()
            await asyncio.wait([closed], timeout=manager.linger + 1)
            return 0
    if outcome.get("end") == "reset":
        print(f"tcpbench: connection reset by {format_address(session.peer)}: {session.end_reason}",
              file=sys.stderr)
        return 1
    return 0
