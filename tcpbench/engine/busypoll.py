"""Busy polling for asyncio's selector loop: after traffic, look again before sleeping.

A request/response peer (one client doing its requests in turn, an echo with a
window) leaves the server idle between each answer and the next request. When
the loop blocks in epoll_wait, the kernel parks the thread and, on a virtual
machine, the vCPU halts; waking it again costs tens of microseconds, often more
than the request itself. Measured on a 2-core VM: one `wrk -c1` client got
~9,700 req/s from `serve http` blocking and ~16,000 busy polling; one echo
connection with a 32 KiB window went from ~300 to ~480 MiB/s.

So, as Linux's own `net.core.busy_poll`, Go's spinning scheduler threads and
Netty's busy-wait strategy do, the loop polls without blocking for a short
budget (default 100 us; 25 us was too short for this VM's ~30-40 us round trip
to a woken client) before it sleeps, yielding the CPU between polls to any
thread that wants it, but only when spinning is likely to pay off:

- only right after a wait that returned I/O (not after a timer, not when idle);
- a spin that finds nothing makes the next 1, 2, 4, ... 64 waits block at once,
  so a trickle of events spaced just beyond the budget costs at most one
  budget per 64 events; one spin that finds something resets that.

An idle server therefore never spins, and a busy one rarely needs to: the cost
is CPU time while traffic comes in short round trips, which `--busy-poll 0`
(or `TCPBENCH_BUSY_POLL=0`) gives back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import selectors
import time
from typing import Callable

DEFAULT_BUDGET_US = 100
MAX_SKIP = 64
"""After repeated misses, the most waits in a row that block without spinning."""

yield_cpu = getattr(os, "sched_yield", lambda: None)
_BaseSelector: type[selectors.BaseSelector] = getattr(selectors, "EpollSelector",
                                                      selectors.DefaultSelector)


class BusyPollSelector(_BaseSelector):  # type: ignore[valid-type,misc]
    """A selector whose blocking `select` first polls for up to `budget_us` after I/O.

    Owns nothing beyond its base selector (epoll where there is one). `select`
    behaves as the base's: it returns when an event is ready or `timeout` has
    passed, and a timeout of 0 or less never spins. `spins` and `hits` count
    spins started and spins that found an event. `solo_polls` counts the polls
    in a row that found exactly one file ready, the same one (`solo_fd`; polls
    that find nothing do not break the run): how long the loop has been serving
    one peer alone, which sessions read to size their reads (`readsize.py`).

    Work that can wait for a quiet moment (the headless commands' event lines) is
    registered with `add_idle`: it runs in the gaps of a spin, when a poll has just
    found nothing ready, so a peer waiting for its answer is not kept waiting for it.
    """

    def __init__(self, budget_us: float = DEFAULT_BUDGET_US, clock=time.perf_counter) -> None:
        super().__init__()
        self.budget = max(0.0, budget_us) / 1e6
        self.clock = clock
        self.spins = 0
        self.hits = 0
        self.solo_polls = 0
        self.solo_fd = -1
        self._after_io = False
        self._skip = 0
        self._next_skip = 1
        self._idle: tuple[Callable[[], object], ...] = ()
        """Registered idle steps; a tuple, replaced on change, so a spin iterates it as is."""

    def add_idle(self, step: Callable[[], object]) -> None:
        """Run `step()` whenever a spin's poll finds nothing ready, until it is removed.

        `step` must do a small bounded piece of work (tens of microseconds: a poll
        waits for it) and return; it is called again at the next empty poll, with
        the CPU yielded in between as every empty poll does. Nothing guarantees
        that it runs (a loop that blocks without spinning never calls it), so the
        work needs its own deadline too. A step that raises is removed and logged.
        """
        if step not in self._idle:
            self._idle += (step,)

    def remove_idle(self, step: Callable[[], object]) -> None:
        """Stop calling `step`; no error if it was not registered."""
        # By equality, not identity: each `obj.method` access makes a new bound method.
        self._idle = tuple(s for s in self._idle if s != step)

    def _run_idle(self) -> None:
        """One step of each idle callback."""
        for step in self._idle:
            try:
                step()
            except Exception:
                self.remove_idle(step)
                logging.getLogger(__name__).exception("idle step %r failed; removed", step)

    def select(self, timeout: float | None = None) -> list:
        ready = self._select(timeout)
        if ready:
            self._note(ready)
        return ready

    def _select(self, timeout: float | None) -> list:
        poll = super().select
        if timeout is not None and timeout <= 0:
            # A look between callbacks says nothing about whether traffic stopped.
            ready = poll(0)
            self._after_io = self._after_io or bool(ready)
            return ready
        if not self._after_io or not self.budget:
            ready = poll(timeout)
        elif self._skip:
            self._skip -= 1
            ready = poll(timeout)
        else:
            return self._spin(poll, timeout)
        self._after_io = bool(ready)
        return ready

    def _note(self, ready: list) -> None:
        if len(ready) == 1:
            fd = ready[0][0].fd
            if fd == self.solo_fd:
                self.solo_polls += 1
            else:
                self.solo_fd = fd
                self.solo_polls = 1
        else:
            self.solo_fd = -1
            self.solo_polls = 0

    def _spin(self, poll, timeout: float | None) -> list:
        self.spins += 1
        budget = self.budget if timeout is None else min(self.budget, timeout)
        clock = self.clock
        end = clock() + budget
        while True:
            ready = poll(0)
            if ready:
                self.hits += 1
                self._next_skip = 1
                return ready
            if clock() >= end:
                break
            if self._idle:
                self._run_idle()
            # A spinning server must not starve its own clients on a small machine: when
            # another thread waits for this CPU, it runs now (1 conn bulk echo on 2 cores
            # lost 5% to spinning without this, and nothing with it).
            yield_cpu()
        self._skip = self._next_skip
        self._next_skip = min(self._next_skip * 2, MAX_SKIP)
        ready = poll(None if timeout is None else max(0.0, timeout - budget))
        self._after_io = bool(ready)
        return ready


class BusyPollEventLoop(asyncio.SelectorEventLoop):
    """asyncio's selector loop on a `BusyPollSelector`, exposed as `poller` so the
    sessions the loop runs can read how many peers it is serving (`solo_polls`)."""

    def __init__(self, budget_us: float = DEFAULT_BUDGET_US) -> None:
        self.poller = BusyPollSelector(budget_us)
        super().__init__(self.poller)
