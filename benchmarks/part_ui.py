"""ui: the app under a 1 GiB firehose (benchmarks/ui_firehose.py) and its time to first frame.

firehose: runs the existing `benchmarks/ui_firehose.py` (read its docstring: a
listener in the app streams N bytes to a session of the same app while the byte
log shows it and syncs at 30 Hz, a key injected every 50 ms) as its own
process, 1 GiB (128 MiB with --quick), in two ways, interleaved per round:
  - headless (`run_test`): the compositor renders every frame, only the write to
    a terminal is skipped;
  - in tmux (`--terminal`, 120x40): the real driver writing to a real terminal
    (tmux's own CPU competes on this machine, as a terminal's would).
It reports bytes counted (must equal bytes sent), MiB/s, key latency and RSS growth.

first frame: `tcpbench` (the app, no arguments) started in a 120x40 tmux pane;
the clock runs from just before `tmux new-session` (the tmux server is already
up) until `tmux capture-pane` shows the header, the byte log and the footer;
polled every ~5 ms (each poll runs tmux once: resolution ~10 ms). Five samples,
each beside one of the reference (benchmarks/ref_textual_app.py: the same four
things on screen, nothing else), in alternating order, so the ratio shows what
tcpbench adds to Textual's own start on this machine. tcpbench's modules are
compiled to bytecode first, as `pip install` leaves them. Each app is then
stopped by its pid (SIGTERM, SIGKILL after 5 s).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import time
from pathlib import Path

from benchmarks.harness import (PYTHON, ROOT, TCPBENCH, BenchFailure, Case, Metric, ServerSpec,
                                Suite)

FIREHOSE = str(ROOT / "benchmarks" / "ui_firehose.py")
REFERENCE_SCRIPT = str(ROOT / "benchmarks" / "ref_textual_app.py")
REFERENCE_APP = "bare Textual app (ref)"


def compile_bytecode() -> str:
    """Compile tcpbench's modules to bytecode before timing its start, as `pip install`
    leaves them; an editable install under PYTHONDONTWRITEBYTECODE=1 (set on some
    machines) would otherwise compile ~70 modules from source at every start."""
    done = subprocess.run([PYTHON, "-m", "compileall", "-q", str(ROOT / "tcpbench")],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        return f"could not compile tcpbench to bytecode first: {done.stderr.strip()[:200]}"
    return "tcpbench's modules compiled to bytecode first (compileall), as pip install leaves them"
MARKERS = ("tcpbench", "listeners", "Byte log", "Quit")


def parse_firehose(text: str) -> dict:
    counted = re.search(r"bytes counted ([\d,]+) of ([\d,]+) \((\w+)\)", text)
    rate = re.search(r"throughput (\d+) MiB/s over ([\d.]+) s", text)
    keys = re.search(r"key latency ms: p50 (\S+)\s+p95 (\S+)\s+max (\S+)\s+n=(\d+)", text)
    rss = re.search(r"RSS growth ([-\d.]+) MiB.*frames (\d+)", text)
    if not (counted and rate and keys and rss):
        raise BenchFailure(f"cannot read ui_firehose's report: {text[-500:]!r}")
    got, sent = int(counted[1].replace(",", "")), int(counted[2].replace(",", ""))
    values = {"mib_s": float(rate[1]), "seconds": float(rate[2]), "key_p50_ms": float(keys[1]),
              "key_p95_ms": float(keys[2]), "key_max_ms": float(keys[3]), "keys": int(keys[4]),
              "rss_growth_mib": float(rss[1]), "frames": int(rss[2]), "bytes": got}
    if got != sent:
        values["_error"] = f"the app counted {got:,} of {sent:,} bytes"
    return values


def firehose_headless(mib: int, timeout: float) -> dict:
    try:
        done = subprocess.run([PYTHON, FIREHOSE, "--mib", str(mib), "--timeout", str(timeout)],
                              capture_output=True, text=True, timeout=timeout + 60, cwd=ROOT,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BenchFailure(f"ui_firehose.py did not finish within {timeout + 60:.0f} s") from None
    if done.returncode not in (0, 1):
        raise BenchFailure(f"ui_firehose.py exited {done.returncode}: {done.stderr[-600:]!r}")
    return parse_firehose(done.stdout)


class Tmux:
    """Our own tmux server (its own socket name), held up by a bounded placeholder session."""

    def __init__(self, workdir: Path) -> None:
        self.socket = f"tcpbench-bench-{os.getpid()}"
        self.workdir = workdir
        self.run("new-session", "-d", "-s", "hold", "-x", "120", "-y", "40", "sleep", "3600")
        self.server_pid = int(self.run("display-message", "-p", "-t", "hold", "#{pid}").strip())
        self.hold_pid = self.pane_pid("hold")

    def run(self, *args: str, timeout: float = 10) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True,
                              timeout=timeout, cwd=self.workdir)
        if done.returncode != 0:
            raise BenchFailure(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def pane_pid(self, session: str) -> int:
        return int(self.run("display-message", "-p", "-t", session, "#{pane_pid}").strip())

    def capture(self, session: str) -> str:
        return self.run("capture-pane", "-p", "-t", session)

    def alive(self, session: str) -> bool:
        return subprocess.run(["tmux", "-L", self.socket, "has-session", "-t", session],
                              capture_output=True, timeout=10).returncode == 0

    def close(self) -> None:
        with contextlib.suppress(Exception):
            stop_pid(self.hold_pid)
        with contextlib.suppress(Exception):
            self.run("kill-server")
        with contextlib.suppress(Exception):
            stop_pid(self.server_pid)


def _exists(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def stop_pid(pid: int, bound: float = 5.0) -> None:
    """SIGTERM to a pid we started (through tmux), SIGKILL after `bound`."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + bound
    while _exists(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    if _exists(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def firehose_terminal(tmux: Tmux, serial: int, mib: int, timeout: float) -> dict:
    out = tmux.workdir / f"firehose-{serial}.txt"
    session = f"fh{serial}"
    tmux.run("new-session", "-d", "-s", session, "-x", "120", "-y", "40", "-c", str(ROOT),
             PYTHON, FIREHOSE, "--terminal", "--mib", str(mib), "--timeout", str(timeout),
             "--out", str(out))
    pid = tmux.pane_pid(session)
    deadline = time.monotonic() + timeout + 60
    try:
        while _exists(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _exists(pid):
            raise BenchFailure(f"ui_firehose.py --terminal did not finish within {timeout + 60:.0f} s")
    finally:
        stop_pid(pid)
        with contextlib.suppress(BenchFailure):
            tmux.run("kill-session", "-t", session)
    if not out.exists():
        raise BenchFailure("ui_firehose.py --terminal wrote no report (the run did not finish)")
    return parse_firehose(out.read_text())


def first_frame(tmux: Tmux, serial: int, argv: tuple[str, ...] = (TCPBENCH,),
                bound: float = 20.0) -> dict:
    session = f"ttf{serial}"
    t0 = time.perf_counter()
    # Run via env, no shell: tmux execs it directly, so the pane pid is the app's pid.
    tmux.run("new-session", "-d", "-s", session, "-x", "120", "-y", "40", "env", *argv)
    pid = tmux.pane_pid(session)
    screen = ""
    try:
        while True:
            screen = tmux.capture(session)
            now = time.perf_counter()
            if all(marker in screen for marker in MARKERS):
                break
            if now - t0 > bound or not _exists(pid):
                raise BenchFailure(f"no first frame within {bound:.0f} s (app alive: {_exists(pid)}); "
                                   f"screen: {screen.strip()[:300]!r}")
            time.sleep(0.005)
    finally:
        stop_pid(pid)
        with contextlib.suppress(BenchFailure):
            tmux.run("kill-session", "-t", session)
    return {"first_frame_ms": (now - t0) * 1e3}


def run(suite: Suite) -> None:
    mib = 128 if suite.quick else 1024
    timeout = 120.0
    have_tmux = shutil.which("tmux") is not None
    if not have_tmux:
        suite.emit("skipped the tmux runs (firehose in a terminal, time to first frame): "
                   "tmux not installed")
    rows = [ServerSpec("ui_firehose.py headless (run_test)", lambda p, t: [])]
    if have_tmux:
        rows.append(ServerSpec("ui_firehose.py --terminal in tmux 120x40", lambda p, t: []))
    fire = Case("ui", f"ui: {mib} MiB firehose through the app, byte log on screen, a key every 50 ms", [
        Metric("mib_s", "MiB/s", "{:.0f}"),
        Metric("key_p50_ms", "key p50 ms", "{:.1f}", higher_is_better=False),
        Metric("key_p95_ms", "key p95 ms", "{:.1f}", higher_is_better=False),
        Metric("key_max_ms", "key max ms", "{:.1f}", higher_is_better=False),
        Metric("rss_growth_mib", "RSS growth MiB", "{:.1f}", higher_is_better=False, spread=True),
        Metric("frames", "frames", "{:.0f}"),
        Metric("keys", "keys", "{:.0f}"),
    ], measure=lambda server: {}, how="interleaved and rotated, a fresh process each")
    fire.servers = rows
    fire.notes.append("no reference: the figures are absolute; every byte is counted by the engine "
                      "(a shortfall fails the run)")
    tmux = Tmux(suite.workdir) if have_tmux else None
    serial = 0
    try:
        for r in range(suite.rounds):
            order = rows[r % len(rows):] + rows[:r % len(rows)]
            for spec in order:
                serial += 1
                suite.say(f"  round {r + 1}/{suite.rounds} {fire.title}: {spec.name}")
                record = {"part": "ui", "case": fire.title, "server": spec.name, "round": r + 1}
                try:
                    if spec is rows[0]:
                        values = firehose_headless(mib, timeout)
                    else:
                        values = firehose_terminal(tmux, serial, mib, timeout)
                except BenchFailure as exc:
                    fire.errors.setdefault(spec.name, {})[r] = str(exc)
                    suite.fail(f"{fire.title}: {spec.name}, round {r + 1}: {exc}")
                    record["error"] = str(exc)
                    suite.records.append(record)
                    continue
                error = values.pop("_error", None)
                fire.results.setdefault(spec.name, {})[r] = values
                record["values"] = values
                if error:
                    fire.errors.setdefault(spec.name, {})[r] = error
                    suite.fail(f"{fire.title}: {spec.name}, round {r + 1}: {error}")
                    record["error"] = error
                suite.records.append(record)
                suite.say("    " + "  ".join(f"{k}={v}" for k, v in values.items()))
        suite.table(fire)

        if tmux is not None:
            samples = 3 if suite.quick else 5
            frame = Case("ui", "ui: time to first frame of `tcpbench` (the app)", [
                Metric("first_frame_ms", "ms from tmux new-session until the screen shows",
                       "{:.0f}", higher_is_better=False)], measure=lambda server: {},
                         how="each a fresh app", unit="start")
            name = "tcpbench in tmux 120x40, polled with capture-pane"
            frame.servers = [ServerSpec(name, lambda p, t: [TCPBENCH]),
                             ServerSpec(REFERENCE_APP, lambda p, t: [PYTHON, REFERENCE_SCRIPT],
                                        reference=True)]
            frame.notes.append(f"the screen counts as drawn when it shows all of {', '.join(MARKERS)} "
                               "(header, byte log, footer); the tmux server was already running")
            frame.notes.append(f"{REFERENCE_APP}: benchmarks/ref_textual_app.py, the same four "
                               "things on screen and nothing else: Textual's own floor here")
            frame.notes.append(compile_bytecode())
            for i in range(samples):
                for spec in frame.servers if i % 2 == 0 else frame.servers[::-1]:
                    who = spec.name
                    serial += 1
                    suite.say(f"  first frame {i + 1}/{samples}: {who}")
                    try:
                        values = first_frame(tmux, serial, tuple(spec.argv(0, tmux.workdir)))
                    except BenchFailure as exc:
                        frame.errors.setdefault(who, {})[i] = str(exc)
                        suite.fail(f"{frame.title}, {who}, start {i + 1}: {exc}")
                        continue
                    frame.results.setdefault(who, {})[i] = values
                    suite.records.append({"part": "ui", "case": frame.title, "server": who,
                                          "round": i + 1, "values": values})
                    suite.say(f"    {values['first_frame_ms']:.0f} ms")
            suite.table(frame, samples)
        else:
            frame = None
    finally:
        if tmux is not None:
            tmux.close()

    for spec in rows:
        rate = fire.median(spec.name, "mib_s")
        p50 = fire.median(spec.name, "key_p50_ms")
        growth = fire.values(spec.name, "rss_growth_mib")
        suite.goal(f"{spec.name}: >= 300 MiB/s (median {_f(rate, '{:.0f}')})",
                   None if rate is None else rate >= 300)
        suite.goal(f"{spec.name}: key p50 < 50 ms (median {_f(p50, '{:.1f}')} ms)",
                   None if p50 is None else p50 < 50)
        worst = max(growth) if growth else None
        suite.goal(f"{spec.name}: RSS growth < 50 MB in every round (max {_f(worst, '{:.1f}')} MiB = "
                   f"{_f(None if worst is None else worst * 1.048576, '{:.1f}')} MB)",
                   None if worst is None else worst * 1.048576 < 50)
    if frame is not None:
        values = frame.values(frame.servers[0].name, "first_frame_ms")
        median = statistics.median(values) if values else None
        floor = frame.values(REFERENCE_APP, "first_frame_ms")
        floor_median = statistics.median(floor) if floor else None
        suite.goal(f"first frame < 0.5 s (median {_f(median, '{:.0f}')} ms; the bare Textual app "
                   f"{_f(floor_median, '{:.0f}')} ms on this machine)",
                   None if median is None else median < 500)


def _f(value, fmt: str) -> str:
    return "-" if value is None else fmt.format(value)
