"""The probe against a real firewall: two network namespaces, a veth pair, iptables DROP and REJECT.

near (192.0.2.1, 2001:db8:7::1) --veth-- far (192.0.2.2, 2001:db8:7::2)

Listeners run in `far` on ports OPEN..HOSTUNREACH, so only the firewall decides
the outcome of each port. `far.test` resolves (through /etc/netns/NEAR/hosts,
which `ip netns exec` mounts over /etc/hosts) to both addresses, so one probe
run shows one result per address per port. Traffic never leaves the namespaces;
everything is removed in `finally`. Needs root, iproute2 and iptables.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns

OPEN, DROPPED, RESET, HOSTUNREACH = 8001, 8002, 8003, 8004
FAR4, FAR6 = "192.0.2.2", "2001:db8:7::2"

SERVER = """
import socket, sys, time
socks = []
for family, host in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    for port in map(int, sys.argv[1:]):
        s = socket.socket(family)
        if family == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port)); s.listen(16); socks.append(s)
print("ready", flush=True)
time.sleep(120)  # killed by the test; the bound keeps a lost child from living forever
"""


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"needs {tool}"
    return None


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=20, check=check)


def wait_line(proc: subprocess.Popen[str], needle: str, timeout: float = 15.0) -> None:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stdout], [], [], 0.1)
        if ready:
            line = proc.stdout.readline()
            seen.append(line)
            if needle in line:
                return
            if not line and proc.poll() is not None:
                break
    raise AssertionError(f"no {needle!r} from the far-side server within {timeout} s: {seen}")


@pytest.fixture
def namespaces():
    reason = _missing()
    if reason:
        pytest.skip(reason)
    tag = uuid.uuid4().hex[:6]
    near, far = f"tbnear{tag}", f"tbfar{tag}"
    veth_near, veth_far = f"tbn{tag}", f"tbf{tag}"
    hosts_dir = Path("/etc/netns") / near
    ipv6 = shutil.which("ip6tables") is not None
    try:
        try:
            sh("ip", "netns", "add", near)
        except subprocess.CalledProcessError as exc:
            pytest.skip(f"cannot create a network namespace here: {exc.stderr.strip()}")
        sh("ip", "netns", "add", far)
        sh("ip", "link", "add", veth_near, "type", "veth", "peer", "name", veth_far)
        sh("ip", "link", "set", veth_near, "netns", near)
        sh("ip", "link", "set", veth_far, "netns", far)
        for ns, dev, v4, v6 in ((near, veth_near, "192.0.2.1", "2001:db8:7::1"),
                                (far, veth_far, FAR4, FAR6)):
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "addr", "add", f"{v4}/24", "dev", dev)
            if ipv6:
                sh("ip", "-n", ns, "addr", "add", f"{v6}/64", "dev", dev, "nodad")
            sh("ip", "-n", ns, "link", "set", dev, "up")
        tables = [("iptables", "icmp-host-prohibited")]
        if ipv6:
            tables.append(("ip6tables", "icmp6-adm-prohibited"))
        for tool, prohibited in tables:
            rules = ((DROPPED, ["DROP"]), (RESET, ["REJECT", "--reject-with", "tcp-reset"]),
                     (HOSTUNREACH, ["REJECT", "--reject-with", prohibited]))
            for port, target in rules:
                sh("ip", "netns", "exec", far, tool, "-A", "INPUT", "-p", "tcp",
                   "--dport", str(port), "-j", *target)
        hosts_dir.mkdir(parents=True)
        (hosts_dir / "hosts").write_text(
            f"127.0.0.1 localhost\n{FAR4} far.test\n" + (f"{FAR6} far.test\n" if ipv6 else ""))
        server = subprocess.Popen(
            ["ip", "netns", "exec", far, sys.executable, "-c", SERVER,
             *map(str, (OPEN, DROPPED, RESET, HOSTUNREACH))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            wait_line(server, "ready")
            yield near, ipv6
        finally:
            server.kill()  # our own child, by its handle
            server.communicate(timeout=10)
    finally:
        shutil.rmtree(hosts_dir, ignore_errors=True)
        for ns in (near, far):  # deleting a namespace deletes its veth end, and with it the pair
            sh("ip", "netns", "del", ns, check=False)


def probe_in(ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-m", "tcpbench", "probe",
                           *args], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])


def test_firewall_outcomes_through_netns(namespaces):
    near, ipv6 = namespaces
    # 2.5 s: on Linux (6.18 here) ICMPv6 administratively-prohibited fails the
    # connect only after the first SYN retransmission, about 1 s in; IPv4's
    # ICMP host-prohibited fails it at once.
    done = probe_in(near, "far.test", f"{OPEN}-{HOSTUNREACH}", "--timeout", "2.5", "--json")
    assert done.returncode == 1, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    got = {(r["address"], r["port"]): r["outcome"] for r in records}
    addresses = [FAR4, FAR6] if ipv6 else [FAR4]
    want = {}
    for address in addresses:
        want[(address, OPEN)] = "open"
        want[(address, DROPPED)] = "timed_out"
        want[(address, RESET)] = "refused"
        want[(address, HOSTUNREACH)] = "host_unreachable"
    assert got == want, done.stdout
    assert len(records) == len(want)  # one result per address per port
    by_key = {(r["address"], r["port"]): r for r in records}
    assert "DROP" in by_key[(FAR4, DROPPED)]["explanation"]
    assert by_key[(FAR4, HOSTUNREACH)]["error"] == "No route to host"
    assert "icmp-host-prohibited" in by_key[(FAR4, HOSTUNREACH)]["explanation"]
    # DROP costs the whole timeout; RST and ICMP come back at once.
    assert by_key[(FAR4, DROPPED)]["ms"] >= 2400
    assert by_key[(FAR4, RESET)]["ms"] < 900
    assert by_key[(FAR4, HOSTUNREACH)]["ms"] < 900


def test_no_route_is_network_unreachable(namespaces):
    near, _ = namespaces
    done = probe_in(near, "198.51.100.7", "80", "--timeout", "1.5", "--json")
    assert done.returncode == 1
    record = json.loads(done.stdout)
    assert record["outcome"] == "network_unreachable", record
    assert record["error"] == "Network is unreachable"


def test_table_for_people_through_netns(namespaces):
    near, _ = namespaces
    done = probe_in(near, FAR4, f"{OPEN},{DROPPED},{RESET},{HOSTUNREACH}", "--timeout", "1")
    lines = done.stdout.splitlines()
    rows = lines[1:5]
    for row, port, label in zip(rows, (OPEN, DROPPED, RESET, HOSTUNREACH),
                                ("open", "timed out", "refused", "host unreachable")):
        assert row.split()[:2] == [FAR4, str(port)] and f"  {label}  " in row, done.stdout
    assert "1 open, 1 refused, 1 timed out, 1 host unreachable" in lines[-1]
