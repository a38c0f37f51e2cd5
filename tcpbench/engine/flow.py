"""Reading flow control of a `Session`: pauses by reason, the hangup watch, drain waiters.

A mixin so `session.py` stays readable (as `FileSending` is). Reading is paused
per reason ("operator", "backpressure", a handler's reader...): the socket is read
again only when no reason is left. While reading is paused asyncio does not watch
the socket, so an RST would go unnoticed until reading resumed; the session then
puts itself in its owner's `HangupWatch`, if the owner has one.

It uses the session's `transport`, `owner`, `_read_pauses`, `_draining`,
`_write_paused` and `_drain_waiters` slots and its `_emit`.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from tcpbench.engine import events as ev
from tcpbench.engine.conduit import SessionClosedError

from tcpbench.engine.states import RESET


class ReadFlow:
    """The `Session` side of pausing and resuming reads, and of waiting for the send buffer."""

    __slots__ = ()
    transport: Any
    owner: Any
    id: int
    state: str
    end_reason: str
    dirty: bool
    bytes_in: int
    bytes_out: int
    _read_pauses: set[str] | None
    _draining: bool
    _write_paused: bool
    _drain_waiters: list[asyncio.Future[None]] | None

    if TYPE_CHECKING:
        @property
        def is_finished(self) -> bool: ...

        def _emit(self, event: ev.Event) -> None: ...

    def pause_reading(self, reason: str = "operator") -> None:
        """Stop reading from the socket (the peer's sends then block on TCP flow control)."""
        pauses = self._read_pauses
        if pauses is None:
            pauses = self._read_pauses = set()
        if reason in pauses or self.transport is None or self._draining:
            return
        pauses.add(reason)
        if len(pauses) == 1 and not self.transport.is_closing():
            try:
                self.transport.pause_reading()
            except RuntimeError:
                pass
            # Not read, the socket is not watched: an RST would go unnoticed until reading resumes.
            hangups = getattr(self.owner, "hangups", None)
            if hangups is not None:
                hangups.watch(self)

    def resume_reading(self, reason: str = "operator") -> None:
        pauses = self._read_pauses
        if not pauses or reason not in pauses:
            return
        pauses.discard(reason)
        if not pauses:
            self._unwatch_hangup()
        if not pauses and self.transport is not None and not self.transport.is_closing():
            try:
                self.transport.resume_reading()
            except RuntimeError:
                pass

    def peer_reset(self, exc: OSError) -> None:
        """The peer reset the connection while we were not reading (see `HangupWatch`):
        end now as reset by peer, freeing the socket and whatever the session holds."""
        transport = self.transport
        if self.is_finished or transport is None:
            return
        self.state = RESET
        self.end_reason = "connection reset by peer (noticed while reading was paused)"
        self.dirty = True
        self._emit(ev.SessionReset(time.monotonic(), self.id, self.bytes_in, self.bytes_out,
                                   exc.strerror or str(exc)))
        transport.abort()  # the kernel already dropped the connection: nothing is sent

    def _unwatch_hangup(self) -> None:
        hangups = getattr(self.owner, "hangups", None)
        if hangups is not None:
            hangups.unwatch(self)

    async def drained(self) -> None:
        """Wait until the send buffer is below the low-water mark.

        Errors: `SessionClosedError` if the session ends while waiting.
        """
        if self.is_finished:
            raise SessionClosedError(f"session {self.id} is {self.state}")
        if not self._write_paused:
            return
        waiter = self.owner.loop.create_future()
        if self._drain_waiters is None:
            self._drain_waiters = []
        self._drain_waiters.append(waiter)
        await waiter
