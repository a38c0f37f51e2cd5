"""A/B of `tcpbench serve echo` between two checkouts, with socat PIPE beside, rotated.

    python benchmarks/echo_ab.py BEFORE_DIR AFTER_DIR [--conns N] [--window KIB] [--mib M] [--rounds R]

BEFORE_DIR and AFTER_DIR are source trees of tcpbench (e.g. a `git worktree` of the
older commit and this checkout). Each server runs as `python -P -m tcpbench serve echo`
with PYTHONPATH set to its tree (`-P`: the runner's working directory must not shadow
it), with `--loop asyncio` and the default busy poll (TCPBENCH_BUSY_POLL unset), its
event lines going to a file. Each round runs the
three servers once, in an order rotated by the round, a fresh process each, and pushes
M MiB through N connections (a window of KIB KiB per connection, or 0 for bulk), every
byte checked as `part_echo` does. Prints each server's median and rounds, and the ratios
of the medians.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ab import parser, ratios, rotated_rounds, tree_command  # noqa: E402
from benchmarks.harness import command_spec  # noqa: E402
from benchmarks.part_echo import WINDOW, Stream, socat_pipe, transfer  # noqa: E402


def main() -> int:
    args_parser = parser(__doc__)
    args_parser.add_argument("--conns", type=int, default=1)
    args_parser.add_argument("--window", type=int, default=WINDOW // 1024, metavar="KIB",
                             help="KiB in flight per connection; 0: bulk (default %(default)s)")
    args_parser.add_argument("--mib", type=int, default=128)
    args = args_parser.parse_args()
    specs = {name: command_spec(name, tree_command(tree, "serve", "echo"))
             for name, tree in (("before", args.before), ("after", args.after))}
    specs["socat"] = command_spec("socat", socat_pipe)
    stream = Stream(args.mib << 20, args.conns)
    window = args.window * 1024 or None
    mib_s = rotated_rounds(specs, args.rounds, lambda server: transfer(server, stream, window)["mib_s"])
    shape = f"{args.window} KiB window" if window else "bulk"
    print(f"echo, {args.conns} conn(s), {shape}, {args.mib} MiB, {args.rounds} rounds (MiB/s)")
    medians = {name: statistics.median(values) for name, values in mib_s.items()}
    for name, values in mib_s.items():
        print(f"  {name:7s} median {medians[name]:7.0f}   rounds " + " ".join(f"{v:.0f}" for v in values))
    print(ratios(medians, "socat"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
