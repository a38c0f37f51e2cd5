"""The long-running workbench gives freed heap pages back to the kernel (glibc's malloc_trim)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

import tcpbench.app
from tcpbench import heap
from tests.ui.helpers import make_app, until

glibc = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")

CHURN = r"""
import os, random
from tcpbench.heap import release_free_memory

def rss_mib():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS")) / 1024

# What a busy workbench does: reads of 70-250 KiB come and go while small long-lived
# objects land between them, so the heap cannot shrink from its top.
rng = random.Random(7)
kept, buffers = [], []
for _ in range(3000):
    buffers.append(os.urandom(rng.randint(70_000, 250_000)))
    kept.append([0] * rng.randint(100, 300))
    if len(buffers) > 200:
        buffers.pop(rng.randrange(len(buffers)))
buffers.clear()
before = rss_mib()
released = release_free_memory()
print(before, rss_mib(), released)
"""


@glibc
@pytest.mark.timeout(60)
def test_a_trim_returns_a_churned_heaps_free_pages() -> None:
    done = subprocess.run([sys.executable, "-c", CHURN], capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stderr
    before, after, released = done.stdout.split()
    assert heap.can_release() and released == "True"
    # About 40 MiB of freed buffers sat in the heap; the trim gives back most of it.
    assert float(before) - float(after) > 20, done.stdout


async def test_the_workbench_trims_its_heap_on_a_timer(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []

    def counting_release() -> bool:
        calls.append(True)
        return heap.release_free_memory()

    monkeypatch.setattr(tcpbench.app, "TRIM_SECONDS", 0.05)
    monkeypatch.setattr(tcpbench.app, "release_free_memory", counting_release)
    monkeypatch.setattr(tcpbench.app, "can_release", lambda: True)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: len(calls) >= 3, timeout=10, what="three trims")
