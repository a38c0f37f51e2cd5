"""`tcpbench serve SERVICE`: one listener, headless, with an event line per happening.

The first line on stdout is exactly `listening on HOST:PORT` (the real port), so
scripts and tests can read the port; with `--json` it is a JSON object like every
line after it, `{"event": "listening", "address": "HOST:PORT", "port": PORT, ...}`.
Lines typed on stdin go to the service as operator input (raw: to every client;
chat: to the room).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
from typing import Any

from tcpbench.cli import tls_args
from tcpbench.cli.admission_args import add_admission_arguments, policy_from_args
from tcpbench.cli.args import parse_port, parse_positive
from tcpbench.cli.output import HEADLESS_ENDED_KEPT, HEADLESS_STORE_CAP, PREVIEW, EventPrinter
from tcpbench.cli.runner import StdinReader, run
from tcpbench.engine import ListenError, SessionManager
from tcpbench.engine.events import format_address
from tcpbench.engine.registry import SERVICES, build_service
from tcpbench.engine.tls import service_alpn
from tcpbench.services.base import Option, OptionError
from tcpbench.usage import UsageError

LOOPBACK = ("127.0.0.1", "::1", "localhost")
GC_YOUNG_THRESHOLD = 20_000
"""Net allocations between two young-generation garbage collections while serving (700 by default)."""


def add_parser(commands: Any) -> None:
    serve = commands.add_parser(
        "serve", help="start a server (echo, motd, discard, raw, ...) and print its events",
        description="Start one listener and print an event line for every connection, "
                    "every chunk of bytes, every FIN and every RST.")
    services = serve.add_subparsers(dest="service", metavar="SERVICE", required=True,
                                    parser_class=type(serve))
    for info in sorted(SERVICES.values(), key=lambda i: i.name):
        sub = services.add_parser(info.name, help=info.summary, description=info.summary)
        sub.add_argument("--host", default="127.0.0.1",
                         help="address to listen on (default 127.0.0.1; '::' for IPv6 and IPv4, "
                              "0.0.0.0 for every IPv4 address)")
        sub.add_argument("--port", "-p", type=parse_port, default=0,
                         help="port to listen on (default 0: any free port)")
        sub.add_argument("--json", action="store_true", help="JSON Lines instead of text")
        sub.add_argument("--quiet-data", action="store_true",
                         help="do not print data previews (counts only)")
        sub.add_argument("--idle-timeout", type=parse_positive, default=None, metavar="S",
                         help="close each session idle for S seconds (each by its own last activity)")
        add_admission_arguments(sub)
        tls_args.add_server_options(sub)
        sub.add_argument("--record", metavar="DIR", default=None,
                         help="write every session's record into DIR (new or empty): JSON Lines "
                              "of events with the bytes, a transcript, and the raw bytes each way")
        for option in info.options:
            _add_option(sub, option)
        sub.set_defaults(run=main, service_options=[o.name for o in info.options])


def _add_option(parser: argparse.ArgumentParser, option: Option) -> None:
    if option.type is bool:
        parser.add_argument(option.flag, dest=option.name, action="store_true", help=option.help)
    elif option.type is list:
        parser.add_argument(option.flag, dest=option.name, action="append", metavar=option.metavar,
                            help=option.help)
    elif option.type is tuple:
        parser.add_argument(option.name, nargs=argparse.REMAINDER, metavar=option.metavar or "ARGS",
                            help=option.help)
    else:
        parser.add_argument(option.flag, dest=option.name, type=option.type, metavar=option.metavar,
                            choices=option.choices, help=option.help)


def main(args: argparse.Namespace) -> int:
    options = {name: getattr(args, name) for name in args.service_options}
    for name, value in options.items():
        if isinstance(value, list) and value and value[0] == "--":
            options[name] = value[1:]
    try:
        service = build_service(args.service, options)
    except OptionError as exc:
        raise UsageError(str(exc)) from None
    args.admission = policy_from_args(args)
    args.tls_setting = tls_args.build_server(args, service_alpn(service.name))
    return run(lambda stop: _serve(args, service, stop))


async def _serve(args: argparse.Namespace, service: Any, stop: asyncio.Event) -> int:
    # In raw mode the operator *is* the server and must read all a client says, like ncat -l.
    full = service.name in ("raw",)
    printer = EventPrinter(json_lines=args.json, show_data=not args.quiet_data,
                           preview=None if full else PREVIEW)
    try:
        return await _serve_with(args, service, stop, printer)
    finally:
        printer.flush()


async def _serve_with(args: argparse.Namespace, service: Any, stop: asyncio.Event,
                      printer: EventPrinter) -> int:
    recorder = None
    if args.record is not None:
        from tcpbench.engine.recorder import Recorder, RecordError, prepare_directory

        try:
            recorder = Recorder(prepare_directory(args.record))
        except RecordError as exc:
            print(f"tcpbench: --record: {exc}", file=sys.stderr)
            return 2
    try:
        return await _serve_recorded(args, service, stop, printer, recorder)
    finally:
        if recorder is not None:
            recorder.close()
            if recorder.error is not None:
                print(f"tcpbench: {recorder.error}", file=sys.stderr)


async def _serve_recorded(args: argparse.Namespace, service: Any, stop: asyncio.Event,
                          printer: EventPrinter, recorder: Any) -> int:
    async with SessionManager(store_cap=HEADLESS_STORE_CAP,
                              ended_kept=HEADLESS_ENDED_KEPT) as manager:
        if recorder is not None:
            manager.subscribe(recorder)
        try:
            listener = await manager.start_listener(service, args.host, args.port,
                                                    idle_timeout=args.idle_timeout,
                                                    admission=args.admission,
                                                    tls=args.tls_setting)
        except ListenError as exc:
            print(f"tcpbench: {exc}", file=sys.stderr)
            return 2
        # What exists now (modules, the parser, the service) lives as long as the process:
        # frozen, the garbage collector's full passes need not walk it again.
        gc.freeze()
        # A connection's objects are freed by reference counting when it ends (see
        # `session._drop_read_callback`), so the young-generation passes that 700 net
        # allocations trigger find next to nothing: 20,000 made `serve http` under
        # `wrk -c50 -H 'Connection: close'` 1.02x (4 of 4 rotated rounds).
        gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
        if args.json:
            print(json.dumps({"event": "listening", "service": args.service,
                              "address": format_address(listener.address),
                              "host": listener.address[0], "port": listener.address[1],
                              "tls": listener.tls is not None}, ensure_ascii=True), flush=True)
        else:
            print(f"listening on {format_address(listener.address)}", flush=True)
        if listener.tls is not None:
            print(tls_args.describe_server(listener.tls, json_lines=args.json), flush=True)
        if args.host not in LOOPBACK:
            print(f"tcpbench: warning: {args.host} is reachable from the network, not just this "
                  "machine", file=sys.stderr, flush=True)
            if SERVICES[args.service].dangerous:
                print(f"tcpbench: WARNING: anyone who can reach {format_address(listener.address)} "
                      f"can now run {service.describe()!r} as you on this machine", file=sys.stderr,
                      flush=True)
        if args.admission is not None:
            print(f"tcpbench: admitting: {args.admission.describe()}", file=sys.stderr, flush=True)
        manager.subscribe(printer, bytes_tap=printer.bytes_tap)

        def operator(data: bytes) -> None:
            if listener.id not in manager.listeners:
                return
            if data:
                manager.operator_input(listener.id, data)
            else:
                manager.operator_closed(listener.id)

        StdinReader(manager.loop, operator, lines=True).start()
        await stop.wait()
    return 0
