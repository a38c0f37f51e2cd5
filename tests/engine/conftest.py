"""Engine tests run on every event loop tcpbench supports: asyncio, and uvloop when installed."""

from __future__ import annotations

import asyncio


def pytest_asyncio_loop_factories(config, item):
    factories = {"asyncio": asyncio.new_event_loop}
    try:
        import uvloop
    except ImportError:
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories
