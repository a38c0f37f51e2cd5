"""Port probe wall time: `tcpbench probe` against `nc -vz` (OpenBSD netcat), on 127.0.0.1 only.

Three cases, each run `--repeat` times (median and min reported):
  closed   `probe 127.0.0.1 1-1000`: closed ports mostly (whatever listens on this
           machine in 1-1000 stays open); RST comes back at once, so this measures
           the cost per port of each tool.
  mixed    the same range plus 1000 ports right above a block of our own listeners,
           half of them open (`--open` listeners started here).
  silent   `--silent` ports whose SYNs get no answer (listen(0) sockets with a full
           accept queue: the kernel drops further SYNs, as a firewall DROP does),
           with a 1 s timeout: nc tries them one after another, tcpbench at once.

    python benchmarks/probe_range.py [--repeat 3] [--open 20] [--silent 5]

Every child is ours and bounded by a timeout; traffic stays on loopback.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.part_probe import listeners, silent_ports  # noqa: E402

TCPBENCH = [sys.executable, "-m", "tcpbench", "probe"]


def timed(cmd: list[str], limit: float) -> tuple[float, int, int]:
    """Run `cmd`; (wall seconds, exit status, output lines)."""
    started = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    seconds = time.perf_counter() - started
    return seconds, done.returncode, len((done.stdout + done.stderr).splitlines())


def measure(name: str, commands: dict[str, list[str]], repeat: int, limit: float) -> None:
    for label, cmd in commands.items():
        runs = [timed(cmd, limit) for _ in range(repeat)]
        times = [r[0] for r in runs]
        print(f"{name:<7} {label:<26} median {statistics.median(times):7.3f} s  "
              f"min {min(times):7.3f} s  exit {runs[0][1]}  lines {runs[0][2]}")
        print(f"        $ {' '.join(cmd[2:] if cmd[0] == sys.executable else cmd)}")


def engine_only(repeat: int) -> None:
    """The probe itself, in this process: what is left once Python and imports are paid for."""
    import asyncio

    from tcpbench.engine.probe import probe_list

    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        results = asyncio.run(probe_list("127.0.0.1", range(1, 1001), timeout=3))
        times.append(time.perf_counter() - started)
    print(f"{'engine':<7} {'probe_list(1-1000)':<26} median {statistics.median(times):7.3f} s  "
          f"min {min(times):7.3f} s  results {len(results)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--open", type=int, default=20, help="own listeners for the mixed case")
    parser.add_argument("--silent", type=int, default=5, help="silent ports (nc needs 1 s each)")
    args = parser.parse_args()
    nc = shutil.which("nc")
    if nc is None:
        sys.exit("nc (netcat-openbsd) is not installed")
    limit = 120.0

    measure("startup", {"tcpbench --version": [sys.executable, "-m", "tcpbench", "--version"]},
            args.repeat, limit)
    engine_only(args.repeat)
    measure("closed", {
        "tcpbench probe (table)": [*TCPBENCH, "127.0.0.1", "1-1000"],
        "tcpbench probe --json": [*TCPBENCH, "127.0.0.1", "1-1000", "--json"],
        "tcpbench probe -c 1": [*TCPBENCH, "127.0.0.1", "1-1000", "--concurrency", "1"],
        "nc -vz": [nc, "-vz", "127.0.0.1", "1-1000"],
    }, args.repeat, limit)

    with ExitStack() as stack:
        ports = sorted(listeners(stack, args.open))
        spec = ",".join(map(str, ports)) + ",1-1000"
        measure("mixed", {
            f"tcpbench probe ({args.open} open)": [*TCPBENCH, "127.0.0.1", spec],
            f"nc -vz ({args.open} open)": [nc, "-vz", "127.0.0.1", *map(str, ports), "1-1000"],
        }, args.repeat, limit)

    with ExitStack() as stack:
        ports = silent_ports(stack, args.silent)
        spec = ",".join(map(str, ports))
        measure("silent", {
            "tcpbench probe --timeout 1": [*TCPBENCH, "127.0.0.1", spec, "--timeout", "1"],
            "nc -vz -w 1": [nc, "-vz", "-w", "1", "127.0.0.1", *map(str, ports)],
        }, 1, limit)


if __name__ == "__main__":
    main()
