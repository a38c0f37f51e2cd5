"""tcpbench's benchmark suite: `python -m benchmarks [PART ...]` (or `benchmarks/run`).

Parts: echo, http, scale, chat, ui, tls (default: all, in that order). Each prints one
table per case: every server's median, min and max over interleaved, rotated
rounds (a fresh server process per measurement), and its ratio to the suite's
own bare reference measured in the same round. Peers from Debian's packages
(ncat, socat, wrk, nginx-light, python3 -m http.server) are skipped with a line
when missing. All traffic is on 127.0.0.1; every load is bounded in count and
time; servers are stopped by the pid the suite started. Not part of CI.

    benchmarks/run                      # everything, 5 rounds
    benchmarks/run chat echo --rounds 3
    benchmarks/run --quick              # small sizes, 1 round: a smoke test, not for goals
    benchmarks/run --json raw.json --out report.txt

Exit status 1 when any byte was wrong or lost, or a tcpbench/reference server failed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

from benchmarks import part_chat
from benchmarks.harness import ROOT, TCPBENCH, Suite, has_uvloop, raise_nofile

ORDER = ["echo", "http", "scale", "chat", "ui", "tls", "probe"]


def _load_parts() -> dict:
    parts = {"chat": part_chat.run}
    for name in ("echo", "http", "scale", "ui", "tls", "probe"):
        try:
            module = __import__(f"benchmarks.part_{name}", fromlist=["run"])
        except ModuleNotFoundError as exc:
            if exc.name != f"benchmarks.part_{name}":
                raise
            continue
        parts[name] = module.run
    return parts


def _versions() -> list[str]:
    probes = [("ncat", ["ncat", "--version"], r"Version (\S+)"),
              ("socat", ["socat", "-V"], r"socat version (\S+)"),
              ("wrk", ["wrk", "--version"], r"wrk (\S+)"),
              ("nginx", ["nginx", "-v"], r"nginx/(\S+)"),
              ("tmux", ["tmux", "-V"], r"tmux (\S+)"),
              ("nc (OpenBSD)", ["nc", "-h"], r"OpenBSD netcat \(Debian patchlevel (\S+)\)"),
              ("iperf3", ["iperf3", "--version"], r"iperf (\S+)"),
              ("python3", ["python3", "-V"], r"Python (\S+)")]
    out = []
    for name, argv, pattern in probes:
        if shutil.which(argv[0]) is None:
            out.append(f"{name} missing")
            continue
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            out.append(f"{name} ?")
            continue
        match = re.search(pattern, done.stdout + done.stderr)
        out.append(f"{name} {match[1] if match else '?'}")
    return out


def _cpu_ticks() -> tuple[int, int] | None:
    """(stolen, total) CPU ticks of the whole machine so far, from /proc/stat; None elsewhere.

    On a virtual machine the host may run others on "our" cores: that time is steal.
    A run with much of it measures the neighbours as much as the servers, so the
    report says how much there was."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    if len(fields) < 8:
        return None
    return fields[7], sum(fields[:8])


def _stolen(since: tuple[int, int] | None) -> str:
    now = _cpu_ticks()
    if since is None or now is None or now[1] <= since[1]:
        return ""
    share = (now[0] - since[0]) / (now[1] - since[1])
    return f"; CPU stolen by the host {share:.0%}"


def _header(suite: Suite, parts: list[str]) -> None:
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        rev = "?"
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    suite.emit(f"tcpbench benchmarks, {datetime.datetime.now():%Y-%m-%d %H:%M}, git {rev or '?'}")
    suite.emit(f"machine: {os.cpu_count()} cpus, load average {load} at start; Python "
               f"{platform.python_version()}; tcpbench {TCPBENCH}")
    suite.emit(f"peers: {'; '.join(_versions())}")
    suite.emit("tcpbench rows: '(as typed)' is the command on the standard asyncio loop (a default "
               "install); '(uvloop)' is the same command with the [fast] extra's uvloop"
               + ("" if has_uvloop() else " (not installed here: no such rows)"))
    suite.emit(f"parts: {' '.join(parts)}; rounds: {suite.rounds}"
               f"{'; QUICK (small sizes, smoke test only: not for goals)' if suite.quick else ''}")
    suite.emit("")


def main(argv: list[str] | None = None) -> int:
    parts = _load_parts()
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("parts", nargs="*", metavar="PART",
                        help=f"parts to run (default: all of {', '.join(o for o in ORDER if o in parts)})")
    parser.add_argument("--rounds", type=int, default=None,
                        help="interleaved rounds per case (default 5; 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and short runs, 1 round: a fast check, not for goals")
    parser.add_argument("--echo-mib", type=int, default=None, metavar="N",
                        help="echo: MiB through each measurement (default 256; 64 with --quick)")
    parser.add_argument("--wrk-seconds", type=int, default=None, metavar="S",
                        help="http: seconds per wrk run (default 5; 2 with --quick)")
    parser.add_argument("--json", metavar="FILE", help="also write every raw measurement here")
    parser.add_argument("--out", metavar="FILE", help="also write the report (the tables) here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    chosen = args.parts or [o for o in ORDER if o in parts]
    unknown = [p for p in chosen if p not in parts]
    if unknown:
        parser.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(parts)}")
    chosen = [o for o in ORDER if o in chosen]
    rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    if rounds < 1:
        parser.error("--rounds must be at least 1")
    raise_nofile()
    started = time.monotonic()
    run_ticks = _cpu_ticks()
    with tempfile.TemporaryDirectory(prefix="tcpbench-bench-") as tmp:
        suite = Suite(rounds, args.quick, Path(tmp), verbose=not args.quiet)
        suite.options = {"echo_mib": args.echo_mib, "wrk_seconds": args.wrk_seconds}
        _header(suite, chosen)
        for name in chosen:
            suite.emit(f"== {name} ==")
            part_started = time.monotonic()
            part_ticks = _cpu_ticks()
            try:
                parts[name](suite)
            except KeyboardInterrupt:
                suite.fail(f"{name}: interrupted")
                break
            except Exception:
                suite.fail(f"{name}: the part crashed:\n{traceback.format_exc()}")
            suite.emit(f"  ({name} took {time.monotonic() - part_started:.0f} s"
                       f"{_stolen(part_ticks)})")
        suite.emit(f"finished in {time.monotonic() - started:.0f} s, load average "
                   f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end{_stolen(run_ticks)}")
        if suite.failures:
            suite.emit(f"FAILURES ({len(suite.failures)}):")
            for failure in suite.failures:
                suite.emit(f"  FAIL: {failure}")
        if args.json:
            suite.write_json(args.json)
        if args.out:
            Path(args.out).write_text("\n".join(suite.outputs) + "\n")
    return 1 if suite.failures else 0


if __name__ == "__main__":
    sys.exit(main())
