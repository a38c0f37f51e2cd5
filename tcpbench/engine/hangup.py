"""Noticing a peer's RST while a session's reading is paused.

A paused reader is not watched for readability (`transport.pause_reading()`
removes it from the selector), and with nothing queued to send no writer is
watched either: a peer that resets the connection then goes unnoticed until
reading resumes, which for an exec program that never reads is never. The
session would keep its socket, its task and its child process.

`HangupWatch` keeps a second epoll set holding exactly the paused sessions'
sockets, registered for no event at all: epoll still reports EPOLLERR and
EPOLLHUP for them, which is what an RST produces. That epoll descriptor is
itself watched by the event loop (`add_reader`; an epoll fd is readable while
it has events), so the cost is nothing per session while nothing happens, and
one `SO_ERROR` read when something does. It works on uvloop too (libuv polls
the epoll fd like any other). Without `select.epoll` (not Linux) it falls back
to reading `SO_ERROR` of each paused socket every `POLL_SECONDS`.

A hangup without an error (both sides sent FIN) is not a reset: the socket is
dropped from the watch and the session learns of it when it reads again.
"""

from __future__ import annotations

import asyncio
import os
import select
import socket
from typing import Any

POLL_SECONDS = 0.25
"""The fallback's period (no epoll): a paused session notices an RST within this."""


class HangupWatch:
    """Watches paused sessions' sockets for an RST and tells the session at once.

    Resource handling: owns one epoll descriptor (closed by `close`); holds a
    reference to each watched session until `unwatch` (sessions call it when
    they resume reading or end).

    Errors: none raised; a socket that is already gone is simply forgotten.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._watched: dict[int, Any] = {}
        self._fds: dict[int, int] = {}
        """Session id -> its watched fd (unwatching is O(1): sessions resume often)."""
        self._reading = False
        self._poll_handle: asyncio.TimerHandle | None = None
        self.closed = False

    def __len__(self) -> int:
        return len(self._watched)

    def watch(self, session: Any) -> None:
        """Start watching `session`'s socket (it needs `transport` and `peer_reset(exc)`)."""
        if self.closed or session.transport is None:
            return
        sock = session.transport.get_extra_info("socket")
        fd = sock.fileno() if sock is not None else -1
        if fd < 0:
            return
        if fd in self._watched:
            if self._watched[fd][0] is session:
                return
            self._forget(fd)  # a stale entry: that fd was closed and now belongs to this socket
        if self._epoll is not None:
            try:
                self._epoll.register(fd, 0)
            except OSError:
                return
            if not self._reading:
                self.loop.add_reader(self._epoll.fileno(), self._ready)
                self._reading = True
        elif self._poll_handle is None:
            self._poll_handle = self.loop.call_later(POLL_SECONDS, self._poll)
        self._watched[fd] = (session, sock)
        self._fds[session.id] = fd

    def unwatch(self, session: Any) -> None:
        """Stop watching `session` (no-op if it is not watched)."""
        fd = self._fds.get(session.id)
        if fd is not None:
            self._forget(fd)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for fd in list(self._watched):
            self._forget(fd)
        if self._poll_handle is not None:
            self._poll_handle.cancel()
        if self._epoll is not None:
            self._epoll.close()

    def _forget(self, fd: int) -> None:
        entry = self._watched.pop(fd, None)
        if entry is not None:
            self._fds.pop(entry[0].id, None)
        if self._epoll is not None and not self._epoll.closed:
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):
                pass  # already closed: the kernel dropped it from the set itself
            if not self._watched and self._reading:
                self.loop.remove_reader(self._epoll.fileno())
                self._reading = False

    def _ready(self) -> None:
        assert self._epoll is not None
        for fd, _ in self._epoll.poll(0):
            self._check(fd)

    def _poll(self) -> None:
        self._poll_handle = None
        for fd in list(self._watched):
            self._check(fd, quiet_ok=True)
        if self._watched and not self.closed:
            self._poll_handle = self.loop.call_later(POLL_SECONDS, self._poll)

    def _check(self, fd: int, quiet_ok: bool = False) -> None:
        entry = self._watched.get(fd)
        if entry is None:
            return
        session, sock = entry
        try:
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        except OSError as exc:
            error = exc.errno or 0
        if not error:
            if not quiet_ok:
                self._forget(fd)  # a hangup with no error: both FINs; seen when reading resumes
            return
        self._forget(fd)
        session.peer_reset(ConnectionResetError(error, os.strerror(error)))
