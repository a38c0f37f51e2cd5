"""Shared test helpers: bounded polling, never sleep-and-hope."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Callable

import pytest

# The headless commands pick uvloop automatically when it is installed; their tests run
# what a default install runs (the standard loop) unless a test asks for uvloop itself.
os.environ.setdefault("TCPBENCH_LOOP", "asyncio")


async def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll `predicate` on the running loop until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.01)


@pytest.fixture
async def manager():
    from tcpbench.engine import SessionManager

    async with SessionManager(linger=1.0) as m:
        yield m

