"""http: wrk against tcpbench serve http and its peers, keep-alive and `Connection: close`.

Every server answers GET / with 200 and the 1-byte body `x`. wrk runs as its own
process (`-t2 -c50`, `-t2 -c1000`; `-t1 -c1` because wrk needs a connection per
thread) for SECONDS with `--latency`; its report gives req/s, p50, p99, socket
errors (connect + read + write + timeout) and non-2xx/3xx responses. wrk and
every server get RLIMIT_NOFILE raised to the hard limit. Server CPU is the
server's process-group CPU time over the wrk run, as a share of one core.

Servers: tcpbench serve http --body x as typed (an access line per request to
a file) and with --quiet-data; a bare asyncio Protocol + h11 server (the
reference: one h11.Connection per connection, keep-alive); nginx with one
process (master_process off, access_log off, keepalive_requests raised so a
keep-alive connection is never recycled by count); python3 -m http.server
(the standard library's threaded HTTP/1.0 server: it closes every connection).
"""

from __future__ import annotations

import re
import statistics
import shutil
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import (HOST, PYTHON, REFSERVERS, TCPBENCH, BenchFailure, Case, Metric,
                                Server, ServerSpec, Suite, fmt_ratio, raise_nofile, tcpbench_uvloop,
                                uvloop_row)

NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process off;
pid {tmp}/nginx-{port}.pid;
error_log {tmp}/nginx-{port}-error.log warn;
worker_rlimit_nofile 16384;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-{port}-body;
    proxy_temp_path {tmp}/nginx-{port}-proxy;
    fastcgi_temp_path {tmp}/nginx-{port}-fastcgi;
    uwsgi_temp_path {tmp}/nginx-{port}-uwsgi;
    scgi_temp_path {tmp}/nginx-{port}-scgi;
    keepalive_requests 100000000;
    server {{
        listen {host}:{port} backlog=4096;
        location / {{
            default_type text/plain;
            return 200 "x";
        }}
    }}
}}
"""


def _nginx(port: int, tmp: Path) -> list[str]:
    conf = tmp / f"nginx-{port}.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, host=HOST))
    return ["nginx", "-p", str(tmp), "-e", f"{tmp}/nginx-{port}-error.log", "-c", str(conf)]


def _docroot(tmp: Path) -> str:
    root = tmp / "http-server-root"
    root.mkdir(exist_ok=True)
    (root / "index.html").write_text("x")
    return str(root)


def servers() -> list[ServerSpec]:
    system_python = shutil.which("python3") or PYTHON
    return [
        ServerSpec("bare asyncio + h11", lambda p, t: [PYTHON, REFSERVERS, "h11", "x"],
                   port_from_output=True, reference=True),
        ServerSpec("tcpbench serve http --body x (as typed)",
                   lambda p, t: [TCPBENCH, "serve", "http", "--body", "x"], port_from_output=True),
        ServerSpec("tcpbench --busy-poll 0 serve http --body x",
                   lambda p, t: [TCPBENCH, "--busy-poll", "0", "serve", "http", "--body", "x"],
                   port_from_output=True),
        *uvloop_row("tcpbench serve http --body x (uvloop)",
                    lambda p, t: tcpbench_uvloop("serve", "http", "--body", "x")),
        ServerSpec("tcpbench serve http --body x --parser h11",
                   lambda p, t: [TCPBENCH, "serve", "http", "--body", "x", "--parser", "h11"],
                   port_from_output=True),
        ServerSpec("tcpbench serve http --body x --quiet-data",
                   lambda p, t: [TCPBENCH, "serve", "http", "--body", "x", "--quiet-data"],
                   port_from_output=True),
        ServerSpec("nginx, 1 process", _nginx, needs=("nginx",), peer=True),
        ServerSpec("python3 -m http.server",
                   lambda p, t: [system_python, "-m", "http.server", str(p), "--bind", HOST],
                   cwd=_docroot, peer=True),
    ]


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text)
    if not match:
        raise BenchFailure(f"cannot read wrk latency {text!r}")
    return float(match[1]) * UNITS[match[2]]


def parse_wrk(out: str) -> dict:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if not rps or not total:
        raise BenchFailure(f"cannot read wrk's report: {out[-400:]!r}")
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    counts = [int(x) for x in errors.groups()] if errors else [0, 0, 0, 0]
    return {"rps": float(rps[1]), "requests": int(total[1]),
            "p50_ms": _ms(p50[1]) if p50 else None, "p99_ms": _ms(p99[1]) if p99 else None,
            "errors": sum(counts), "err_connect": counts[0], "err_read": counts[1],
            "err_write": counts[2], "err_timeout": counts[3],
            "non2xx": int(non2xx[1]) if non2xx else 0}


def wrk(server: Server, connections: int, seconds: int, close: bool) -> dict:
    threads = 1 if connections < 2 else 2
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://{HOST}:{server.port}/")
    cpu0 = server.cpu_seconds()
    raise_nofile()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        raise BenchFailure(f"wrk did not finish within {seconds + 30} s") from None
    cpu = server.cpu_seconds() - cpu0
    if done.returncode != 0:
        raise BenchFailure(f"wrk exited {done.returncode}: {(done.stderr or done.stdout)[-300:]!r}")
    values = parse_wrk(done.stdout)
    values["cpu_pct"] = 100 * cpu / seconds
    if values["requests"] == 0:
        values["_error"] = (f"no request was answered (socket errors: connect {values['err_connect']}, "
                            f"read {values['err_read']}, write {values['err_write']}, timeout "
                            f"{values['err_timeout']})")
    return values


def run(suite: Suite) -> None:
    seconds = suite.option("wrk_seconds", 5, 2)
    specs = suite.available(servers())
    if shutil.which("wrk") is None:
        suite.emit("skipped http: wrk not installed")
        return
    cases = []
    for close in (False, True):
        for connections in (1, 50, 1000):
            mode = "Connection: close" if close else "keep-alive"
            threads = 1 if connections < 2 else 2
            case = Case("http", f"http: wrk -t{threads} -c{connections} -d{seconds}s, {mode}", [
                Metric("rps", "req/s", "{:.0f}"),
                Metric("p50_ms", "p50 ms", "{:.2f}", higher_is_better=False),
                Metric("p99_ms", "p99 ms", "{:.2f}", higher_is_better=False, ratio=True),
                Metric("errors", "socket errors", "{:.0f}", spread=True),
                Metric("non2xx", "non-2xx", "{:.0f}"),
                Metric("cpu_pct", "server cpu %", "{:.0f}"),
            ], lambda server, c=connections, x=close: wrk(server, c, seconds, x))
            cases.append(case)
    cases[0].notes.append("socket errors = wrk's connect+read+write+timeout (median; max beside it); "
                          "python3 -m http.server speaks HTTP/1.0 and closes every connection, so "
                          "keep-alive does not apply to it")
    suite.run_cases(cases, specs)
    for case in cases:
        suite.table(case)
    name = "tcpbench serve http --body x (as typed)"
    for case in cases:
        if "-c50 " in case.title:
            ref, p99 = case.ratio(name), case.ratio(name, "p99_ms")
            suite.goal(f"{case.title}: {name} >= 1.0x bare asyncio + h11 ({fmt_ratio(ref)}) "
                       f"with p99 no worse ({fmt_ratio(p99)} of its p99)",
                       None if ref is None or p99 is None else ref >= 1.0 and p99 <= 1.0)
            mine, theirs = case.results.get(name, {}), case.results.get("python3 -m http.server", {})
            ratios = sorted(mine[r]["rps"] / theirs[r]["rps"] for r in mine
                            if r in theirs and theirs[r]["rps"])
            vs = statistics.median(ratios) if ratios else None
            suite.goal(f"{case.title}: {name} >= 5x python3 -m http.server ({fmt_ratio(vs)}, "
                       "same-round median)", None if vs is None else vs >= 5.0)
        if "-c1000 " in case.title:
            errors = [v["errors"] for v in case.results.get(name, {}).values()]
            suite.goal(f"{case.title}: {name} has 0 socket errors in every round "
                       f"(max {max(errors) if errors else '-'})",
                       None if not errors else max(errors) == 0)


if __name__ == "__main__":
    sys.exit("run: python -m benchmarks http")
