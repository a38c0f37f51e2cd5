"""Linger deadlines: many sessions' "close now if the peer has not sent FIN by then", one timer.

A graceful close sends FIN and keeps reading until the peer's FIN, or until the
linger time runs out (see `session.py`). Every `Connection: close` answer, every
MOTD and every chat goodbye arms such a deadline, and the peer's FIN cancels it
a fraction of a millisecond later. One `loop.call_later` per close cost `serve
http` 6% of its `Connection: close` requests per second (wrk -c50, six rotated
rounds: 9,418 req/s against 10,026 with this queue, and 10,105 with no linger
deadline at all): a `TimerHandle` per close, a push onto asyncio's timer heap,
whose order is a Python-level `__lt__`, and the sweep of the cancelled handles
out of it.

Here the pending deadlines sit in insertion-ordered dicts, one per linger time
(nearly every close uses the owner's default, so there is one): arming is a dict
insert and cancelling a dict delete, and since one dict's deadlines come in the
order they were armed, its first entry is its earliest. One loop timer stays
armed for the earliest deadline of all; a cancelled deadline leaves nothing
behind but, at most, one early wakeup of that timer.
"""

from __future__ import annotations

import asyncio
import math
from operator import itemgetter
from typing import Any

_EARLY = 0.0005
"""A deadline this close is due (the loop may wake a timer a hair early; uvloop's clock ticks in ms)."""


class LingerQueue:
    """The linger deadlines of graceful closes, for the sessions of one owner.

    Resource handling: holds each session whose deadline is pending (until it is
    cancelled or comes due) and one loop timer while any is pending; `close()`
    ends every pending linger at once and stops the timer.

    Errors: none raised. A deadline that comes due calls the session's
    `linger_expired()`; if that raises, the error goes to the loop's exception
    handler and the other sessions due are still called.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._by_delay: dict[float, dict[Any, float]] = {}
        """Linger time -> {session: deadline}, in the order armed (so in deadline order)."""
        self._delay_of: dict[Any, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def __len__(self) -> int:
        """Deadlines pending."""
        return len(self._delay_of)

    def arm(self, session: Any, delay: float) -> float:
        """Call `session.linger_expired()` in `delay` seconds unless `cancel(session)` comes
        first; a session armed again keeps only its new deadline. Returns the deadline (loop time)."""
        self.cancel(session)
        deadline = self.loop.time() + delay
        pending = self._by_delay.get(delay)
        if pending is None:
            pending = self._by_delay[delay] = {}
        pending[session] = deadline
        self._delay_of[session] = delay
        if deadline < self._timer_at:
            self._arm_timer(deadline)
        return deadline

    def cancel(self, session: Any) -> None:
        """Forget `session`'s pending deadline, if it has one."""
        delay = self._delay_of.pop(session, None)
        if delay is not None:
            del self._by_delay[delay][session]

    def close(self) -> None:
        """End every pending linger now (each session's `linger_expired()`, earliest deadline
        first) and stop the timer: an owner shutting down leaves no session waiting."""
        self._run_due(math.inf)
        # After the callbacks: one that armed a session again is forgotten with the rest.
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_at = math.inf
        self._by_delay.clear()
        self._delay_of.clear()

    def _arm_timer(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self.loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        self._run_due(self.loop.time() + _EARLY)
        earliest = min((next(iter(pending.values())) for pending in self._by_delay.values()
                        if pending), default=math.inf)
        if earliest < self._timer_at:
            self._arm_timer(earliest)

    def _run_due(self, now: float) -> None:
        due = []
        for delay, pending in self._by_delay.items():
            for session, deadline in pending.items():
                if deadline > now:
                    break
                due.append((deadline, delay, session))
        # Earliest first across linger times too (a late wakeup can find several due).
        due.sort(key=itemgetter(0))
        for deadline, delay, session in due:
            if self._by_delay[delay].get(session) != deadline:
                continue  # an earlier callback cancelled or re-armed it
            self.cancel(session)
            try:
                session.linger_expired()
            except Exception as exc:
                self.loop.call_exception_handler({
                    "message": "tcpbench: ending a session's linger failed", "exception": exc})

