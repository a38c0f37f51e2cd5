"""The async face of a session, for services whose job is I/O (fuzz, exec, relay).

A `Conduit` knows its session only through `ConduitSession`, the few things it
uses of one (send and wait for the drain, pause and resume reading, close), so
this module does not import `session.py`, which builds a conduit for every
session whose service has a `handler`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, Protocol

from tcpbench.services.base import Note, Service

CONDUIT_QUEUE_LIMIT = 256 * 1024
"""Bytes read from the socket and not yet taken by the handler before reading pauses."""


class ConduitOwner(Protocol):
    """What a conduit uses of its session's owner (a `SessionOwner` is one)."""

    loop: asyncio.AbstractEventLoop

    def note(self, note: Note, listener_id: int | None) -> None:
        ...

    async def open_session(self, host: str, port: int, *, timeout: float = 10.0,
                           service: Service | None = None) -> Any:
        """Open another session (relay's upstream leg). Errors: `ConnectError`."""
        ...


class ConduitSession(Protocol):
    """What a conduit uses of its session (a `Session` is one)."""

    id: int
    listener_id: int | None
    peer: tuple[str, int]
    local: tuple[str, int]
    owner: Any
    """A `ConduitOwner`."""

    @property
    def is_finished(self) -> bool:
        ...

    @property
    def closed_future(self) -> asyncio.Future[None]:
        ...

    def send(self, data: bytes) -> None:
        ...

    async def drained(self) -> None:
        ...

    def half_close(self) -> None:
        ...

    def close(self, linger: float | None = None) -> None:
        ...

    def abort(self, reason: str = ...) -> None:
        ...

    def pause_reading(self, reason: str = ...) -> None:
        ...

    def resume_reading(self, reason: str = ...) -> None:
        ...


class SessionClosedError(ConnectionError):
    """The session can no longer do what was asked (it sent FIN, or it ended)."""


class Conduit:
    """The async face of a session, for services with a `handler`.

    `read()` returns the next chunk, `b""` at the peer's FIN or when the session
    ended. `write()` waits while the peer reads slowly. When the handler reads
    slowly, the socket stops being read once `CONDUIT_QUEUE_LIMIT` bytes wait.
    """

    def __init__(self, session: ConduitSession) -> None:
        self.session = session
        self._chunks: deque[bytes] = deque()
        self._queued = 0
        self._eof = False
        self._waiter: asyncio.Future[None] | None = None

    @property
    def id(self) -> int:
        return self.session.id

    @property
    def owner(self) -> ConduitOwner:
        """The session's owner: a handler may `open_session` through it (relay does)."""
        return self.session.owner

    @property
    def peer(self) -> tuple[str, int]:
        return self.session.peer

    @property
    def local(self) -> tuple[str, int]:
        return self.session.local

    def _feed(self, data: bytes) -> None:
        if data:
            self._chunks.append(data)
            self._queued += len(data)
            if self._queued > CONDUIT_QUEUE_LIMIT:
                self.session.pause_reading("handler")
        else:
            self._eof = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self) -> bytes:
        while not self._chunks:
            if self._eof:
                return b""
            self._waiter = self.session.owner.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        data = self._chunks.popleft()
        self._queued -= len(data)
        if self._queued <= CONDUIT_QUEUE_LIMIT // 2:
            self.session.resume_reading("handler")
        return data

    async def write(self, data: bytes) -> None:
        """Send and wait for the buffer to drain below the high-water mark.

        Errors: `SessionClosedError` when the session can no longer send.
        """
        self.session.send(data)
        await self.session.drained()

    def half_close(self) -> None:
        self.session.half_close()

    def close(self) -> None:
        self.session.close()

    def abort(self, reason: str = "aborted by the service") -> None:
        self.session.abort(reason)

    def note(self, text: str, topic: str = "note", **fields: Any) -> None:
        self.session.owner.note(Note(text, self.session.id, topic, tuple(fields.items())),
                                self.session.listener_id)

    @property
    def closed(self) -> bool:
        return self.session.is_finished

    async def wait_closed(self) -> None:
        await asyncio.shield(self.session.closed_future)
