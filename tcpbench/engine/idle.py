"""Idle timeouts, per connection: each session closes `seconds` after ITS last activity.

One `loop.call_later` timer per watched session, re-armed lazily: activity only
moves `session.last_activity` (the hot path does no timer work); when the timer
fires early because there was activity since it was armed, it is re-armed for
the new deadline. A session is thus checked about once per idle period, and it
times out within the loop's timer precision (~1 ms) of its own deadline, unlike
a periodic sweep (late by up to its period) or ncat's `-i`, which closes every
connection at the first timeout (nmap issue 2638).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

_EARLY = 0.0005
"""A timer may fire this much before its deadline (clock rounding) and still count."""


class IdleWatch:
    """Times out the sessions of one listener that stay idle for `seconds`.

    Resource handling: holds one timer handle per watched session; `forget`
    (when a session ends) and `close` cancel them.

    Errors: none; a session that already ended or is closing is dropped quietly.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self.loop = loop
        self.seconds = seconds
        self._handles: dict[int, asyncio.TimerHandle] = {}

    def watch(self, session: Any) -> None:
        """Start watching `session` (it needs `id`, `last_activity`, `state`, `time_out`)."""
        self._arm(session, session.last_activity + self.seconds)

    def forget(self, session: Any) -> None:
        handle = self._handles.pop(session.id, None)
        if handle is not None:
            handle.cancel()

    def close(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()

    def __len__(self) -> int:
        return len(self._handles)

    def _arm(self, session: Any, deadline: float) -> None:
        delay = max(0.0, deadline - time.monotonic())
        self._handles[session.id] = self.loop.call_later(delay, self._check, session)

    def _check(self, session: Any) -> None:
        if session.is_finished or session.state == "closing":
            self._handles.pop(session.id, None)
            return
        deadline = session.last_activity + self.seconds
        if time.monotonic() + _EARLY >= deadline:
            self._handles.pop(session.id, None)
            session.time_out(self.seconds)
        else:
            self._arm(session, deadline)
