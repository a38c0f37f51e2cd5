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

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import PYTHON, Server, command_spec  # noqa: E402
from benchmarks.part_echo import WINDOW, Stream, socat_pipe, transfer  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--conns", type=int, default=1)
    parser.add_argument("--window", type=int, default=WINDOW // 1024, metavar="KIB",
                        help="KiB in flight per connection; 0: bulk (default %(default)s)")
    parser.add_argument("--mib", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    servers = {
        name: ["env", "-u", "TCPBENCH_BUSY_POLL", f"PYTHONPATH={tree.resolve()}", PYTHON, "-P",
               "-m", "tcpbench", "--loop", "asyncio", "serve", "echo"]
        for name, tree in (("before", args.before), ("after", args.after))
    } | {"socat": socat_pipe}
    stream = Stream(args.mib << 20, args.conns)
    window = args.window * 1024 or None
    results: dict[str, list[float]] = {name: [] for name in servers}
    names = list(servers)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            server = Server(command_spec(name, servers[name]),
                            Path(tempfile.mkdtemp(prefix="echo-ab-")), 1)
            try:
                results[name].append(transfer(server, stream, window)["mib_s"])
            finally:
                server.stop()
    shape = f"{args.window} KiB window" if window else "bulk"
    print(f"echo, {args.conns} conn(s), {shape}, {args.mib} MiB, {args.rounds} rounds (MiB/s)")
    medians = {name: statistics.median(values) for name, values in results.items()}
    for name, values in results.items():
        print(f"  {name:7s} median {medians[name]:7.0f}   rounds " + " ".join(f"{v:.0f}" for v in values))
    print(f"  after/before {medians['after'] / medians['before']:.2f}x, "
          f"after/socat {medians['after'] / medians['socat']:.2f}x, "
          f"before/socat {medians['before'] / medians['socat']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
