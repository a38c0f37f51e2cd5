"""`tcpbench web`: the workbench in a browser, through textual-serve (the optional `web` extra).

Every browser tab that opens the page starts its own `tcpbench` process, with
its own listeners and sessions: two tabs are two workbenches, not two views of
one. textual-serve has no authentication, so the server listens on loopback
unless `--host` says otherwise, and then this warns: anyone who reaches the port
gets a tcpbench that can open listeners and connections as you.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from tcpbench.cli.args import parse_port
from tcpbench.usage import UsageError

LOOPBACK = ("127.0.0.1", "::1", "localhost")


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "web", help="serve the workbench to a browser (pip install 'tcpbench[web]')",
        description="Serve the workbench as a web page with textual-serve. Every browser tab "
                    "runs its own tcpbench; there is no authentication, so it listens on "
                    "127.0.0.1 unless --host says otherwise.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address of the web server (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", "-p", type=parse_port, default=8000,
                        help="port of the web server (default 8000)")
    parser.add_argument("--public-url", default=None, metavar="URL",
                        help="the URL browsers use, when it is not http://HOST:PORT "
                             "(a reverse proxy, an SSH tunnel)")
    parser.add_argument("--scenario", default=None, metavar="FILE|NAME",
                        help="every tab starts this scenario (its fixed ports can open in one "
                             "tab only: give the scenario port 0 for several)")
    parser.set_defaults(run=main)


def app_command(scenario: str | None) -> str:
    """The shell command textual-serve runs for every tab: this Python, this tcpbench."""
    argv = [sys.executable, "-m", "tcpbench"]
    if scenario:
        argv += ["--scenario", scenario]
    return shlex.join(argv)


def main(args: argparse.Namespace) -> int:
    if args.port == 0:
        # The page tells the browser where its websocket is, so the port must be known up front.
        raise UsageError("tcpbench web needs a real port (1-65535), e.g. --port 8000")
    try:
        from textual_serve.server import Server
    except ImportError:
        raise UsageError("the web mode needs textual-serve: pip install 'tcpbench[web]'") from None
    if args.scenario:
        from tcpbench.scenarios import load_scenario

        load_scenario(args.scenario)  # a mistake is one line now, not an error in every tab
    if args.host not in LOOPBACK:
        print(f"tcpbench: WARNING: {args.host} is reachable from the network and the page has no "
              "password: anyone who opens it gets a tcpbench running as you", file=sys.stderr,
              flush=True)
    host = f"[{args.host}]" if ":" in args.host else args.host
    server = Server(app_command(args.scenario), host=args.host, port=args.port, title="tcpbench",
                    public_url=args.public_url or f"http://{host}:{args.port}")
    server.serve()
    return 0
