"""probe: `tcpbench probe` beside `nc -vz` (OpenBSD netcat), the tool its users come from.

Three cases on 127.0.0.1, each tool once per round in an order rotated by the round, a
fresh process each: the wall time of the command as typed, Python's start included.

- closed: ports 1-1000. Nearly all refuse at once (RST), so this is each tool's cost per port
  and its start.
- mixed: the same range after 20 ports of our own that are open (the kernel completes the
  handshake; nothing accepts, as on a service too busy to answer).
- silent: 5 ports that never answer a SYN (listen(0) with a full accept queue, so the kernel
  drops further SYNs, as a firewall DROP does), with a 1 s timeout.

Every run is checked: the ports each tool calls open (and, for silent, timed out) must be
the ports that are (the listeners made here, plus whatever listens in 1-1000 on this
machine, found with plain connects before the rounds). `tcpbench probe` is run as typed
(its table) and with `--json`; the table's counts are read from its summary line.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from typing import Callable

from benchmarks.harness import BenchFailure, Case, Metric, ServerSpec, Suite

TCPBENCH_PROBE = [sys.executable, "-m", "tcpbench", "probe"]
RANGE = (1, 1000)
OWN_OPEN = 20
SILENT = 5
LIMIT_S = 60.0
NC_OPEN = re.compile(r"Connection to \S+ (\d+) port .* succeeded")
NC_TIMED_OUT = re.compile(r"port (\d+) \(tcp\) timed out")
SUMMARY = re.compile(r"^probed (\d+) ports? .*?: (.*)$", re.M)


def listeners(stack: ExitStack, count: int) -> list[int]:
    """`count` listening sockets on 127.0.0.1 that never accept (the kernel still completes
    handshakes into the backlog)."""
    ports = []
    for _ in range(count):
        sock = stack.enter_context(socket.socket())
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        ports.append(sock.getsockname()[1])
    return sorted(ports)


def silent_ports(stack: ExitStack, count: int) -> list[int]:
    """Ports that never answer a SYN: listen(0) and an accept queue already full."""
    ports = []
    for _ in range(count):
        server = stack.enter_context(socket.socket())
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        for _ in range(3):
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
        ports.append(port)
    return sorted(ports)


def open_in_range() -> set[int]:
    """What listens on 127.0.0.1 in `RANGE` on this machine (a plain connect to each)."""
    found = set()
    for port in range(RANGE[0], RANGE[1] + 1):
        with socket.socket() as sock:
            sock.settimeout(1.0)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                found.add(port)
    return found


def run_timed(argv: list[str]) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=LIMIT_S,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise BenchFailure(f"no result within {LIMIT_S:g} s") from exc
    return time.perf_counter() - started, done.stdout + done.stderr


def read_nc(text: str) -> tuple[set[int], set[int], int]:
    lines = text.splitlines()
    return ({int(m.group(1)) for m in map(NC_OPEN.search, lines) if m},
            {int(m.group(1)) for m in map(NC_TIMED_OUT.search, lines) if m}, len(lines))


def read_json(text: str) -> tuple[set[int], set[int], int]:
    rows = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return ({r["port"] for r in rows if r["outcome"] == "open"},
            {r["port"] for r in rows if r["outcome"] == "timed_out"}, len(rows))


def read_table_counts(text: str) -> tuple[int, int, int]:
    match = SUMMARY.search(text)
    if match is None:
        raise BenchFailure(f"no summary line in tcpbench probe's output: {text[-200:]!r}")
    counts = dict((name, int(n)) for n, name in re.findall(r"(\d+) ([a-z_ ]+?)(?:,|$)", match.group(2)))
    return counts.get("open", 0), counts.get("timed out", 0), int(match.group(1))


class Tool:
    def __init__(self, name: str, argv: Callable[[list[int], str], list[str]], read: str,
                 needs: str | None = None, reference: bool = False) -> None:
        self.spec = ServerSpec(name, lambda p, t: [], needs=(needs,) if needs else (),
                               reference=reference, peer=needs is not None)
        self.argv = argv
        self.read = read

    def measure(self, ports: list[int], port_list: str, want_open: set[int],
                want_silent: set[int]) -> dict:
        seconds, text = run_timed(self.argv(ports, port_list))
        if self.read == "table":
            opened, silent, total = read_table_counts(text)
            right = opened == len(want_open) and silent == len(want_silent) and total == len(ports)
            seen = f"{opened} open, {silent} timed out of {total}"
        else:
            opened_set, silent_set, total = (read_nc if self.read == "nc" else read_json)(text)
            right = opened_set == want_open and silent_set == want_silent
            seen = f"open {sorted(opened_set)[:6]}, timed out {sorted(silent_set)[:6]}"
        values = {"seconds": seconds, "per_port_ms": seconds / len(ports) * 1000}
        if not right:
            values["_error"] = (f"wrong answer: {seen}; expected {len(want_open)} open, "
                                f"{len(want_silent)} timed out of {len(ports)}")
        return values


def tools(timeout: str) -> list[Tool]:
    nc_wait = ["-w", timeout] if timeout else []
    tcp_wait = ["--timeout", timeout] if timeout else []
    return [
        Tool("tcpbench probe (as typed)", lambda ports, spec: [*TCPBENCH_PROBE, "127.0.0.1", spec, *tcp_wait],
             "table"),
        Tool("tcpbench probe --json", lambda ports, spec: [*TCPBENCH_PROBE, "127.0.0.1", spec, "--json",
                                                           *tcp_wait], "json"),
        Tool("nc -vz (OpenBSD netcat)", lambda ports, spec: ["nc", "-vz", *nc_wait, "127.0.0.1",
                                                             *map(str, ports)],
             "nc", needs="nc", reference=True),
    ]


def run(suite: Suite) -> None:
    if shutil.which("nc") is None:
        suite.emit("skipped nc -vz (OpenBSD netcat): nc not installed; tcpbench probe is "
                   "measured alone")
    busy = open_in_range()
    with ExitStack() as stack:
        own = listeners(stack, OWN_OPEN)
        quiet = silent_ports(stack, SILENT)
        full = list(range(RANGE[0], RANGE[1] + 1))
        shapes = [
            ("closed", f"ports {RANGE[0]}-{RANGE[1]}", full, f"{RANGE[0]}-{RANGE[1]}", busy, set(), ""),
            ("mixed", f"{OWN_OPEN} open ports of our own, then {RANGE[0]}-{RANGE[1]}", own + full,
             ",".join(map(str, own)) + f",{RANGE[0]}-{RANGE[1]}", busy | set(own), set(), ""),
            ("silent", f"{SILENT} ports that drop SYNs, 1 s timeout", quiet,
             ",".join(map(str, quiet)), set(), set(quiet), "1"),
        ]
        for label, what, ports, port_list, want_open, want_silent, timeout in shapes:
            kit = [tool for tool in tools(timeout) if not tool.spec.missing()]
            case = Case("probe", f"probe, {label}: 127.0.0.1, {what}", [
                Metric("seconds", "wall s (the command as typed)", "{:.3f}", higher_is_better=False),
                Metric("per_port_ms", "ms per port", "{:.3f}", higher_is_better=False),
            ], measure=lambda server: {}, how="interleaved and rotated, a fresh process each")
            by_name = {tool.spec.name: tool for tool in kit}

            def measure(spec: ServerSpec, ports=ports, port_list=port_list, want_open=want_open,
                        want_silent=want_silent) -> dict:
                return by_name[spec.name].measure(ports, port_list, want_open, want_silent)

            rounds = 1 if suite.quick else suite.rounds
            suite.run_rounds(case, [tool.spec for tool in kit], measure, rounds)
            if label == "closed":
                case.notes.append(f"open in {RANGE[0]}-{RANGE[1]} on this machine before the rounds: "
                                  f"{sorted(busy) or 'none'}")
            if label == "mixed":
                case.notes.append("tcpbench closes each open connection gracefully (FIN, then up to "
                                  "ten connect round trips, 50 ms to 0.5 s, for the peer's, so the "
                                  "kernel never sends RST); a listener that never accepts never "
                                  "answers that FIN, so those waits overlap once; nc closes at once")
            if label == "silent":
                case.notes.append("nc tries one port after another (1 s each); tcpbench probes "
                                  "up to 100 at once")
            suite.table(case, rounds)
