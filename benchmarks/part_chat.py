"""chat: 200 clients in one room; one sends 1,000 lines; how long until the other 199 have them all.

The client side is this process (one thread, a lean epoll loop that recv_into's
preallocated buffers and counts newlines in place), the server another.
Clients connect one after another (ncat listens with a backlog of 10), then
the room must settle: no byte arrives anywhere for 0.5 s (joins, welcomes).
What arrived so far is dropped. Then the sender writes 1,000 numbered lines
(`m000123 <40-byte payload>\\n`) in one sendall; the clock runs from just before
that call until the last of the 199 receivers has its 1,000th line. After a
0.3 s grace (to catch duplicates) every receiver's bytes are checked line by
line: an optional `<nick> ` prefix is stripped (tcpbench and ncat add one), and
what is left must be exactly one of the lines sent. Reported per run: lost,
duplicated, out of order (a line numbered lower than the one before it),
corrupted (any other line that is not an announcement), and the server's CPU
CPU time over the timed window (and this client's, to show whether it could
be the bottleneck). Bounded: 60 s for the lines, 30 s to settle.
"""

from __future__ import annotations

import contextlib
import re
import select
import socket
import struct
import time

from benchmarks.harness import (HOST, PYTHON, REFSERVERS, TCPBENCH, BenchFailure, Case, Metric,
                                Server, ServerSpec, Suite, tcpbench_uvloop, uvloop_row)

PAYLOAD = b"the quick brown fox jumps over a lazy dog"[:40]
assert len(PAYLOAD) == 40
LINE_RE = re.compile(rb"m(\d{6}) (.*)\Z", re.S)
PREFIX_RE = re.compile(rb"<[^<>]{1,64}> ")
SETTLE_QUIET = 0.5
SETTLE_BOUND = 30.0
LINES_BOUND = 60.0


def servers() -> list[ServerSpec]:
    return [
        ServerSpec("asyncio chat broadcaster", lambda port, tmp: [PYTHON, REFSERVERS, "chat"],
                   port_from_output=True, reference=True),
        ServerSpec("tcpbench serve chat (as typed)", lambda port, tmp: [TCPBENCH, "serve", "chat"],
                   port_from_output=True),
        *uvloop_row("tcpbench serve chat (uvloop)", lambda port, tmp: tcpbench_uvloop("serve", "chat")),
        ServerSpec("ncat --chat --max-conns 1000",
                   lambda port, tmp: ["ncat", "--chat", "--max-conns", "1000", "-lk", HOST, str(port)],
                   needs=("ncat",), peer=True),
    ]


def classify(data: bytes, count: int) -> dict[str, int]:
    """Per receiver: the numbers of the lines it got, checked exactly."""
    seen: list[int] = []
    corrupt = other = 0
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()  # what follows the last newline: nothing, or a cut line (corrupt)
    for raw in lines:
        line = raw[:-1] if raw.endswith(b"\r") else raw
        prefix = PREFIX_RE.match(line)
        body = line[prefix.end():] if prefix else line
        match = LINE_RE.match(body)
        if match and match[2] == PAYLOAD and int(match[1]) < count:
            seen.append(int(match[1]))
        elif line.startswith(b"* ") or line.startswith(b"<announce>"):
            other += 1
        else:
            corrupt += 1
    distinct = set(seen)
    ooo = sum(1 for a, b in zip(seen, seen[1:]) if b < a)
    return {"lost": count - len(distinct), "dup": len(seen) - len(distinct), "ooo": ooo,
            "corrupt": corrupt, "other": other}


def _drain(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while data := sock.recv(262144):
            chunks.append(data)
    except (BlockingIOError, InterruptedError):
        pass
    except OSError:
        pass
    return b"".join(chunks)


def run_room(server: Server, clients: int, count: int) -> dict:
    payload = b"".join(b"m%06d %s\n" % (i, PAYLOAD) for i in range(count))
    socks: list[socket.socket] = []
    poller = select.epoll()
    try:
        for i in range(clients):
            try:
                sock = socket.create_connection((HOST, server.port), timeout=5)
            except OSError as exc:
                raise BenchFailure(f"client {i + 1} of {clients} could not connect: {exc}") from None
            sock.setblocking(False)
            socks.append(sock)
        by_fd = {sock.fileno(): i for i, sock in enumerate(socks)}
        for sock in socks[1:]:
            poller.register(sock.fileno(), select.EPOLLIN)
        # Settle: nothing arrives anywhere for SETTLE_QUIET seconds (the sender's joins too).
        started = last = time.monotonic()
        closed: set[int] = set()
        while True:
            now = time.monotonic()
            if now - last >= SETTLE_QUIET:
                break
            if now - started > SETTLE_BOUND:
                raise BenchFailure(f"the room did not settle within {SETTLE_BOUND:.0f} s")
            if _drain(socks[0]):
                last = time.monotonic()
            for fd, _ in poller.poll(0.05):
                sock = socks[by_fd[fd]]
                try:
                    data = sock.recv(262144)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if not data:
                    closed.add(by_fd[fd])
                    poller.unregister(fd)
                last = time.monotonic()
        if closed:
            raise BenchFailure(f"{len(closed)} clients were disconnected while joining")
        server.check_alive()

        # The timed part: a lean epoll loop, recv_into per-receiver buffers, newlines counted in place.
        size = max(256 * 1024, 3 * len(payload))
        buffers = {fd: bytearray(size) for fd in by_fd if by_fd[fd] != 0}
        views = {fd: memoryview(buf) for fd, buf in buffers.items()}
        filled = dict.fromkeys(buffers, 0)
        newlines = dict.fromkeys(buffers, 0)
        done_at: dict[int, float] = {}
        receivers = clients - 1
        sender = socks[0]
        sender.setblocking(True)
        sender.settimeout(10)
        cpu0 = server.cpu_seconds()
        own0 = time.process_time()
        t0 = time.perf_counter()
        try:
            sender.sendall(payload)
        except OSError as exc:
            raise BenchFailure(f"the sender could not send: {exc}") from None
        sent_at = last = time.perf_counter()
        timed_out = None
        pending = receivers
        while pending:
            events = poller.poll(0.1)
            now = time.perf_counter()
            if not events:
                if now - t0 > LINES_BOUND:
                    timed_out = f"not every receiver had all lines after {LINES_BOUND:.0f} s"
                    break
                if now - last > 5.0:
                    timed_out = "nothing arrived for 5 s before every receiver had all lines"
                    break
                continue
            last = now
            for fd, _ in events:
                off = filled[fd]
                view = views[fd]
                if off == len(view):  # more than 3x the lines: grow (not expected)
                    view.release()
                    buffers[fd] += bytes(len(buffers[fd]))
                    view = views[fd] = memoryview(buffers[fd])
                try:
                    n = socks[by_fd[fd]].recv_into(view[off:])
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    n = 0
                if not n:
                    closed.add(by_fd[fd])
                    poller.unregister(fd)
                    if fd not in done_at:
                        pending -= 1
                    continue
                filled[fd] = off + n
                newlines[fd] += buffers[fd].count(b"\n", off, off + n)
                if newlines[fd] >= count and fd not in done_at:
                    done_at[fd] = time.perf_counter()
                    pending -= 1
        t_end = max(done_at.values()) if len(done_at) == receivers else None
        own = time.process_time() - own0
        cpu = server.cpu_seconds() - cpu0
        # Grace: duplicates or stragglers still on their way.
        time.sleep(0.3)
        tails = {}
        for fd, i in by_fd.items():
            if i and i not in closed:
                sock = socks[i]
                tails[fd] = _drain(sock)
        sender.setblocking(False)
        echoed = _drain(sender)
    finally:
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        poller.close()

    totals = {"lost": 0, "dup": 0, "ooo": 0, "corrupt": 0, "other": 0}
    for fd in buffers:
        data = bytes(views[fd][:filled[fd]]) + tails.get(fd, b"")
        for key, value in classify(data, count).items():
            totals[key] += value
    for view in views.values():
        view.release()
    values = {"ms": None if t_end is None else (t_end - t0) * 1e3, "cpu_ms": cpu * 1e3,
              "client_cpu_ms": own * 1e3, "send_ms": (sent_at - t0) * 1e3, **totals,
              "closed": len(closed), "to_sender": echoed.count(b"\n")}
    problems = [f"{totals[k]} {k}" for k in ("lost", "dup", "ooo", "corrupt") if totals[k]]
    if closed:
        problems.append(f"{len(closed)} receivers disconnected")
    if timed_out:
        problems.insert(0, timed_out)
    if problems:
        values["_error"] = (f"{'; '.join(problems)} (over {receivers} receivers x {count} lines)")
    return values


def run(suite: Suite) -> None:
    clients = 200
    count = 1000
    if suite.quick:
        clients, count = 50, 200
    specs = suite.available(servers())
    case = Case(
        "chat", f"chat: {clients} clients, one sends {count} lines of 48 bytes in one write",
        [Metric("ms", f"ms until all {clients - 1} have every line", "{:.1f}",
                higher_is_better=False),
         Metric("cpu_ms", "server cpu ms", "{:.1f}", higher_is_better=False, ratio=True),
         Metric("client_cpu_ms", "client cpu ms", "{:.1f}"),
         Metric("lost", "lost", "{:.0f}", spread=True),
         Metric("dup", "dup", "{:.0f}"),
         Metric("ooo", "ooo", "{:.0f}"),
         Metric("corrupt", "corrupt", "{:.0f}", spread=True)],
        lambda server: run_room(server, clients, count))
    case.notes.append("lost/dup/ooo/corrupt: medians over rounds of the totals over all receivers "
                      "(max shown for lost and corrupt); x ref is the ratio of times (lower is better)")
    case.notes.append("client cpu ms is this process receiving and counting every byte in the timed "
                      "window: a floor included in every server's time; server cpu ms x ref compares "
                      "the servers' own work")
    suite.run_cases([case], specs)
    suite.table(case)
    tb = "tcpbench serve chat (as typed)"
    if tb in case.results or tb in case.errors:
        clean = (tb not in case.errors and all(
            v.get(k) == 0 for v in case.results.get(tb, {}).values()
            for k in ("lost", "dup", "ooo", "corrupt")))
        suite.goal(f"{tb}: nothing lost, duplicated, reordered or corrupted in any round", clean)
        ratio = case.ratio(tb)
        suite.goal(f"{tb}: time <= 2x the asyncio reference's (median ratio "
                   f"{'-' if ratio is None else f'{ratio:.2f}x'})",
                   None if ratio is None else ratio <= 2.0)
