"""A/B of `tcpbench serve http --body x` between two checkouts, with `python3 -m http.server` beside, rotated.

    python benchmarks/http_ab.py BEFORE_DIR AFTER_DIR [--connections N] [--close] [--seconds S] [--rounds R]

BEFORE_DIR and AFTER_DIR are source trees of tcpbench (e.g. a `git worktree` of the
older commit and this checkout). Each server runs as `python -P -m tcpbench --loop
asyncio serve http --body x` with PYTHONPATH set to its tree, its event lines going to a
file, as `part_http` runs it (`echo_ab.py` does the same for echo). Each round runs the
three servers once, in an order rotated by the round, a fresh process each, and drives
each with `wrk -c N` (with `Connection: close` if asked) for S seconds. Prints each
server's median req/s and p99 and its rounds, and the ratios of the medians: the same
figures as the http part's goals (`>= 5x python3 -m http.server` under close).
"""

from __future__ import annotations

import shutil
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.ab import parser, ratios, rotated_rounds, tree_command  # noqa: E402
from benchmarks.harness import PYTHON, ServerSpec, command_spec  # noqa: E402
from benchmarks.part_http import _docroot, wrk  # noqa: E402


def main() -> int:
    args_parser = parser(__doc__)
    args_parser.add_argument("--connections", type=int, default=50)
    args_parser.add_argument("--close", action="store_true",
                             help="send Connection: close (a connection per request)")
    args_parser.add_argument("--seconds", type=int, default=5)
    args = args_parser.parse_args()
    if shutil.which("wrk") is None:
        print("http_ab: wrk is not installed", file=sys.stderr)
        return 2
    system_python = shutil.which("python3") or PYTHON
    specs = {name: command_spec(name, tree_command(tree, "serve", "http", "--body", "x"))
             for name, tree in (("before", args.before), ("after", args.after))}
    specs["http.server"] = ServerSpec(
        "http.server", lambda port, workdir: [system_python, "-m", "http.server", str(port),
                                              "--bind", "127.0.0.1"], cwd=_docroot)
    results = rotated_rounds(specs, args.rounds,
                             lambda server: wrk(server, args.connections, args.seconds, args.close))
    mode = "Connection: close" if args.close else "keep-alive"
    print(f"http, wrk -c{args.connections} -d{args.seconds}s, {mode}, {args.rounds} rounds (req/s)")
    medians = {name: statistics.median(v["rps"] for v in values) for name, values in results.items()}
    for name, values in results.items():
        p99 = statistics.median(v["p99_ms"] or 0.0 for v in values)
        errors = max(v["errors"] for v in values)
        print(f"  {name:11s} median {medians[name]:8.0f}   p99 {p99:8.2f} ms   socket errors max "
              f"{errors}   rounds " + " ".join(f"{v['rps']:.0f}" for v in values))
    print(ratios(medians, "http.server"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
