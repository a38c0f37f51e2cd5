"""The record of a session: JSON Lines of its events, a transcript and the raw bytes each way.

For every session, five files in one directory:

- `session-N.jsonl`: one JSON object per event, in order; bytes events carry
  `offset`, `size` and `data_b64` (the bytes, base64), every line a wall-clock
  `time` (seconds since the epoch) beside the engine's monotonic `at`;
- `session-N.txt`: a transcript for people: `HH:MM:SS.mmm < text` for what the
  peer sent, `>` for what we sent, `*` for a lifecycle event and its
  explanation; bytes escaped by `tcpbench.safetext` (a line per LF);
- `session-N.rx.bin` and `session-N.tx.bin`: exactly the bytes received from
  and sent to the peer, so `cmp` against what a client kept works;
- `session-N.pcap`: the session as TCP/IP packets for Wireshark, synthesised
  from the events (see `tcpbench.engine.pcap`: a model of the wire, not a capture).

Events that belong to no session (listeners started and stopped, a service's
room-wide notes) go to `listeners.jsonl`.

`Recorder` is an engine subscriber that writes as events come: the headless
`serve` keeps no bytes in its store, so the record cannot be read back from it.
It buffers per session and writes when a session has `flush_bytes` pending,
when everything pending passes `max_pending`, when a session ends, and on
`close()`; files are opened for each write and closed again, so ten thousand
sessions never hold ten thousand descriptors. Memory is bounded by `max_pending`
plus one chunk.

`export_sessions` writes the same files for sessions the UI still holds, from
their byte stores (which keep the most recent bytes only: a session whose
store dropped bytes says so in its first lines).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from tcpbench.engine import events as ev
from tcpbench.engine.bytestore import EVENT, RECEIVED, SENT
from tcpbench.engine.pcap import PCAP_HEADER, SessionPcap
from tcpbench.safetext import escape_note, escape_text, text_lines

if TYPE_CHECKING:
    from tcpbench.engine.session import Session

log = logging.getLogger("tcpbench.engine")

FLUSH_BYTES = 256 * 1024
MAX_PENDING = 8 * 1024 * 1024


class RecordError(OSError):
    """The record directory cannot be used (not empty, not writable); one line."""


def prepare_directory(directory: str | os.PathLike[str]) -> Path:
    """Make `directory` (and its parents) or accept it empty.

    Errors: `RecordError` when it holds files already (a record must never mix
    with an older one: session numbers restart every run) or cannot be made.
    """
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if any(path.iterdir()):
            raise RecordError(f"{path} is not empty; record into a new or empty directory")
    except RecordError:
        raise
    except OSError as exc:
        raise RecordError(f"cannot record into {path}: {exc.strerror or exc}") from None
    return path


class _Pending:
    __slots__ = ("jsonl", "txt", "rx", "tx", "pcap", "size")

    def __init__(self) -> None:
        self.jsonl: list[str] = []
        self.txt: list[str] = []
        self.rx: list[bytes] = []
        self.tx: list[bytes] = []
        self.pcap: list[bytes] = []
        self.size = 0


class Recorder:
    """Subscribe it (`manager.subscribe(recorder)`) and `close()` it at the end.

    Resource handling: holds no open file between writes; `close()` writes what
    is pending. After a write fails (disk full, directory removed) it stops
    recording, keeps the reason in `error`, and never raises into the engine.
    """

    def __init__(self, directory: str | os.PathLike[str], *, sessions: Iterable[int] | None = None,
                 flush_bytes: int = FLUSH_BYTES, max_pending: int = MAX_PENDING,
                 wall_offset: float | None = None) -> None:
        self.directory = Path(directory)
        self.only = None if sessions is None else set(sessions)
        self.flush_bytes = flush_bytes
        self.max_pending = max_pending
        self.wall_offset = time.time() - time.monotonic() if wall_offset is None else wall_offset
        """Added to an event's monotonic `at` to get wall-clock time."""
        self.error: str | None = None
        self.sessions_seen: set[int] = set()
        self._pending: dict[int | None, _Pending] = {}
        self._pending_total = 0
        self._pcaps: dict[int, SessionPcap] = {}

    def __call__(self, event: ev.Event) -> None:
        if self.error is not None:
            return
        session = getattr(event, "session", None)
        if self.only is not None and session not in self.only:
            return
        if isinstance(event, ev.ConnectFailed):
            session = None  # a failed connect never became a session: nothing to pair it with
        pending = self._pending.get(session)
        if pending is None:
            pending = self._pending[session] = _Pending()
            if session is not None:
                self.sessions_seen.add(session)
        wall = event.at + self.wall_offset
        clock = _clock(wall)
        added = 0
        if isinstance(event, (ev.BytesReceived, ev.BytesSent)):
            received = isinstance(event, ev.BytesReceived)
            data = event.data
            line = (f'{{"event": "{event.kind}", "time": {wall:.6f}, "at": {event.at:.6f}, '
                    f'"session": {event.session}, "offset": {event.offset}, "size": {len(data)}, '
                    f'"data_b64": "{base64.b64encode(data).decode("ascii")}"}}\n')
            (pending.rx if received else pending.tx).append(data)
            mark = "<" if received else ">"
            text = "".join(f"{clock} {mark} {piece}\n" for piece in text_lines(data))
            added = len(line) + len(text) + len(data)
        else:
            fields = event.to_dict()
            fields["time"] = round(wall, 6)
            line = json.dumps(fields, default=str) + "\n"
            text = f"{clock} * {_describe(event)}\n" if session is not None else ""
            added = len(line) + len(text)
        pending.jsonl.append(line)
        if text:
            pending.txt.append(text)
        if session is not None:
            pcap = self._pcaps.get(session)
            if pcap is None and isinstance(event, ev.SessionOpened):
                pcap = self._pcaps[session] = SessionPcap(session)
                pending.pcap.append(PCAP_HEADER)
            if pcap is not None:
                packets = pcap.feed(event, wall)
                pending.pcap.append(packets)
                added += len(packets)
        pending.size += added
        self._pending_total += added
        if isinstance(event, ev.TERMINAL_EVENTS):
            self._pcaps.pop(session, None)  # type: ignore[arg-type]
            self._flush(session)
        elif pending.size >= self.flush_bytes:
            self._flush(session)
        elif self._pending_total >= self.max_pending:
            self.flush()

    def note(self, session: int, text: str) -> None:
        """Put a line of our own at this point of a session's transcript and JSON Lines."""
        pending = self._pending.setdefault(session, _Pending())
        self.sessions_seen.add(session)
        pending.jsonl.append(json.dumps({"event": "record_note", "session": session, "text": text}) + "\n")
        pending.txt.append(f"# {escape_text(text)}\n")

    def flush(self) -> None:
        """Write everything pending."""
        for session in list(self._pending):
            self._flush(session)

    def close(self) -> None:
        self.flush()

    def files(self, session: int) -> dict[str, Path]:
        """The five files of a session (they exist once something was written)."""
        stem = self.directory / f"session-{session}"
        return {"jsonl": stem.with_suffix(".jsonl"), "txt": stem.with_suffix(".txt"),
                "rx": stem.with_suffix(".rx.bin"), "tx": stem.with_suffix(".tx.bin"),
                "pcap": stem.with_suffix(".pcap")}

    def _flush(self, session: int | None) -> None:
        pending = self._pending.pop(session, None)
        if pending is None or self.error is not None:
            return
        self._pending_total -= pending.size
        try:
            if session is None:
                _append(self.directory / "listeners.jsonl", "".join(pending.jsonl).encode())
                return
            files = self.files(session)
            _append(files["jsonl"], "".join(pending.jsonl).encode())
            _append(files["txt"], "".join(pending.txt).encode())
            _append(files["rx"], b"".join(pending.rx))
            _append(files["tx"], b"".join(pending.tx))
            if pending.pcap:
                _append(files["pcap"], b"".join(pending.pcap))
        except OSError as exc:
            self.error = f"recording into {self.directory} stopped: {exc.strerror or exc}"
            self._pending.clear()
            self._pending_total = 0
            log.error("%s", self.error)


def export_sessions(sessions: Iterable[Session], directory: str | os.PathLike[str]) -> list[int]:
    """Write the record of `sessions` from what their byte stores still hold; returns the ids.

    Errors: `RecordError` (see `prepare_directory`, or a write failed).
    """
    path = prepare_directory(directory)
    recorder = Recorder(path)
    written = []
    for session in sessions:
        store = session.store
        if store.dropped_bytes:
            recorder.note(session.id, f"the first {store.dropped_bytes} byte(s) of this session "
                                      "were no longer kept when it was exported; what follows is the rest")
        for record in store:
            if record.session != session.id:
                continue
            if record.direction == EVENT and record.event is not None:
                recorder(record.event)
            elif record.direction == RECEIVED:
                recorder(ev.BytesReceived(record.at, session.id, record.offset, record.data))
            elif record.direction == SENT:
                recorder(ev.BytesSent(record.at, session.id, record.offset, record.data))
        recorder.sessions_seen.add(session.id)
        written.append(session.id)
    recorder.close()
    if recorder.error is not None:
        raise RecordError(recorder.error)
    return written


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as out:
        out.write(data)


def _clock(wall: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall * 1000) % 1000:03d}"


def _describe(event: ev.Event) -> str:
    if isinstance(event, ev.SessionOpened):
        return (f"session {event.session} opened, {ev.format_address(event.local)} <-> "
                f"{ev.format_address(event.peer)} ({event.origin}): {event.explain()}")
    if isinstance(event, ev.ServiceNoted):
        return f"{event.topic}: {escape_note(event.text)}"
    return escape_text(event.explain() or event.kind)
