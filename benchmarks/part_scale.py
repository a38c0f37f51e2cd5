"""scale: 10,000 idle connections to an echo server: memory per connection, time to accept, time to echo.

The client is this process (one thread, epoll), the server another; both have
RLIMIT_NOFILE raised to the hard limit. The N sockets are created before the
clock starts; then:

1. connect: a non-blocking connect on every socket at once (burst), or paced so
   that no more than 2,048 are issued and not yet accepted (the accept queue
   never overflows: the accept rate without SYN retries). "connected" is when
   the last connect completed on the client's side (the kernel finished the
   handshake: the connection is in the server's accept queue). "accepted" is
   when the server process holds N more open file descriptors than before
   (`stat /proc/PID/fd`, polled between epoll waits): the server itself has
   accept()ed every one. A refused or failed connect fails the measurement.
2. memory: the server's VmRSS, once it holds all N and has stopped growing,
   minus its VmRSS before the first connect, divided by N (user-space memory
   only: the kernel's socket buffers are not in RSS).
3. echo: each connection sends one byte (connection i sends byte i % 251); the
   clock runs until every connection has its own byte back; a wrong, extra or
   missing byte fails the measurement.

Connections are then reset (SO_LINGER 0) so no TIME_WAIT is left behind.
Bounded: 30 s for the connects, 30 s for the echoes.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import struct
import time

from benchmarks.harness import (HOST, PYTHON, REFSERVERS, TCPBENCH, BenchFailure, Case, Metric,
                                Server, ServerSpec, Suite, fmt_ratio, nofile_limit, tcpbench_uvloop,
                                uvloop_row)

BOUND = 30.0
LINGER0 = struct.pack("ii", 1, 0)


def servers() -> list[ServerSpec]:
    return [
        ServerSpec("bare asyncio Protocol echo (backlog 4096)",
                   lambda p, t: [PYTHON, REFSERVERS, "echo-protocol"], port_from_output=True,
                   reference=True),
        ServerSpec("tcpbench serve echo (as typed)", lambda p, t: [TCPBENCH, "serve", "echo"],
                   port_from_output=True),
        *uvloop_row("tcpbench serve echo (uvloop)", lambda p, t: tcpbench_uvloop("serve", "echo")),
    ]


def _open_fds(pid: int) -> int:
    try:
        size = os.stat(f"/proc/{pid}/fd").st_size  # Linux >= 6.2: the number of open fds
        if size:
            return size
    except OSError:
        pass
    return len(os.listdir(f"/proc/{pid}/fd"))


def tcp_counters() -> dict[str, int]:
    """Machine-wide TcpExt counters: accept-queue overflows and SYN retransmits."""
    with open("/proc/net/netstat") as f:
        lines = [line.split() for line in f if line.startswith("TcpExt:")]
    table = dict(zip(lines[0][1:], (int(x) for x in lines[1][1:])))
    return {"overflows": table.get("ListenOverflows", 0), "syn_retrans": table.get("TCPSynRetrans", 0)}


def _stable_rss(server: Server, bound: float = 3.0) -> int:
    """VmRSS once two samples 100 ms apart differ by less than 1% (or after `bound`)."""
    deadline = time.monotonic() + bound
    last = server.rss_kib()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = server.rss_kib()
        if abs(now - last) <= max(64, last // 100):
            return now
        last = now
    return last


def hold(server: Server, count: int, paced: int | None = None) -> dict:
    """`paced`: never more than this many connects issued but not yet accepted (None: all at once)."""
    pid = server.pid
    socks = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    poller = select.epoll(sizehint=count)
    try:
        for sock in socks:
            sock.setblocking(False)
        by_fd = {sock.fileno(): i for i, sock in enumerate(socks)}
        time.sleep(0.2)
        fds0 = _open_fds(pid)
        rss0 = server.rss_kib()
        cpu0 = server.cpu_seconds()
        target = fds0 + count
        address = (HOST, server.port)

        # 1. connect all, at once.
        tcp0 = tcp_counters()
        t0 = time.perf_counter()
        issued = 0
        limit = count if paced is None else paced

        def issue(upto: int) -> None:
            nonlocal issued
            for sock in socks[issued:upto]:
                code = sock.connect_ex(address)
                if code not in (0, errno.EINPROGRESS):
                    raise BenchFailure(f"connect failed at once: {os.strerror(code)}")
                poller.register(sock.fileno(), select.EPOLLOUT)
            issued = max(issued, upto)

        issue(min(count, limit))
        issued_at = time.perf_counter() if issued == count else None
        pending = count
        connected_at = accepted_at = None
        failed: dict[str, int] = {}
        while pending or accepted_at is None:
            if issued < count:
                held = _open_fds(pid) - fds0
                if issued - held < limit:
                    issue(min(count, held + limit))
                    if issued == count:
                        issued_at = time.perf_counter()
            now = time.perf_counter()
            if now - t0 > BOUND:
                raise BenchFailure(f"after {BOUND:.0f} s: {count - pending} of {count} connected, "
                                   f"the server holds {_open_fds(pid) - fds0} of them")
            if accepted_at is None and _open_fds(pid) >= target:
                accepted_at = time.perf_counter()
            if not pending:
                time.sleep(0.0005)
                continue
            for fd, _ in poller.poll(0.002):
                poller.unregister(fd)
                pending -= 1
                err = socks[by_fd[fd]].getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    failed[os.strerror(err)] = failed.get(os.strerror(err), 0) + 1
            if not pending:
                connected_at = time.perf_counter()
                if failed:
                    raise BenchFailure(f"{sum(failed.values())} of {count} connects failed: {failed}")
        server.check_alive()
        cpu_accept = server.cpu_seconds() - cpu0
        tcp1 = tcp_counters()

        # 2. memory once the server holds them all.
        rss1 = _stable_rss(server)

        # 3. one byte each way per connection.
        for fd in by_fd:
            poller.register(fd, select.EPOLLIN)
        cpu1 = server.cpu_seconds()
        t2 = time.perf_counter()
        for i, sock in enumerate(socks):
            if sock.send(bytes((i % 251,))) != 1:
                raise BenchFailure(f"connection {i}: could not send its byte")
        waiting = count
        wrong = 0
        echoed_at = None
        while waiting:
            if time.perf_counter() - t2 > BOUND:
                raise BenchFailure(f"after {BOUND:.0f} s only {count - waiting} of {count} echoed")
            for fd, _ in poller.poll(0.05):
                i = by_fd[fd]
                try:
                    data = socks[i].recv(16)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    raise BenchFailure(f"connection {i}: {exc}") from None
                poller.unregister(fd)
                waiting -= 1
                if data != bytes((i % 251,)):
                    wrong += 1
        echoed_at = time.perf_counter()
        cpu_echo = server.cpu_seconds() - cpu1
        if wrong:
            raise BenchFailure(f"{wrong} of {count} connections got back something other than "
                               "their own single byte")
        # Anything more than the one byte is wrong too.
        time.sleep(0.1)
        extra = 0
        for sock in socks:
            try:
                extra += len(sock.recv(16))
            except (BlockingIOError, InterruptedError):
                pass
        if extra:
            raise BenchFailure(f"{extra} bytes arrived beyond the one echoed byte per connection")
        rss2 = server.rss_kib()
    finally:
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            sock.close()
        poller.close()
    return {"accepted_s": accepted_at - t0, "connected_s": connected_at - t0,
            "issue_s": issued_at - t0, "overflows": tcp1["overflows"] - tcp0["overflows"],
            "syn_retrans": tcp1["syn_retrans"] - tcp0["syn_retrans"],
            "kib_per_conn": (rss1 - rss0) / count, "echo_s": echoed_at - t2,
            "rss_mib": rss2 / 1024, "cpu_accept_s": cpu_accept, "cpu_echo_s": cpu_echo}


def run(suite: Suite) -> None:
    count = 2000 if suite.quick else 10000
    paced = 2048
    need = count + 200
    if nofile_limit() < need:
        suite.emit(f"skipped scale: RLIMIT_NOFILE is {nofile_limit()}, {need} needed")
        return
    specs = suite.available(servers())
    cases = []
    for mode in (None, paced):
        shape = ("all connects at once" if mode is None else
                 f"paced: at most {mode:,} connects not yet accepted")
        cases.append(Case("scale", f"scale: {count:,} idle connections to an echo server, {shape}", [
            Metric("accepted_s", f"s until all {count:,} accepted", "{:.3f}", higher_is_better=False),
            Metric("connected_s", "connected s", "{:.3f}"),
            Metric("issue_s", "issue s", "{:.3f}"),
            Metric("overflows", "overflows", "{:.0f}"),
            Metric("syn_retrans", "SYN rexmit", "{:.0f}"),
            Metric("kib_per_conn", "KiB/conn", "{:.2f}", higher_is_better=False, ratio=True,
                   spread=True),
            Metric("echo_s", "echoed s", "{:.3f}", higher_is_better=False, ratio=True, spread=True),
            Metric("rss_mib", "RSS MiB", "{:.1f}"),
            Metric("cpu_accept_s", "cpu s accept", "{:.2f}"),
            Metric("cpu_echo_s", "cpu s echo", "{:.2f}"),
        ], lambda server, mode=mode: hold(server, count, mode)))
    cases[0].notes.append(
        "median/min/max: seconds from the first connect until the server holds all; accepted: the "
        "server holds N more fds (stat /proc/PID/fd); connected: the client's last connect completed "
        "(the handshake, not the accept); issue s: the client's own time to call connect() N times; "
        "KiB/conn: VmRSS delta / N (RSS MiB: the total held); echoed: one byte out and back on every "
        "connection")
    cases[0].notes.append(
        "overflows / SYN rexmit: machine-wide TcpExt ListenOverflows / TCPSynRetrans during the "
        "connects: the accept queue (backlog 4096, somaxconn permitting) overflowed and those clients "
        "retried after 1 s, 3 s, ...; a burst of 10,000 beats any backlog of 4,096 unless the server "
        "accepts 6,000 while the client is still connecting")
    cases[1].notes.append(
        f"paced: the client issues a connect only while fewer than {paced:,} are issued but not yet "
        "held by the server, so the accept queue never overflows: this measures the accept rate")
    suite.run_cases(cases, specs)
    for case in cases:
        suite.table(case)
    name = "tcpbench serve echo (as typed)"
    for case in cases:
        results = case.results.get(name, {}).values()
        kib = [v["kib_per_conn"] for v in results]
        acc = [v["accepted_s"] for v in results]
        echo = [v["echo_s"] for v in results]
        tag = "burst" if case is cases[0] else "paced"
        held = name in case.results and name not in case.errors
        suite.goal(f"{tag}: {name}: {count:,} held in every round",
                   held if case.results or case.errors else None)
        suite.goal(f"{tag}: {name}: <= 3 KiB per connection (median {_m(kib, '{:.2f}')} KiB, max "
                   f"{_x(kib, '{:.2f}')})", None if not kib else _median(kib) <= 3.0)
        suite.goal(f"{tag}: {name}: all accepted < 0.6 s (median {_m(acc, '{:.3f}')} s, max "
                   f"{_x(acc, '{:.3f}')}; {fmt_ratio(case.ratio(name))} of the reference)",
                   None if not acc else _median(acc) < 0.6)
        suite.goal(f"{tag}: {name}: all echoed < 1 s (median {_m(echo, '{:.3f}')} s, max "
                   f"{_x(echo, '{:.3f}')})", None if not echo else _median(echo) < 1.0)


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values)


def _m(values: list[float], fmt: str) -> str:
    return fmt.format(_median(values)) if values else "-"


def _x(values: list[float], fmt: str) -> str:
    return fmt.format(max(values)) if values else "-"
