"""The loopback's own ceiling for the echo part: iperf3, one way, 1 and 8 streams.

An echo server carries every byte twice through one process (in, then out), so no echo
server comes near this figure; it says how far the machine's TCP goes when a C sender
and a C receiver do nothing else, so the echo tables can be read against it. Each round
starts a one-off `iperf3 -s -1` on a free 127.0.0.1 port (ready once the kernel lists the
port as listening: a probe connection would take the server's one test), runs the
client for `SECONDS` with `-J`, and stops the server by the pid it started.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time

from benchmarks.harness import HOST, BenchFailure, Case, Metric, ServerSpec, Suite, free_port

MIB = 1 << 20
SECONDS = 2
STREAMS = (1, 8)


def _listening(port: int) -> bool:
    """True once 127.0.0.1:`port` is in LISTEN state (state 0A in /proc/net/tcp)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        return any(fields[1] == want and fields[3] == "0A"
                   for fields in (line.split() for line in table) if len(fields) > 3)


def one_way(streams: int, seconds: int = SECONDS) -> dict:
    port = free_port()
    server = subprocess.Popen(["iperf3", "-s", "-1", "-B", HOST, "-p", str(port)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while not _listening(port):
            if server.poll() is not None or time.monotonic() > deadline:
                raise BenchFailure("iperf3 -s did not start listening within 5 s")
            time.sleep(0.01)
        try:
            done = subprocess.run(["iperf3", "-c", HOST, "-p", str(port), "-t", str(seconds),
                                   "-P", str(streams), "-J"], capture_output=True, text=True,
                                  timeout=seconds + 20, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as exc:
            raise BenchFailure(f"iperf3 -c gave no result within {seconds + 20} s") from exc
        try:
            report = json.loads(done.stdout)
            received = report["end"]["sum_received"]
        except (ValueError, KeyError) as exc:
            raise BenchFailure(f"iperf3 -c: no report ({done.stderr.strip()[-200:]!r})") from exc
        return {"mib_s": received["bits_per_second"] / 8 / MIB,
                "retransmits": report["end"].get("sum_sent", {}).get("retransmits", 0)}
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(5)


def run(suite: Suite) -> None:
    if shutil.which("iperf3") is None:
        suite.emit("skipped the loopback ceiling (iperf3 one way): iperf3 not installed")
        return
    case = Case("echo", f"loopback ceiling: iperf3, one way, {SECONDS} s, no echo", [
        Metric("mib_s", "MiB/s", "{:.0f}"),
        Metric("retransmits", "retransmits", "{:.0f}"),
    ], measure=lambda server: {}, how="interleaved, a fresh iperf3 -s each")
    streams = {f"iperf3 -P {n} ({n} stream{'s' if n > 1 else ''})": n for n in STREAMS}
    case.notes.append("no goal and no reference: what this machine's loopback TCP carries one way "
                      "between two C programs; an echo carries each byte in and out of one process")
    rounds = 1 if suite.quick else suite.rounds
    suite.run_rounds(case, [ServerSpec(name, lambda p, t: [], needs=("iperf3",), peer=True)
                            for name in streams],
                     lambda spec: one_way(streams[spec.name]), rounds)
    suite.table(case, rounds)
