"""The measuring instrument shared by every part of `python -m benchmarks`.

- Servers are separate processes started from an argv, each in its own process
  group (so a peer's forked children are ours to stop too), with stdin from
  /dev/null, stdout to a file in the suite's temp dir (what a user redirecting
  `tcpbench serve ... > file` gets: not /dev/null, not a pipe we drain) and the
  RLIMIT_NOFILE soft limit raised to the hard limit (inherited: no preexec_fn,
  so starting a server never forks this process; see `raise_nofile`).
- A server that prints `listening on 127.0.0.1:PORT` as its first line (tcpbench
  and the suite's reference servers) is asked for port 0 and its port is read
  from that line; a peer is given a free port and is ready when it accepts.
- Stopping is by the pid we started: SIGTERM to its process group, SIGKILL after
  a bound, then wait.
- CPU is the run time of every thread in the server's process group (ns, from
  /proc/PID/task/TID/schedstat; plus reaped children's cutime+cstime); RSS is
  VmRSS from /proc/PID/status.
- Rounds are interleaved and rotated: round r runs every server once per case,
  in the order rotated by r, each in a fresh process. A table shows each
  server's median, min and max, and the median (and range) of its per-round
  ratio to the reference measured in the same round.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
_bin = Path(sys.executable).parent / "tcpbench"
TCPBENCH = str(_bin) if _bin.exists() else (shutil.which("tcpbench") or "tcpbench")
REFSERVERS = str(ROOT / "benchmarks" / "refservers.py")
# "As typed" is what a default install runs: the standard asyncio loop. tcpbench picks
# uvloop by itself when the [fast] extra is installed; those rows say "uvloop".
os.environ["TCPBENCH_LOOP"] = "asyncio"


def has_uvloop() -> bool:
    """True when tcpbench's interpreter can import uvloop (the [fast] extra)."""
    return subprocess.run([PYTHON, "-c", "import uvloop"], capture_output=True).returncode == 0


def tcpbench_uvloop(*args: str) -> list[str]:
    """The argv of `tcpbench ARGS` on uvloop (as with the [fast] extra installed)."""
    return [TCPBENCH, "--loop", "uvloop", *args]


def uvloop_row(name: str, argv: Callable[[int, Path], list[str]]) -> list["ServerSpec"]:
    """A tcpbench row on uvloop, or none when uvloop is not installed (said in the header)."""
    if not has_uvloop():
        return []
    return [ServerSpec(name, argv, port_from_output=True)]
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)\s*$")


class BenchFailure(Exception):
    """A measurement that went wrong: a byte wrong or lost, a timeout, a server that died."""


def raise_nofile() -> None:
    """The soft RLIMIT_NOFILE up to the hard limit, here and so in every child started after.

    Raised in this process rather than in a `preexec_fn`: a `preexec_fn` makes `subprocess`
    fork instead of vfork, and a fork marks every page of this (large) client process
    copy-on-write, so the next measurement paid a page fault per 4 KiB of its receive
    buffer: about 100 ms of client time per 256 MiB, charged to whichever server ran next."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def nofile_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:60]


# --- servers -----------------------------------------------------------------------


@dataclass
class ServerSpec:
    """How to start one server. `argv(port, workdir)` builds the command line."""

    name: str
    argv: Callable[[int, Path], list[str]]
    port_from_output: bool = False
    """True: the first output line is `listening on 127.0.0.1:PORT` (port 0 is passed)."""
    needs: tuple[str, ...] = ()
    """Executables that must be on PATH; a missing one skips the server with a line."""
    reference: bool = False
    peer: bool = False
    """A third-party program: if it cannot do the job it is skipped (with a line), not a failure."""
    cwd: Callable[[Path], str] | None = None
    start_timeout: float = 15.0

    def missing(self) -> str | None:
        for exe in self.needs:
            if shutil.which(exe) is None:
                return f"{exe} not installed"
        return None


def command_spec(name: str, command: list[str] | Callable[[int], list[str]]) -> ServerSpec:
    """A spec for a fixed command that prints `listening on 127.0.0.1:PORT` (port 0 is
    passed), or for `command(port)` given a free port (a peer that takes its port)."""
    if callable(command):
        return ServerSpec(name, lambda port, workdir: command(port))
    return ServerSpec(name, lambda port, workdir: command, port_from_output=True)


def _group_members(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def _proc_cpu_seconds(pid: int) -> float:
    """CPU seconds of one process: its threads' run time in ns from /proc/PID/task/*/schedstat
    (utime+stime from /proc/PID/stat, 10 ms ticks, if schedstat is missing), plus the
    cutime+cstime of its reaped children."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    children = (int(fields[13]) + int(fields[14])) / CLK_TCK
    total_ns = 0
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                total_ns += int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return (int(fields[11]) + int(fields[12])) / CLK_TCK + children
    return total_ns / 1e9 + children


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchFailure(f"no VmRSS for pid {pid}")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Server:
    """A running server process (started by `Suite.server`)."""

    def __init__(self, spec: ServerSpec, workdir: Path, serial: int) -> None:
        self.spec = spec
        self.workdir = workdir
        base = workdir / f"{serial:04d}-{slug(spec.name)}"
        self.out_path = Path(f"{base}.out")
        self.err_path = Path(f"{base}.err")
        port = 0 if spec.port_from_output else free_port()
        argv = spec.argv(port, workdir)
        self.argv = argv
        raise_nofile()
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                cwd=spec.cwd(workdir) if spec.cwd else None, start_new_session=True)
        self.pid = self.proc.pid
        try:
            self.port = self._wait_port() if spec.port_from_output else self._wait_accepting(port)
        except BaseException:
            self.stop()
            raise

    def _died(self, what: str) -> BenchFailure:
        """The failure, with the last lines of its stderr (a traceback's last line says most)."""
        err_lines = self.err_path.read_bytes()[-4000:].decode("utf-8", "replace").strip().splitlines()
        err = " | ".join(line.strip() for line in err_lines[-2:])[-400:]
        out = self.out_path.read_bytes()[:200].decode("utf-8", "replace").strip()
        return BenchFailure(f"{self.spec.name}: {what} (exit {self.proc.poll()}; "
                            f"stdout {out!r}; stderr: {err or 'empty'})")

    def _wait_port(self) -> int:
        deadline = time.monotonic() + self.spec.start_timeout
        while time.monotonic() < deadline:
            with open(self.out_path, "rb") as f:
                first = f.readline()
            if first.endswith(b"\n"):
                match = LISTENING.match(first)
                if not match:
                    raise self._died(f"first line is not 'listening on 127.0.0.1:PORT': {first!r}")
                return int(match[1])
            if self.proc.poll() is not None:
                raise self._died("exited before listening")
            time.sleep(0.01)
        raise self._died(f"no 'listening on' line within {self.spec.start_timeout:.0f} s")

    def _wait_accepting(self, port: int) -> int:
        deadline = time.monotonic() + self.spec.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise self._died("exited before accepting")
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                time.sleep(0.05)  # let a peer notice the probe connection went away
                return port
            except OSError:
                time.sleep(0.02)
        raise self._died(f"not accepting on {port} within {self.spec.start_timeout:.0f} s")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            raise self._died("died during the measurement")

    def cpu_seconds(self) -> float:
        """CPU seconds of the server's whole process group so far (every thread, reaped children)."""
        return sum(_proc_cpu_seconds(pid) for pid in _group_members(self.pid))

    def rss_kib(self) -> int:
        return rss_kib(self.pid)

    def wchans(self) -> list[str]:
        """Where the group's processes sleep in the kernel (a stall's diagnosis)."""
        out = []
        for pid in _group_members(self.pid):
            try:
                with open(f"/proc/{pid}/wchan") as f:
                    where = f.read().strip()
            except OSError:
                continue
            if where and where != "0":
                out.append(where)
        return sorted(set(out))

    def fd_count(self) -> int:
        return fd_count(self.pid)

    def output_size(self) -> int:
        return self.out_path.stat().st_size

    def stderr_trouble(self) -> str | None:
        err = self.err_path.read_bytes()
        if b"Traceback" in err or b"Error" in err:
            lines = err[-4000:].decode("utf-8", "replace").strip().splitlines()
            return " | ".join(line.strip() for line in lines[-2:])[-400:]
        return None

    def stop(self, bound: float = 5.0) -> int | None:
        """SIGTERM to the process group we started, SIGKILL after `bound` seconds, then wait."""
        pgid = self.pid
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
            code = self.proc.wait(timeout=bound)
        # Forked children (socat, ncat) may outlive the leader: they are in our group.
        deadline = time.monotonic() + bound
        while _group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _group_members(pgid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
        return code


# --- results ---------------------------------------------------------------------------


@dataclass
class Metric:
    key: str
    label: str
    fmt: str = "{:.0f}"
    higher_is_better: bool = True
    ratio: bool = False
    """Show this metric's median per-round ratio to the reference too."""
    spread: bool = False
    """Show min and max (the primary metric always shows them)."""


def _fmt(fmt: str, value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:
        return "nan"
    return fmt.format(value)


@dataclass
class Case:
    """One table: a set of servers measured the same way."""

    part: str
    title: str
    metrics: list[Metric]
    measure: Callable[[Server], dict[str, Any]]
    precheck: Callable[[Server], dict[str, Any]] | None = None
    applies: Callable[[ServerSpec], bool] = lambda spec: True
    notes: list[str] = field(default_factory=list)
    results: dict[str, dict[int, dict[str, Any]]] = field(default_factory=dict)
    errors: dict[str, dict[int, str]] = field(default_factory=dict)
    dropped: dict[str, str] = field(default_factory=dict)
    servers: list[ServerSpec] = field(default_factory=list)
    how: str = "interleaved and rotated, a fresh server process each"
    """How the rounds ran, for the table's title."""
    unit: str = "round"
    peer_notes: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    """(peer, what went wrong) -> the rounds it happened in (a peer's wrong bytes are noted, not failed)."""

    @property
    def primary(self) -> Metric:
        return self.metrics[0]

    @property
    def reference(self) -> str | None:
        for spec in self.servers:
            if spec.reference:
                return spec.name
        return None

    def values(self, server: str, key: str) -> list[float]:
        return [v[key] for _, v in sorted(self.results.get(server, {}).items())
                if v.get(key) is not None]

    def ratios(self, server: str, key: str) -> list[float]:
        ref = self.reference
        if ref is None:
            return []
        mine = self.results.get(server, {})
        theirs = self.results.get(ref, {})
        out = []
        for r, values in mine.items():
            a, b = values.get(key), theirs.get(r, {}).get(key)
            if a is not None and b:
                out.append(a / b)
        return out

    def median(self, server: str, key: str) -> float | None:
        values = self.values(server, key)
        return statistics.median(values) if values else None

    def ratio(self, server: str, key: str | None = None) -> float | None:
        ratios = self.ratios(server, key or self.primary.key)
        return statistics.median(ratios) if ratios else None

    def table(self, rounds: int, quick: bool) -> str:
        primary = self.primary
        direction = "higher is better" if primary.higher_is_better else "lower is better"
        head = (f"{self.title} -- {primary.label}, {direction}; {rounds} {self.unit}"
                f"{'s' if rounds != 1 else ''} {self.how}"
                f"{'  [QUICK: small sizes, not for goals]' if quick else ''}")
        header = ["server", "median", "min", "max"]
        if self.reference:
            header.append("x ref (range)")
        extra: list[tuple[str, Callable[[str], str]]] = []
        for metric in self.metrics[1:]:
            extra.append((metric.label, lambda s, m=metric: _fmt(m.fmt, self.median(s, m.key))))
            if metric.spread:
                extra.append((f"{metric.label} max",
                              lambda s, m=metric: _fmt(m.fmt, max(self.values(s, m.key), default=None))))
            if metric.ratio and self.reference:
                extra.append((f"{metric.label} x ref", lambda s, m=metric: self._ratio_text(s, m.key)))
        header += [label for label, _ in extra]
        header.append("ok")
        rows = []
        for spec in self.servers:
            name = spec.name + (" [ref]" if spec.reference else "")
            values = self.values(spec.name, primary.key)
            failures = self.errors.get(spec.name, {})
            if spec.name in self.dropped and not values:
                rows.append([name, f"skipped: {self.dropped[spec.name]}"])
                continue
            row = [name]
            if values:
                row += [_fmt(primary.fmt, statistics.median(values)), _fmt(primary.fmt, min(values)),
                        _fmt(primary.fmt, max(values))]
            else:
                row += ["-", "-", "-"]
            if self.reference:
                row.append(self._ratio_text(spec.name, primary.key))
            row += [fn(spec.name) for _, fn in extra]
            seen = len(set(self.results.get(spec.name, {})) | set(failures))
            row.append(f"{seen}/{seen}" if not failures else f"FAILED {len(failures)}/{seen}")
            rows.append(row)
        lines = [head, _grid(header, rows)]
        for spec in self.servers:
            for r, error in sorted(self.errors.get(spec.name, {}).items()):
                lines.append(f"  FAILED {spec.name}, round {r + 1}: {error}")
        lines += [f"  note: {note}" for note in self.notes]
        for (name, error), seen in self.peer_notes.items():
            which = ", ".join(str(r + 1) for r in seen)
            lines.append(f"  note: {name}, round{'s' if len(seen) > 1 else ''} {which}: {error}")
        return "\n".join(lines)

    def _ratio_text(self, server: str, key: str) -> str:
        ratios = self.ratios(server, key)
        if not ratios:
            return "-"
        text = f"{statistics.median(ratios):.2f}"
        if len(ratios) > 1 and server != self.reference:
            text += f" ({min(ratios):.2f}-{max(ratios):.2f})"
        return text


def _grid(header: list[str], rows: list[list[str]]) -> str:
    width = len(header)
    widths = [len(h) for h in header]
    for row in rows:
        if len(row) == width:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))
    out = []

    def line(cells: list[str]) -> str:
        parts = [cells[0].ljust(widths[0])]
        parts += [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
        return "  ".join(parts).rstrip()

    out.append(line(header))
    out.append("  ".join("-" * w for w in widths))
    for row in rows:
        out.append(line(row) if len(row) == width else f"{row[0].ljust(widths[0])}  {row[1]}")
    return "\n".join(out)


# --- the suite ---------------------------------------------------------------------------


class Suite:
    """Settings, temp dir, failures and raw records shared by the parts of one run."""

    def __init__(self, rounds: int, quick: bool, workdir: Path, verbose: bool = True) -> None:
        self.rounds = rounds
        self.quick = quick
        self.workdir = workdir
        self.verbose = verbose
        self.failures: list[str] = []
        self.records: list[dict[str, Any]] = []
        self.outputs: list[str] = []
        self.options: dict[str, Any] = {}
        self._serial = 0

    def option(self, name: str, default: Any, quick: Any) -> Any:
        value = self.options.get(name)
        if value is not None:
            return value
        return quick if self.quick else default

    def say(self, text: str) -> None:
        """A progress line (stderr, so stdout is the tables)."""
        if self.verbose:
            print(text, file=sys.stderr, flush=True)

    def emit(self, text: str) -> None:
        """Part of the report (stdout, kept for LATEST.txt)."""
        print(text, flush=True)
        self.outputs.append(text)

    def fail(self, text: str) -> None:
        self.failures.append(text)
        print(f"FAIL: {text}", file=sys.stderr, flush=True)

    @contextlib.contextmanager
    def server(self, spec: ServerSpec) -> Iterator[Server]:
        self._serial += 1
        server = Server(spec, self.workdir, self._serial)
        try:
            yield server
        finally:
            server.stop()
            with contextlib.suppress(OSError):
                if server.out_path.stat().st_size > 64 << 20:
                    server.out_path.unlink()  # big event logs are not worth keeping until the end

    def available(self, specs: list[ServerSpec]) -> list[ServerSpec]:
        out = []
        for spec in specs:
            why = spec.missing()
            if why:
                self.emit(f"skipped {spec.name}: {why}")
            else:
                out.append(spec)
        return out

    def run_cases(self, cases: list[Case], specs: list[ServerSpec], rounds: int | None = None) -> None:
        """Every case, every round, every server in rotated order, a fresh process each time."""
        rounds = rounds or self.rounds
        for case in cases:
            case.servers = [s for s in specs if case.applies(s)]
        for case in cases:
            if case.precheck is None:
                continue
            for spec in case.servers:
                self.say(f"  precheck {case.title}: {spec.name}")
                try:
                    with self.server(spec) as server:
                        case.precheck(server)
                        server.check_alive()
                except BenchFailure as exc:
                    self.record_failure(case, spec, None, str(exc))
        for r in range(rounds):
            for case in cases:
                order = case.servers[r % len(case.servers):] + case.servers[:r % len(case.servers)] \
                    if case.servers else []
                for position, spec in enumerate(order):
                    if spec.name in case.dropped:
                        continue
                    self.say(f"  round {r + 1}/{rounds} {case.title}: {spec.name}")
                    record: dict[str, Any] = {"part": case.part, "case": case.title,
                                              "server": spec.name, "round": r + 1,
                                              "position": position}
                    trouble = None
                    try:
                        with self.server(spec) as server:
                            try:
                                values = case.measure(server)
                                server.check_alive()
                            finally:
                                trouble = server.stderr_trouble()
                            if trouble and not spec.peer:
                                self.say(f"  warning: {spec.name} wrote to stderr: {trouble}")
                                record["stderr"] = trouble
                    except BenchFailure as exc:
                        error = str(exc) + (f" [server stderr: {trouble}]" if trouble else "")
                        record["error"] = error
                        self.records.append(record)
                        self.record_failure(case, spec, r, error)
                        continue
                    # A measurement can finish with figures *and* be wrong (a line lost): both count.
                    error = values.pop("_error", None)
                    if error and trouble:
                        error += f" [server stderr: {trouble}]"
                    case.results.setdefault(spec.name, {})[r] = values
                    record["values"] = values
                    self.say("    " + "  ".join(f"{k}={_short(v)}" for k, v in values.items()))
                    if error:
                        record["error"] = error
                        if spec.peer:
                            case.peer_notes.setdefault((spec.name, error), []).append(r)
                            self.say(f"    note: {spec.name}, round {r + 1}: {error}")
                        else:
                            self.record_failure(case, spec, r, error, drop=False)
                    self.records.append(record)

    def run_rounds(self, case: Case, specs: list[ServerSpec],
                   measure: Callable[[ServerSpec], dict[str, Any]], rounds: int) -> None:
        """Every spec once a round, in an order rotated by the round, for a case whose
        `measure(spec)` starts what it needs itself (a command timed whole, a peer's own
        client and server): its figures, with `_error` when an answer was wrong, or
        BenchFailure. A peer that fails is dropped with a line; its wrong answers are noted."""
        case.servers = specs
        for r in range(rounds):
            for spec in specs[r % len(specs):] + specs[:r % len(specs)] if specs else []:
                if spec.name in case.dropped:
                    continue
                self.say(f"  round {r + 1}/{rounds} {case.title}: {spec.name}")
                try:
                    values = measure(spec)
                except BenchFailure as exc:
                    self.record_failure(case, spec, r, str(exc))
                    continue
                error = values.pop("_error", None)
                case.results.setdefault(spec.name, {})[r] = values
                self.records.append({"part": case.part, "case": case.title, "server": spec.name,
                                     "round": r + 1, "values": values, "error": error})
                if error and spec.peer:
                    case.peer_notes.setdefault((spec.name, error), []).append(r)
                elif error:
                    self.record_failure(case, spec, r, error, drop=False)

    def record_failure(self, case: Case, spec: ServerSpec, r: int | None, error: str,
                drop: bool = True) -> None:
        if spec.peer and drop:
            case.dropped[spec.name] = error if len(error) < 200 else error[:197] + "..."
            where = "the precheck" if r is None else f"round {r + 1}"
            self.emit(f"skipped {spec.name} in '{case.title}' from {where} on: "
                      f"{case.dropped[spec.name]}")
            if spec.name in case.results:
                case.notes.append(f"{spec.name} dropped in {where}: {case.dropped[spec.name]}")
            return
        case.errors.setdefault(spec.name, {})[r if r is not None else -1] = error
        self.fail(f"{case.title}: {spec.name}{'' if r is None else f', round {r + 1}'}: {error}")

    def table(self, case: Case, rounds: int | None = None) -> None:
        self.emit(case.table(rounds or self.rounds, self.quick))
        self.emit("")

    def goal(self, text: str, ok: bool | None) -> None:
        mark = "n/a " if ok is None else ("met " if ok else "MISSED")
        self.emit(f"  goal {mark:6} {text}{'  [QUICK run: not for goals]' if self.quick else ''}")

    def write_json(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump({"rounds": self.rounds, "quick": self.quick, "records": self.records,
                       "failures": self.failures}, f, indent=1, default=str)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"
