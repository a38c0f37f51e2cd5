"""Soak: minutes of mixed load against one tcpbench, sampled every 30 s (opt-in; not in CI).

    python -m benchmarks.soak                 # the workbench in tmux, 10 minutes
    python -m benchmarks.soak --target serve  # one `tcpbench serve` per service instead
    python -m benchmarks.soak --minutes 2 --interval 10

`--target ui` (the default) runs what a teacher runs: one workbench process in a tmux
pane, `tcpbench --listen echo:P --listen http:P --listen chat:P --listen discard:P`.
`--target serve` runs `tcpbench serve echo|http|chat|discard` as four processes, their
event output going to files, and samples each.

The load, all on 127.0.0.1, every loop bounded by the run's deadline:
- echo: 4 clients, each a 64 KiB block out and back, every byte compared;
- http: `wrk -t1 -c10 -d10s` at the start of every interval;
- chat: 20 members, one says a numbered line every 10 ms, every other member must
  receive them all in order;
- connects and resets: 100 a second, each closed with RST (SO_LINGER 0);
- firehose: one client streams into discard at up to 20 MiB/s (the byte log follows it).

Every interval it prints, per process: open fds, RSS, threads (Linux tasks) and CPU %,
with the load's own counters. At the end the load stops and it checks that the
descriptors are back to where they were before the load and that RSS at the end is
within 10 % of RSS after the warm-up (the first interval after the first minute).
Exit status 1 when a check fails or a client saw a wrong byte.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.harness import TCPBENCH, _proc_cpu_seconds, fd_count, free_port, rss_kib
from benchmarks.part_ui import Tmux, stop_pid

SERVICES = ("echo", "http", "chat", "discard")


@dataclass
class Load:
    """What the clients did, and what went wrong (a wrong byte is a failure, not noise)."""

    echo_bytes: int = 0
    http_requests: int = 0
    http_errors: int = 0
    chat_lines: int = 0
    resets: int = 0
    firehose_bytes: int = 0
    errors: list[str] = field(default_factory=list)


def threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


async def echo_client(port: int, deadline: float, load: Load) -> None:
    block = os.urandom(64 * 1024)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.monotonic() < deadline:
            writer.write(block)
            if await reader.readexactly(len(block)) != block:
                load.errors.append("echo: a block came back different")
                return
            load.echo_bytes += len(block)
    finally:
        writer.close()


async def chat_room(port: int, deadline: float, load: Load, members: int = 20) -> None:
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(members)]
    for number, (reader, writer) in enumerate(conns):
        writer.write(b"/nick soak%d\n" % number)
        await writer.drain()
        # In the room for sure: the server answered this member's own command.
        while b"you are now soak" not in await reader.readline():
            pass
    sent = 0

    async def speak() -> None:
        nonlocal sent
        writer = conns[0][1]
        while time.monotonic() < deadline:
            writer.write(b"line %08d\n" % sent)
            sent += 1
            await asyncio.sleep(0.01)  # pacing the load, not waiting for a server

    async def listen(reader: asyncio.StreamReader) -> None:
        expected = 0
        while True:
            line = await reader.readline()
            if not line:
                return
            if b"line " not in line:
                continue  # joins, nick changes
            number = int(line.rsplit(b"line ", 1)[1])
            if number != expected:
                load.errors.append(f"chat: expected line {expected}, got {number}")
                return
            expected += 1
            load.chat_lines += 1

    listeners = [asyncio.create_task(listen(r)) for r, _ in conns[1:]]
    await speak()
    await asyncio.sleep(1.0)  # let the last lines arrive before leaving
    for _, writer in conns:
        writer.close()
    await asyncio.wait(listeners, timeout=5)
    for task in listeners:
        task.cancel()


async def resets(port: int, deadline: float, load: Load) -> None:
    linger_zero = struct.pack("ii", 1, 0)
    loop = asyncio.get_running_loop()
    while time.monotonic() < deadline:
        sock = socket.socket()
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
            load.resets += 1
        except OSError as exc:
            load.errors.append(f"resets: connect failed: {exc}")
            return
        finally:
            sock.close()
        await asyncio.sleep(0.01)


async def firehose(port: int, deadline: float, load: Load, mib_per_s: int = 20) -> None:
    block = b"firehose line, the quick brown fox jumps over the lazy dog\n" * 1100  # ~64 KiB
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    try:
        while time.monotonic() < deadline:
            if load.firehose_bytes > (time.monotonic() - started) * mib_per_s * 1024 * 1024:
                await asyncio.sleep(0.005)
                continue
            writer.write(block)
            await writer.drain()
            load.firehose_bytes += len(block)
    finally:
        writer.close()


def wrk_once(port: int, seconds: int, load: Load) -> None:
    if shutil.which("wrk") is None:
        return
    done = subprocess.run(["wrk", "-t1", "-c10", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
                          capture_output=True, text=True, timeout=seconds + 30)
    for line in done.stdout.splitlines():
        if "requests in" in line:
            load.http_requests += int(line.split()[0])
        if "Socket errors" in line or "Non-2xx" in line:
            load.http_errors += sum(int(part.strip(",")) for part in line.split()
                                    if part.strip(",").isdigit())


class Targets:
    """The tcpbench processes under test: name -> pid, and each service's port."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.workdir = workdir
        self.ports = {name: free_port() for name in SERVICES}
        self.pids: dict[str, int] = {}
        self.procs: list[subprocess.Popen] = []
        self.tmux: Tmux | None = None

    def start(self) -> None:
        if self.kind == "ui":
            self.tmux = Tmux(self.workdir)
            argv = [TCPBENCH] + [arg for name in SERVICES
                                 for arg in ("--listen", f"{name}:{self.ports[name]}")]
            self.tmux.run("new-session", "-d", "-s", "soak", "-x", "160", "-y", "45", *argv)
            self.pids["workbench"] = self.tmux.pane_pid("soak")
        else:
            for name in SERVICES:
                out = open(self.workdir / f"serve-{name}.out", "wb")
                proc = subprocess.Popen([TCPBENCH, "serve", name, "--port", str(self.ports[name])],
                                        stdin=subprocess.DEVNULL, stdout=out,
                                        stderr=subprocess.STDOUT, start_new_session=True)
                self.procs.append(proc)
                self.pids[f"serve {name}"] = proc.pid
        deadline = time.monotonic() + 20
        for name, port in self.ports.items():
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"soak: {name} on port {port} never accepted")
                time.sleep(0.05)

    def screen(self) -> str:
        return self.tmux.capture("soak") if self.tmux else ""

    def stop(self) -> None:
        for pid in self.pids.values():
            stop_pid(pid)
        for proc in self.procs:
            with contextlib.suppress(Exception):
                proc.wait(5)
        if self.tmux:
            self.tmux.close()


def sample(targets: Targets, cpu_before: dict[str, float], elapsed: float) -> dict[str, dict]:
    now: dict[str, dict] = {}
    for name, pid in targets.pids.items():
        cpu = _proc_cpu_seconds(pid)
        now[name] = {"fds": fd_count(pid), "rss_mib": rss_kib(pid) / 1024, "threads": threads(pid),
                     "cpu_pct": 100 * (cpu - cpu_before.get(name, 0.0)) / max(elapsed, 1e-6)}
        cpu_before[name] = cpu
    return now


async def soak(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="tcpbench-soak-"))
    targets = Targets(args.target, workdir)
    targets.start()
    load = Load()
    failures: list[str] = []
    try:
        await asyncio.sleep(1.0)  # the workbench draws its first frame
        baseline = {name: fd_count(pid) for name, pid in targets.pids.items()}
        start = time.monotonic()
        deadline = start + args.minutes * 60
        ports = targets.ports
        clients = [asyncio.create_task(echo_client(ports["echo"], deadline, load)) for _ in range(4)]
        clients += [asyncio.create_task(chat_room(ports["chat"], deadline, load)),
                    asyncio.create_task(resets(ports["echo"], deadline, load)),
                    asyncio.create_task(firehose(ports["discard"], deadline, load))]
        cpu: dict[str, float] = {}
        sample(targets, cpu, 1.0)
        samples: list[tuple[float, dict[str, dict]]] = []
        print(f"soak: {args.target}, {args.minutes} min, sampling every {args.interval} s; "
              f"ports {ports}", flush=True)
        print(f"{'t s':>6}  {'process':<14} {'fds':>5} {'RSS MiB':>8} {'threads':>7} {'cpu %':>6}"
              f"  {'echo MiB':>9} {'http req':>9} {'chat lines':>10} {'resets':>7} {'fire MiB':>8}",
              flush=True)
        next_at = start
        while time.monotonic() < deadline and not load.errors:
            if shutil.which("wrk"):
                seconds = max(1, min(10, int(deadline - time.monotonic()) - 1))
                await asyncio.to_thread(wrk_once, ports["http"], seconds, load)
            next_at += args.interval
            await asyncio.sleep(max(0.0, min(next_at, deadline) - time.monotonic()))
            elapsed = time.monotonic() - start
            now = sample(targets, cpu, args.interval)
            samples.append((elapsed, now))
            for name, figures in now.items():
                print(f"{elapsed:6.0f}  {name:<14} {figures['fds']:5d} {figures['rss_mib']:8.1f} "
                      f"{figures['threads']:7d} {figures['cpu_pct']:6.0f}  "
                      f"{load.echo_bytes / 2**20:9.0f} {load.http_requests:9d} "
                      f"{load.chat_lines:10d} {load.resets:7d} {load.firehose_bytes / 2**20:8.0f}",
                      flush=True)
        await asyncio.wait(clients, timeout=30)
        for task in clients:
            if not task.done():
                task.cancel()
                failures.append("a load client did not finish within 30 s of the deadline")
            elif task.exception() is not None:
                failures.append(f"a load client failed: {task.exception()!r}")
        failures += load.errors
        if load.http_errors:
            failures.append(f"http: {load.http_errors} socket errors or non-2xx answers")
        settle = time.monotonic() + 15
        while time.monotonic() < settle and any(
                fd_count(pid) != baseline[name] for name, pid in targets.pids.items()):
            await asyncio.sleep(0.2)
        print()
        for name, pid in targets.pids.items():
            after = fd_count(pid)
            print(f"{name}: fds before the load {baseline[name]}, after it {after}")
            if after != baseline[name]:
                failures.append(f"{name}: {after - baseline[name]} descriptors more than before")
        warm = next((s for t, s in samples if t >= 60), samples[0][1] if samples else None)
        if warm and samples:
            for name, figures in samples[-1][1].items():
                growth = figures["rss_mib"] / warm[name]["rss_mib"] - 1
                print(f"{name}: RSS after warm-up {warm[name]['rss_mib']:.1f} MiB, at the end "
                      f"{figures['rss_mib']:.1f} MiB ({growth:+.1%})")
                if growth > 0.10:
                    failures.append(f"{name}: RSS grew {growth:.1%} after warm-up (limit 10 %)")
        if args.target == "ui":
            print("\nthe workbench at the end (capture-pane):\n" + targets.screen())
    finally:
        targets.stop()
    print("\nsoak: " + ("PASSED" if not failures else "FAILED: " + "; ".join(failures)))
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--target", choices=("ui", "serve"), default="ui")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=30.0)
    args = parser.parse_args()
    if args.target == "ui" and shutil.which("tmux") is None:
        print("soak: --target ui needs tmux", file=sys.stderr)
        return 2
    return asyncio.run(soak(args))


if __name__ == "__main__":
    sys.exit(main())
