"""tls: the echo measurement over TLS, `tcpbench serve echo --tls` against `socat OPENSSL-LISTEN`.

The same stream, verification and clock as the echo part (`part_echo.transfer`),
with the client's sockets wrapped in TLS (the standard library's `ssl`, blocking
sockets in threads: the GIL is released in OpenSSL's reads and writes). The
echo part's bulk shape reads and writes each socket from two threads at once,
which one OpenSSL connection does not allow (it lost bytes and stalled when
tried), so each connection is one thread that keeps at most `WINDOW` bytes in
flight: large enough to stream, small enough for the socket buffers to hold. Every
server presents the same EC P-256 certificate made at the start of the part;
clients do not verify it (the cost measured is the record layer, not the chain).
After the last byte, each connection sends close_notify and must get the
server's back (`fin` counts them).

Rows: a bare asyncio Protocol echo with `ssl=` (the reference), tcpbench as
typed (its own self-signed certificate) and with `--quiet-data`, uvloop when
installed, and socat OPENSSL-LISTEN ... PIPE (default and -b4096 blocks).
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from benchmarks.harness import (HOST, PYTHON, REFSERVERS, TCPBENCH, BenchFailure, Case, Metric,
                                Server, ServerSpec, Suite, fmt_ratio, tcpbench_uvloop, uvloop_row)
from benchmarks.part_echo import MIB, Stream, _pair_ratios, transfer

WINDOW = 256 * 1024


def _pem(workdir: Path) -> str:
    """cert+key in one PEM file, made once per run (socat's cert= and the reference read it)."""
    path = workdir / "tls-bench.pem"
    if not path.exists():
        from tcpbench.engine.certs import make_self_signed

        made = make_self_signed(["localhost", "127.0.0.1"])
        path.write_bytes(made.cert_pem + made.key_pem)
    return str(path)


def servers() -> list[ServerSpec]:
    def socat(*extra: str):
        return lambda p, t: ["socat", *extra, f"OPENSSL-LISTEN:{p},bind={HOST},reuseaddr,fork,"
                             f"cert={_pem(t)},verify=0", "PIPE"]

    return [
        ServerSpec("bare asyncio Protocol echo, ssl=",
                   lambda p, t: [PYTHON, REFSERVERS, "echo-protocol-tls", _pem(t)],
                   port_from_output=True, reference=True),
        ServerSpec("tcpbench serve echo --tls (as typed)",
                   lambda p, t: [TCPBENCH, "serve", "echo", "--tls"], port_from_output=True),
        *uvloop_row("tcpbench serve echo --tls (uvloop)",
                    lambda p, t: tcpbench_uvloop("serve", "echo", "--tls")),
        ServerSpec("tcpbench serve echo --tls --quiet-data",
                   lambda p, t: [TCPBENCH, "serve", "echo", "--tls", "--quiet-data"],
                   port_from_output=True),
        ServerSpec("socat OPENSSL-LISTEN PIPE", socat(), needs=("socat",), peer=True),
        ServerSpec("socat -b4096 OPENSSL-LISTEN PIPE", socat("-b4096"), needs=("socat",), peer=True),
    ]


def _context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _connect(port: int, conns: int, stall: float) -> list[socket.socket]:
    context = _context()
    socks: list[socket.socket] = []
    try:
        for _ in range(conns):
            raw = socket.create_connection((HOST, port), timeout=stall)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                socks.append(context.wrap_socket(raw, server_hostname="localhost"))
            except BaseException:
                raw.close()
                raise
    except (OSError, ssl.SSLError) as exc:
        for sock in socks:
            sock.close()
        raise BenchFailure(f"could not connect with TLS: {exc}") from None
    return socks


def _tail(sock: socket.socket, bound: float) -> tuple[int, bool]:
    """After every byte: our close_notify, and whether the server's came back within `bound`.

    Extra application data would make `unwrap` fail, which counts as no orderly end."""
    sock.settimeout(bound)
    try:
        plain = sock.unwrap()  # type: ignore[attr-defined]
    except (OSError, ssl.SSLError, ValueError):
        return 0, False
    try:
        plain.shutdown(socket.SHUT_WR)
        return 0, plain.recv(1) == b""
    except OSError:
        return 0, False


def run(suite: Suite) -> None:
    total = suite.option("echo_mib", 256, 64) * MIB
    specs = suite.available(servers())
    streams = {1: Stream(total, 1), 8: Stream(total, 8)}
    small = {1: Stream(4 * MIB, 1), 8: Stream(4 * MIB, 8)}
    cases = []
    for conns in (1, 8):
        title = (f"echo over TLS: {conns} conn{'s' if conns > 1 else ''}, 256 KiB window, "
                 f"{total // MIB} MiB{' split across them' if conns > 1 else ''}")

        def measure(server: Server, conns=conns) -> dict:
            return transfer(server, streams[conns], WINDOW, connect=_connect, tail=_tail)

        def precheck(server: Server, conns=conns) -> dict:
            return transfer(server, small[conns], WINDOW, deadline_s=10.0, stall=3.0,
                            connect=_connect, tail=_tail)

        cases.append(Case("tls", title, [
            Metric("mib_s", "MiB/s", "{:.0f}"),
            Metric("cpu_s_per_gib", "server cpu s/GiB", "{:.2f}", higher_is_better=False,
                   ratio=True),
            Metric("client_cpu_s", "client cpu s", "{:.2f}"),
            Metric("fin", "close_notify back", "{:.0f}"),
        ], measure, precheck=precheck))
    cases[0].notes.append("plaintext MiB/s (what the application sees); every byte verified as in "
                          "the echo part; the client (this process, ssl in threads) does TLS too, "
                          "so it shares the 2 cores with the server")
    suite.run_cases(cases, specs)
    for case in cases:
        suite.table(case)
    name = "tcpbench serve echo --tls (as typed)"
    for case in cases:
        for peer in ("socat OPENSSL-LISTEN PIPE", "socat -b4096 OPENSSL-LISTEN PIPE"):
            ratio = _pair_ratios(case, name, peer)
            suite.goal(f"{case.title}: {name} vs {peer}: {fmt_ratio(ratio)} (same-round median)",
                       None)
