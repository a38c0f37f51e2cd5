"""echo: bytes through an echo server and back, 1 and 8 connections, bulk and a 32 KiB window
(the goals), and one connection with a 128 KiB window (no goal: where socat's small blocks
used to win).

Each measurement pushes SIZE bytes in total (256 MiB; split evenly across the
connections) through a fresh server process and reads every byte back.

- bulk: per connection a sender thread (sendall of 1 MiB pieces, then FIN) and
  a receiver thread (recv_into); the clock runs from the start signal until the
  last byte of the last connection is back.
- window: per connection one thread that never has more than the window (32 or
  128 KiB) sent but not yet echoed (send up to the window, read what comes back, top up): the
  rate of many small round trips, not of bulk copying.

The stream is random 1 MiB blocks, each stamped with its connection and block
number, generated before the clock starts. Received bytes land in a
preallocated buffer; after the clock stops each connection's byte count must be
exact, its blake2b digest must equal the digest of what was sent, and nothing
may arrive after the last byte (a wrong byte's offset is reported). Verifying
outside the timed window keeps the client from being the bottleneck (blake2b
runs at ~1 GB/s here, slower than the fastest servers). The client is this
process (threads release the GIL in sendall/recv_into); the server is another.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import socket
import subprocess
import threading
import time
from pathlib import Path

from benchmarks import ceiling
from benchmarks.harness import (HOST, PYTHON, REFSERVERS, TCPBENCH, BenchFailure, Case, Metric,
                                Server, ServerSpec, Suite, fmt_ratio, tcpbench_uvloop, uvloop_row)

C_ECHO = Path(__file__).with_name("c_echo.c")
MIB = 1 << 20
BLOCK = MIB
PAGE = 4096
WINDOW = 32 * 1024
LARGE_WINDOW = 128 * 1024
STALL = 15.0
"""A connection with no progress for this long fails the measurement."""


def servers() -> list[ServerSpec]:
    return [
        ServerSpec("bare asyncio Protocol echo", lambda p, t: [PYTHON, REFSERVERS, "echo-protocol"],
                   port_from_output=True, reference=True),
        ServerSpec("bare asyncio Protocol echo, busy poll",
                   lambda p, t: ["env", "REF_BUSY_POLL=100", PYTHON, REFSERVERS, "echo-protocol"],
                   port_from_output=True),
        ServerSpec("tcpbench serve echo (as typed)", lambda p, t: [TCPBENCH, "serve", "echo"],
                   port_from_output=True),
        ServerSpec("tcpbench --busy-poll 0 serve echo",
                   lambda p, t: [TCPBENCH, "--busy-poll", "0", "serve", "echo"],
                   port_from_output=True),
        *uvloop_row("tcpbench serve echo (uvloop)", lambda p, t: tcpbench_uvloop("serve", "echo")),
        ServerSpec("tcpbench serve echo --quiet-data",
                   lambda p, t: [TCPBENCH, "serve", "echo", "--quiet-data"], port_from_output=True),
        ServerSpec("bare asyncio streams echo", lambda p, t: [PYTHON, REFSERVERS, "echo-streams"],
                   port_from_output=True),
        ServerSpec("socat PIPE", lambda p, t: socat_pipe(p), needs=("socat",), peer=True),
        ServerSpec("socat -b4096 PIPE", lambda p, t: socat_pipe(p, "-b4096"), needs=("socat",),
                   peer=True),
        ServerSpec("ncat -c cat", lambda p, t: ["ncat", "-lk", HOST, str(p), "-c", "cat"],
                   needs=("ncat",), peer=True),
        ServerSpec("C epoll echo, 256 KiB reads",
                   lambda p, t: [c_echo(t)], port_from_output=True, needs=("cc",)),
        ServerSpec("C epoll echo, 256 KiB reads, busy poll",
                   lambda p, t: [c_echo(t, "-DSPIN=100")], port_from_output=True, needs=("cc",)),
        ServerSpec("C epoll echo, 8 KiB reads, Nagle on",
                   lambda p, t: [c_echo(t, "-DBUF=8192", "-DNAGLE")], port_from_output=True,
                   needs=("cc",)),
    ]


def socat_pipe(port: int, *options: str) -> list[str]:
    """socat as an echo server, as its users type it: each connection through a pipe."""
    return ["socat", *options, f"TCP-LISTEN:{port},bind={HOST},reuseaddr,fork", "PIPE"]


def c_echo(workdir: Path, *flags: str) -> str:
    """`benchmarks/c_echo.c` built with `flags` into `workdir` (once per flag set); its path.

    The C rows: what this client and kernel allow a server with next to no
    user-space work, with tcpbench's design (whole reads, TCP_NODELAY) and with
    socat's (8 KiB blocks, Nagle on), so a gap reads as the language or the design."""
    binary = workdir / ("c_echo" + "".join(flag.replace("=", "").replace("-D", "_") for flag in flags))
    if not binary.exists():
        done = subprocess.run(["cc", "-O2", "-o", str(binary), *flags, str(C_ECHO)],
                              capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise BenchFailure(f"cc could not build {C_ECHO.name}: {done.stderr.strip()[:300]}")
    return str(binary)


class Stream:
    """The bytes one measurement sends (all connections' streams back to back) and a buffer for them."""

    def __init__(self, total: int, conns: int, seed: int = 7) -> None:
        per = total // conns
        per -= per % BLOCK if per >= BLOCK else 0
        self.per = per
        self.conns = conns
        base = random.Random(seed).randbytes(BLOCK)
        pieces = []
        for c in range(conns):
            left = per
            b = 0
            while left:
                stamp = b"conn %04d block %08d|" % (c, b)
                piece = stamp + base[len(stamp):min(BLOCK, left)]
                pieces.append(piece[:left])
                left -= len(pieces[-1])
                b += 1
        self.data = b"".join(pieces)
        assert len(self.data) == per * conns
        self.view = memoryview(self.data)
        self.digests = [hashlib.blake2b(self.view[c * per:(c + 1) * per]).digest()
                        for c in range(conns)]
        self.recv = bytearray(per * conns)
        self.recv_view = memoryview(self.recv)

    def sent(self, c: int) -> memoryview:
        return self.view[c * self.per:(c + 1) * self.per]

    def prefault(self) -> None:
        """Write one byte into every page of the receive buffer, so the clock never counts the
        client's own page faults: the first write to a page after any fork of this process
        is a copy-on-write fault, ~100 ms per 256 MiB here, which capped every server near the
        same rate. The harness starts servers by vfork (`raise_nofile`); this covers any fork
        (a library's, a future `preexec_fn`) and the buffer's very first use."""
        self.recv[::PAGE] = bytes(len(range(0, len(self.recv), PAGE)))

    def into(self, c: int) -> memoryview:
        return self.recv_view[c * self.per:(c + 1) * self.per]

    def verify(self, c: int, got: int) -> str | None:
        if got != self.per:
            return f"conn {c}: received {got:,} of {self.per:,} bytes"
        mine = self.into(c)
        if hashlib.blake2b(mine).digest() == self.digests[c]:
            return None
        sent = self.sent(c)
        step = 65536
        for off in range(0, self.per, step):
            if mine[off:off + step] != sent[off:off + step]:
                for i in range(off, min(off + step, self.per)):
                    if mine[i] != sent[i]:
                        return (f"conn {c}: blake2b differs; first wrong byte at offset {i:,} "
                                f"(got {mine[i]:#04x}, sent {sent[i]:#04x})")
        return f"conn {c}: blake2b differs"


def _connect(port: int, conns: int, stall: float) -> list[socket.socket]:
    socks = []
    try:
        for _ in range(conns):
            sock = socket.create_connection((HOST, port), timeout=stall)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(sock)
    except OSError as exc:
        for sock in socks:
            sock.close()
        raise BenchFailure(f"could not connect: {exc}") from None
    return socks


def _tail(sock: socket.socket, bound: float) -> tuple[int, bool]:
    """After every byte: (extra bytes that arrived, whether the server sent FIN) within `bound`."""
    sock.settimeout(bound)
    extra = 0
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return extra, True
            extra += len(data)
    except (socket.timeout, OSError):
        return extra, False


def transfer(server: Server, stream: Stream, window: int | None, deadline_s: float = 300.0,
             stall: float = STALL, connect=None, tail=None) -> dict:
    """Push the stream through `server`; raises BenchFailure on any wrong or missing byte.

    `connect(port, conns, stall)` and `tail(sock, bound)` replace the plain-TCP ones
    (the TLS part wraps the sockets)."""
    conns = stream.conns
    tail = tail or _tail
    socks = (connect or _connect)(server.port, conns, stall)
    stream.prefault()
    got = [0] * conns
    done_at = [0.0] * conns
    errors: list[str] = []
    start = threading.Event()
    deadline = time.monotonic() + deadline_s

    def bulk_sender(c: int) -> None:
        sock, data = socks[c], stream.sent(c)
        start.wait()
        off = 0
        try:
            for off in range(0, len(data), BLOCK):
                sock.sendall(data[off:off + BLOCK])
                if time.monotonic() > deadline:
                    raise TimeoutError("deadline")
        except OSError as exc:
            errors.append(f"conn {c}: send failed after {off:,} bytes: {exc!r}")

    def bulk_receiver(c: int) -> None:
        sock, into, size = socks[c], stream.into(c), stream.per
        start.wait()
        off = 0
        try:
            while off < size:
                n = sock.recv_into(into[off:off + 4 * MIB])
                if not n:
                    errors.append(f"conn {c}: EOF after {off:,} of {size:,} bytes")
                    break
                off += n
                if time.monotonic() > deadline:
                    raise TimeoutError("deadline")
        except OSError as exc:
            errors.append(f"conn {c}: receive failed after {off:,} of {size:,} bytes: {exc!r}")
        got[c] = off
        done_at[c] = time.perf_counter()

    def windowed(c: int) -> None:
        sock, data, into, size = socks[c], stream.sent(c), stream.into(c), stream.per
        start.wait()
        sent = off = 0
        try:
            while off < size:
                if sent < size and sent - off < window:
                    n = min(window - (sent - off), size - sent)
                    sock.sendall(data[sent:sent + n])
                    sent += n
                n = sock.recv_into(into[off:off + window])
                if not n:
                    errors.append(f"conn {c}: EOF after {off:,} of {size:,} bytes")
                    break
                off += n
                if off > sent:
                    errors.append(f"conn {c}: {off - sent} more bytes back than were sent")
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError("deadline")
        except OSError as exc:
            errors.append(f"conn {c}: failed after {off:,} of {size:,} bytes back: {exc!r}")
        got[c] = off
        done_at[c] = time.perf_counter()

    threads = []
    if window is None:
        for c in range(conns):
            threads.append(threading.Thread(target=bulk_sender, args=(c,), daemon=True))
            threads.append(threading.Thread(target=bulk_receiver, args=(c,), daemon=True))
    else:
        threads = [threading.Thread(target=windowed, args=(c,), daemon=True) for c in range(conns)]
    try:
        for thread in threads:
            thread.start()
        out0 = server.output_size()
        cpu0 = server.cpu_seconds()
        own0 = time.process_time()
        t0 = time.perf_counter()
        start.set()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()) + stall + 5)
        t_end = max(done_at)
        own = time.process_time() - own0
        cpu = server.cpu_seconds() - cpu0
        if any(thread.is_alive() for thread in threads):
            errors.append("a client thread did not finish in time")
        if errors:
            waits = server.wchans()
            if waits:
                errors.insert(0, f"stalled (server processes waiting in {', '.join(waits)})")
        tails = [tail(sock, 2.0) for sock in socks] if not errors else []
        out = server.output_size() - out0
    finally:
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.close()
    if errors:
        raise BenchFailure("; ".join(errors[:4]))
    problems = [p for c in range(conns) if (p := stream.verify(c, got[c]))]
    problems += [f"conn {c}: {extra:,} bytes after the last one sent"
                 for c, (extra, _) in enumerate(tails) if extra]
    if problems:
        raise BenchFailure("; ".join(problems[:4]))
    seconds = t_end - t0
    total = stream.per * conns
    return {"mib_s": total / seconds / MIB, "seconds": seconds, "cpu_s_per_gib": cpu / (total / (1 << 30)),
            "client_cpu_s": own, "out_mib": out / MIB, "fin": sum(1 for _, fin in tails if fin)}


def run(suite: Suite) -> None:
    total = suite.option("echo_mib", 256, 64) * MIB
    specs = suite.available(servers())
    streams = {1: Stream(total, 1), 8: Stream(total, 8)}
    small = {1: Stream(4 * MIB, 1), 8: Stream(4 * MIB, 8)}
    cases = []
    shapes = [(None, 1), (None, 8), (WINDOW, 1), (WINDOW, 8), (LARGE_WINDOW, 1)]
    for window, conns in shapes:
        shape = "bulk" if window is None else f"{window // 1024} KiB window"
        title = (f"echo: {conns} conn{'s' if conns > 1 else ''}, {shape}, "
                 f"{total // MIB} MiB{' split across them' if conns > 1 else ''}")

        def measure(server: Server, conns=conns, window=window) -> dict:
            return transfer(server, streams[conns], window)

        def precheck(server: Server, conns=conns, window=window) -> dict:
            return transfer(server, small[conns], window, deadline_s=10.0, stall=3.0)

        case = Case("echo", title, [
            Metric("mib_s", "MiB/s", "{:.0f}"),
            Metric("cpu_s_per_gib", "server cpu s/GiB", "{:.2f}", higher_is_better=False,
                   ratio=True),
            Metric("client_cpu_s", "client cpu s", "{:.2f}"),
            Metric("out_mib", "event output MiB", "{:.1f}"),
        ], measure, precheck=precheck)
        cases.append(case)
    cases[0].notes.append("every byte verified (exact count, blake2b of sent vs received, nothing "
                          "extra) after the clock stops; a 4 MiB precheck first drops a peer that "
                          "cannot echo; event output MiB: what tcpbench wrote to its stdout file")
    cases[0].notes.append("socat PIPE (default 8 KiB blocks) can block forever writing to its own "
                          "pipe under bulk load (seen in wchan as pipe_write); socat -b4096 cannot")
    cases[-1].notes.append("no goal: a larger window than the goals' 32 KiB, where socat PIPE's "
                           "8 KiB blocks keep both sides busy and a server that reads each "
                           "window whole leaves the peer waiting")
    suite.run_cases(cases, specs)
    for case in cases:
        suite.table(case)
    ceiling.run(suite)
    name = "tcpbench serve echo (as typed)"
    # The goals: 1 and 8 connections, bulk and a 32 KiB window (the 128 KiB case has none).
    for case in [case for case, (window, _) in zip(cases, shapes) if window != LARGE_WINDOW]:
        ref = case.ratio(name)
        suite.goal(f"{case.title}: {name} >= 0.9x bare asyncio Protocol echo ({fmt_ratio(ref)})",
                   None if ref is None else ref >= 0.9)
        socat = _pair_ratios(case, name, "socat PIPE")
        if socat is not None:
            c_servers = [f"{spec.name} {fmt_ratio(ratio)}" for spec in case.servers
                         if spec.name.startswith("C epoll echo")
                         and (ratio := _pair_ratios(case, spec.name, "socat PIPE")) is not None]
            context = f"; the C servers vs socat PIPE: {', '.join(c_servers)}" if c_servers else ""
            suite.goal(f"{case.title}: {name} >= 1.5x socat PIPE ({fmt_ratio(socat)}, same-round "
                       f"median{context})", socat >= 1.5)
            continue
        small_block = _pair_ratios(case, name, "socat -b4096 PIPE")
        suite.goal(f"{case.title}: {name} >= 1.5x socat PIPE (socat PIPE not measured here"
                   + (f"; vs socat -b4096 PIPE {fmt_ratio(small_block)})" if small_block else ")"),
                   None)


def _pair_ratios(case: Case, a: str, b: str) -> float | None:
    import statistics

    mine, theirs = case.results.get(a, {}), case.results.get(b, {})
    ratios = [mine[r]["mib_s"] / theirs[r]["mib_s"] for r in mine if r in theirs and theirs[r]["mib_s"]]
    return statistics.median(ratios) if ratios else None
