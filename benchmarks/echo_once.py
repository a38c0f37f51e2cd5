"""One echo measurement against one server, for A/B work between commits.

    python benchmarks/echo_once.py [--conns N] [--mib M] [--window KIB | --bulk]
                                   [--server tcpbench|quiet|bare|socat]

Starts the server (`tcpbench serve echo` as typed, the same with --quiet-data, the
bare asyncio Protocol echo, or socat PIPE), pushes M MiB through N connections with a
KIB KiB window (32 by default, or bulk) exactly as `part_echo` does, checks every byte, and prints MiB/s and the
server's CPU seconds per GiB. Run it alternately at two commits: server CPU per GiB
moves much less with a noisy host than MiB/s does.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import PYTHON, REFSERVERS, TCPBENCH, Server, command_spec  # noqa: E402
from benchmarks.part_echo import WINDOW, Stream, socat_pipe, transfer  # noqa: E402

SERVERS = {
    "tcpbench": [TCPBENCH, "serve", "echo"],
    "quiet": [TCPBENCH, "serve", "echo", "--quiet-data"],
    "bare": [PYTHON, REFSERVERS, "echo-protocol"],
    "socat": socat_pipe,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conns", type=int, default=8)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--window", type=int, default=WINDOW // 1024, metavar="KIB",
                        help="bytes in flight per connection, KiB (default %(default)s)")
    parser.add_argument("--bulk", action="store_true", help="no window: send everything at once")
    parser.add_argument("--server", choices=sorted(SERVERS), default="tcpbench")
    args = parser.parse_args()
    stream = Stream(args.mib << 20, args.conns)
    server = Server(command_spec(args.server, SERVERS[args.server]),
                    Path(tempfile.mkdtemp(prefix="echo-once-")), 1)
    try:
        result = transfer(server, stream, None if args.bulk else args.window * 1024)
    finally:
        server.stop()
    print(f"{args.server} conns={args.conns} {'bulk' if args.bulk else f'{args.window} KiB window'} {args.mib} MiB: "
          f"{result['mib_s']:.0f} MiB/s, server cpu {result['cpu_s_per_gib']:.3f} s/GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
