"""fuzz throughput: how fast `tcpbench serve fuzz` streams random bytes on loopback.

Starts `tcpbench serve fuzz --bytes N --quiet-data` (no rate limit) as a user
would, connects, reads everything to EOF and reports MB/s. For scale, the same
read from `head -c N /dev/urandom` served by ncat (the seed's recipe) when ncat
is installed, and the bare generator (`random.Random.randbytes`) alone.

    python benchmarks/fuzz_rate.py [--bytes 500000000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import socket
import subprocess
import sys
import threading
import time


def read_all(port: int) -> tuple[int, float]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        started = time.perf_counter()
        total = 0
        buffer = bytearray(1 << 20)
        while True:
            n = sock.recv_into(buffer)
            if not n:
                break
            total += n
        return total, time.perf_counter() - started


def tcpbench(size: int) -> tuple[int, float]:
    proc = subprocess.Popen([sys.executable, "-m", "tcpbench", "serve", "fuzz", "--bytes", str(size),
                             "--seed", "1", "--quiet-data"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        port = int(line.rsplit(":", 1)[1])
        stream = proc.stdout
        threading.Thread(target=lambda: [None for _ in iter(lambda: stream.read(65536), b"")],
                         daemon=True).start()
        return read_all(port)
    finally:
        proc.kill()
        proc.wait()


def ncat(size: int) -> tuple[int, float] | None:
    if shutil.which("ncat") is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(["ncat", "-l", "127.0.0.1", str(port), "-c", f"head -c {size} /dev/urandom"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                return read_all(port)
            except ConnectionRefusedError:
                time.sleep(0.05)
        return None
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, default=500_000_000)
    args = parser.parse_args()
    rng = random.Random(1)
    started = time.perf_counter()
    left = args.bytes
    while left > 0:
        left -= len(rng.randbytes(min(left, 256 * 1024)))
    gen = args.bytes / (time.perf_counter() - started) / 1e6
    print(f"{'generator alone (randbytes)':40} {gen:8.0f} MB/s")
    total, seconds = tcpbench(args.bytes)
    assert total == args.bytes, total
    print(f"{'tcpbench serve fuzz':40} {total / seconds / 1e6:8.0f} MB/s  ({total:,} bytes in {seconds:.2f} s)")
    peer = ncat(args.bytes)
    if peer is not None:
        total, seconds = peer
        print(f"{'ncat -c head -c N /dev/urandom':40} {total / seconds / 1e6:8.0f} MB/s  "
              f"({total:,} bytes in {seconds:.2f} s)")


if __name__ == "__main__":
    main()
