"""Engine tests run on every event loop tcpbench supports: asyncio, asyncio busy polling
(what the headless commands run by default), and uvloop when installed."""

from __future__ import annotations

import asyncio


def busy_poll_loop() -> asyncio.AbstractEventLoop:
    from tcpbench.engine.busypoll import BusyPollEventLoop

    return BusyPollEventLoop()


def pytest_asyncio_loop_factories(config, item):
    factories = {"asyncio": asyncio.new_event_loop, "busypoll": busy_poll_loop}
    try:
        import uvloop
    except ImportError:
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories
