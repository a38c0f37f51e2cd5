"""The command line: `tcpbench` (the UI) and the headless subcommands.

Headless subcommands run on the same engine as the UI, so every capability is
scriptable. Bad input is one line on stderr and exit status 2, never a
traceback. Textual is imported only when the UI starts.
"""

from __future__ import annotations

import sys
from typing import Any, Sequence

from tcpbench.cli.args import PROG, Parser, parse_port, parse_positive
from tcpbench.usage import UsageError

# `UsageError` lives in `tcpbench.usage` (the UI raises it too, and the UI never imports the
# CLI) and the parsing helpers in `tcpbench.cli.args` (the subcommands import them, and this
# module imports the subcommands); both are re-exported for code that takes them from here.
__all__ = ["COMMANDS", "PROG", "Parser", "UsageError", "build_parser", "command_named", "main",
           "parse_port", "parse_positive", "run_ui"]


# The workbench's own options: those that take a value, and flags (`_first_positional`).
UI_VALUE_OPTIONS = frozenset({"--listen", "--connect", "--scenario", "--record", "--loop",
                              "--busy-poll"})
UI_FLAG_OPTIONS = frozenset({"--utc", "--version"})


COMMANDS = ("serve", "connect", "scenarios", "web", "probe")
"""The subcommands, in the order `--help` lists them; each is `tcpbench.cli.<name>`."""
_UNSURE = object()


def _first_positional(argv: Sequence[str]) -> object:
    """The first token of `argv` that is neither one of the workbench's own options nor
    its value; None when there is none; `_UNSURE` at help, `--`, or an option the parser
    could read otherwise (an abbreviation such as `--lis`)."""
    expect_value = False
    for token in argv:
        if expect_value:
            expect_value = False
        elif token in UI_VALUE_OPTIONS:
            expect_value = True
        elif token in UI_FLAG_OPTIONS or token.partition("=")[0] in UI_VALUE_OPTIONS:
            continue
        elif token.startswith("-") and token != "-":
            return _UNSURE
        else:
            return token
    return None


def names_no_command(argv: Sequence[str]) -> bool:
    """True when `argv` is the workbench's options alone: no command, no help asked for.

    Then `main` parses it without the subcommands, whose modules (the services, h11,
    TLS, probing: ~60 modules) the workbench does not need before its first frame. Anything
    else (a positional, `--`, an abbreviated option) takes the full parser, which parses
    every command line the light one does to the same result."""
    return _first_positional(argv) is None


def command_named(argv: Sequence[str]) -> str | None:
    """The subcommand `argv` runs when its first positional names one (and nothing the
    parser could read otherwise comes first), else None.

    Then `main` builds only that subcommand's parser: `tcpbench probe HOST PORT` need not
    import the services, h11 and TLS behind `serve` (~50 ms of a ~140 ms probe of one port,
    where `nc -vz` takes 10). Options before the command parse as with the full parser,
    and so does everything after it, which only its own parser reads."""
    token = _first_positional(argv)
    return token if isinstance(token, str) and token in COMMANDS else None


def build_parser(commands: bool | str = True) -> Parser:
    """The command line's parser: with every subcommand, none (`False`: the workbench's
    options alone, and none of the subcommands' imports) or just the one named."""
    from tcpbench import __version__

    parser = Parser(
        prog=PROG,
        description="A terminal workbench for TCP: start servers, open client sessions, probe "
                    "ports and watch every byte and every FIN and RST. With no command, "
                    "the interactive workbench opens.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--listen", action="append", default=[], metavar="SERVICE:[HOST:]PORT",
                        help="(UI) start with this listener open; repeatable; IPv6 hosts in brackets")
    parser.add_argument("--connect", action="append", default=[], metavar="HOST:PORT",
                        help="(UI) start with a client session to HOST:PORT; repeatable")
    parser.add_argument("--utc", action="store_true",
                        help="(UI) byte log timestamps in UTC (default: local time; u toggles)")
    parser.add_argument("--scenario", metavar="FILE|NAME", default=None,
                        help="(UI) start a lesson: the listeners, sessions and notes of a TOML "
                             "file or of a built-in scenario (see 'tcpbench scenarios')")
    parser.add_argument("--record", dest="ui_record", metavar="DIR", default=None,
                        help="(UI) record every session into DIR (new or empty) as it happens: "
                             "JSON Lines, a transcript, raw bytes and a pcap per session")
    parser.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default=None,
                        help="(headless commands) the event loop: auto = uvloop when installed "
                             "(pip install 'tcpbench[fast]'), else asyncio; default from "
                             "TCPBENCH_LOOP, else auto")
    parser.add_argument("--busy-poll", type=float, default=None, metavar="USEC",
                        help="(headless commands, asyncio loop) after traffic, poll up to USEC "
                             "microseconds before sleeping: round trips get faster, at some "
                             "CPU; 0 = off; default from TCPBENCH_BUSY_POLL, else 100")
    if not commands:
        parser.set_defaults(command=None)
        return parser
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMANDS if commands is True else (commands,):
        module = _command_module(name)
        if module is not None:
            module.add_parser(subcommands)
    return parser


def _command_module(name: str) -> Any:
    """`tcpbench.cli.<name>`, imported now (spelled out, so the import graph sees each edge);
    None for `probe` in a build without the prober."""
    if name == "serve":
        from tcpbench.cli import serve as module
    elif name == "connect":
        from tcpbench.cli import connect as module  # type: ignore[no-redef]
    elif name == "scenarios":
        from tcpbench.cli import scenarios as module  # type: ignore[no-redef]
    elif name == "web":
        from tcpbench.cli import web as module  # type: ignore[no-redef]
    elif name == "probe":
        try:
            from tcpbench.cli import probe as module  # type: ignore[no-redef]
        except ImportError:
            return None
    else:
        raise ValueError(f"no such command: {name}")
    return module


def main(argv: Sequence[str] | None = None) -> int:
    tokens = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(commands=command_named(tokens) or not names_no_command(tokens))
    args = parser.parse_args(tokens)
    from tcpbench.engine.runtime import (LoopUnavailableError, choose_loop, raise_open_file_limit,
                                         set_busy_poll)

    raise_open_file_limit()
    if args.command is None:
        return run_ui(args)
    try:
        choose_loop(args.loop)
        set_busy_poll(args.busy_poll)
    except (LoopUnavailableError, ValueError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def run_ui(args: Any) -> int:
    try:
        from tcpbench.app import run_app
    except ImportError as exc:
        if exc.name and exc.name.startswith("tcpbench"):
            print(f"{PROG}: the interactive workbench is not available in this build; "
                  f"use '{PROG} serve', '{PROG} connect' or '{PROG} --help'", file=sys.stderr)
            return 2
        raise
    try:
        return int(run_app(listen=args.listen, connect=args.connect, scenario=args.scenario,
                           record=args.ui_record, utc=args.utc) or 0)
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
