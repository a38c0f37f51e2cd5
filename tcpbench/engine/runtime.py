"""Process-wide settings the engine runs best with: the event loop and the open-file limit.

uvloop (the `fast` extra: `pip install 'tcpbench[fast]'`) is used automatically
by the headless commands when it is installed; `--loop asyncio` (or
`TCPBENCH_LOOP=asyncio`) keeps the standard loop. The engine uses only public
asyncio API, so both loops run it unchanged, and the benchmarks' goals are
measured on the default loop (`benchmarks/`). On the standard loop the headless commands
busy-poll briefly after traffic (`engine/busypoll.py`; `--busy-poll USEC`, or
`TCPBENCH_BUSY_POLL`, 0 = off).

Every connection is a file descriptor, and distributions start processes with a
soft limit of 1024, so a server that holds 10,000 connections must raise its
soft limit to the hard limit, as nginx and uvicorn users do by hand.
"""

from __future__ import annotations

import asyncio
import os
from typing import Callable

LOOPS = ("auto", "asyncio", "uvloop")
_busy_poll_us: float = 0.0


class LoopUnavailableError(RuntimeError):
    """`--loop uvloop` was asked for but uvloop is not installed."""


def choose_loop(preference: str | None = None) -> str:
    """Install the event loop policy for `preference` and return the loop's name.

    `preference` is "auto" (uvloop if importable), "asyncio" or "uvloop"; None
    reads `TCPBENCH_LOOP` (default "auto").

    Errors: `LoopUnavailableError` for "uvloop" without uvloop installed;
    `ValueError` for an unknown name.
    """
    wanted = (preference or os.environ.get("TCPBENCH_LOOP") or "auto").lower()
    if wanted not in LOOPS:
        raise ValueError(f"unknown event loop {wanted!r} (choose from {', '.join(LOOPS)})")
    if wanted == "asyncio":
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        if wanted == "uvloop":
            raise LoopUnavailableError("uvloop is not installed: pip install 'tcpbench[fast]'") from None
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def set_busy_poll(microseconds: float | None = None) -> float:
    """Make `loop_factory` busy-poll for up to `microseconds` after I/O; return the budget set.

    None reads `TCPBENCH_BUSY_POLL` (default `busypoll.DEFAULT_BUDGET_US`); 0 turns it off.

    Errors: `ValueError` for a negative or unreadable value.
    """
    global _busy_poll_us
    if microseconds is None:
        from tcpbench.engine.busypoll import DEFAULT_BUDGET_US

        text = os.environ.get("TCPBENCH_BUSY_POLL", "").strip()
        try:
            microseconds = float(text) if text else DEFAULT_BUDGET_US
        except ValueError:
            raise ValueError(f"TCPBENCH_BUSY_POLL must be microseconds, not {text!r}") from None
    if not 0 <= microseconds <= 10_000:
        raise ValueError(f"busy poll must be 0 to 10000 microseconds, not {microseconds:g}")
    _busy_poll_us = microseconds
    return microseconds


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What `asyncio.Runner` should make its loop with; None: the installed policy's loop.

    The standard selector loop runs on a `BusyPollSelector` (`BusyPollEventLoop`) when
    `set_busy_poll` asked for one; uvloop (or any other installed policy) is left as it is.
    """
    if not _busy_poll_us or type(asyncio.get_event_loop_policy()) is not asyncio.DefaultEventLoopPolicy:
        return None
    if not hasattr(asyncio, "SelectorEventLoop") or os.name == "nt":
        return None
    from tcpbench.engine.busypoll import BusyPollEventLoop

    budget = _busy_poll_us
    return lambda: BusyPollEventLoop(budget)


def raise_open_file_limit() -> int:
    """Raise this process's soft limit on open files to its hard limit; return the new soft limit.

    Errors: none; where the limit cannot be read or changed, it stays as it was.
    """
    try:
        import resource
    except ImportError:  # not a POSIX system
        return -1
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        if soft == resource.RLIM_INFINITY or soft >= target:
            return soft
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    except (OSError, ValueError):
        return -1
