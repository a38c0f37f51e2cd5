"""Streaming a file to a session with flow control (the `SendFile` effect).

The file is read `CHUNK` bytes at a time, and only while the transport takes
more (between `resume_writing` and the next `pause_writing`), so a 200 MiB
download holds about one chunk plus the transport's high-water mark, whatever
the file's size. Chunks go through `Session.send`: counted, kept for display
(bounded by the store) and reported like any other bytes.

Reads are plain blocking reads on the loop: a 256 KiB read from the page cache
takes tens of microseconds; a cold disk can take longer, which is the price of
not running a thread per download.
"""

from __future__ import annotations

import os
from typing import Any, BinaryIO

from tcpbench.engine.conduit import SessionClosedError
from tcpbench.services.base import Effect, Note, SendFile

CHUNK = 256 * 1024


class FileStreamError(Exception):
    """The file could not be read to the end (gone, shrunk, unreadable): one line for a person."""


class FileStream:
    """`length` bytes of the file at `path` from `offset`, pushed into `session` as it drains.

    Resource handling: owns the open file; `close()` closes it (idempotent).

    Errors: the constructor and `pump` raise `FileStreamError`.
    """

    def __init__(self, session: Any, path: str, offset: int, length: int) -> None:
        self.session = session
        self.remaining = length
        try:
            self.file: BinaryIO | None = open(path, "rb")
            self.file.seek(offset)
        except OSError as exc:
            raise FileStreamError(f"cannot read {os.path.basename(path)}: {exc.strerror or exc}") from None

    def pump(self) -> bool:
        """Send chunks until the transport asks us to wait; True once everything is sent."""
        session = self.session
        handle = self.file
        assert handle is not None
        while self.remaining and not session.write_paused:
            try:
                data = handle.read(min(CHUNK, self.remaining))
            except OSError as exc:
                raise FileStreamError(f"reading the file failed: {exc.strerror or exc}") from None
            if not data:
                raise FileStreamError(f"the file shrank while it was sent ({self.remaining} bytes "
                                      "short of what the peer was promised)")
            self.remaining -= len(data)
            session.send(data)
        return not self.remaining

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


class FileSending:
    """The `Session` side of `SendFile`: one stream at a time, later effects queued behind it.

    A mixin so `session.py` stays readable; it uses the session's `_stream` and
    `_outbox` slots and its `send`, `abort`, `_apply` and owner.
    """

    __slots__ = ()
    _stream: FileStream | None
    _outbox: list[Effect] | None

    def send_file(self, path: str, offset: int, length: int) -> None:
        """Stream a file's bytes to the peer as it takes them (see `FileStream`).

        Errors: none raised; a file that cannot be read to the end aborts the
        session with RST (the peer was promised `length` bytes), with a note.
        """
        if self.is_finished or self.our_fin or self.transport is None or self.transport.is_closing():
            return
        if self._stream is not None:
            self._queue(SendFile(self.id, path, offset, length))
            return
        try:
            self._stream = FileStream(self, path, offset, length)
        except FileStreamError as exc:
            self._stream_failed(str(exc))
            return
        self._pump_stream()

    def _pump_stream(self) -> None:
        stream = self._stream
        assert stream is not None
        try:
            done = stream.pump()
        except FileStreamError as exc:
            self._stream_failed(str(exc))
            return
        except SessionClosedError:
            done = True
        if not done:
            return
        stream.close()
        self._stream = None
        outbox, self._outbox = self._outbox, None
        while outbox:
            # In order; a queued SendFile starts a new stream and re-queues the rest.
            effect = outbox.pop(0)
            self._apply([effect])
            if self._stream is not None:
                self._outbox = outbox + (self._outbox or [])
                return

    def _queue(self, effect: Effect) -> None:
        if self._outbox is None:
            self._outbox = []
        self._outbox.append(effect)

    def _stream_failed(self, why: str) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = self._outbox = None
        self.owner.note(Note(why, self.id, "error"), self.listener_id)
        self.abort(f"the file being sent failed: {why}")

