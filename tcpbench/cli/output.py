"""Event lines for the headless commands: for people by default, JSON Lines with --json.

Every byte a peer controls is escaped to printable ASCII before it is written
(`tcpbench.safetext`), so a peer cannot drive the operator's terminal.

The printer is on the hot path of `serve` (a line per chunk each way, a line per
connection), so it is built for throughput: lines are collected and written with
one `write` and one `flush` at most every `FLUSH_SECONDS` (sooner, in slices of
`SLICE_LINES`, when they come fast), the clock label is formatted once per second,
and lines are formatted lazily: a byte event leaves its fields and at most `PREVIEW`
bytes in the pending list, a note or a connection's own event leaves itself, and the
flush formats the batch (a byte line's JSON assembled without a generic `json.dumps`
walk), so the work between a read and the service's answer is one append. Measured
with py-spy on the chat fan-out, per-line flushing and `strftime` were most of the
printer's cost.

On the busy-poll loop (the headless commands' default) the formatting moves out of
the way altogether: the printer registers an idle step with the loop's selector, which
formats a line at a time while it spins with nothing ready, and writes them in
batches. One echo peer with a 32 KiB window went from ~575 to ~630 MiB/s (it used to
wait out the slices); the 20 ms timer and the slices still bound how long a line waits
when the loop is never idle.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from json.encoder import encode_basestring_ascii
from typing import Any, Callable, TextIO

from tcpbench.engine import events as ev
from tcpbench.safetext import escape_bytes, escape_note, escape_text

PREVIEW = 64
HEADLESS_STORE_CAP = 0
"""The headless commands print as they go and nothing scrolls back, so sessions keep
nothing for display (see `ByteStore`)."""
HEADLESS_ENDED_KEPT = 64
"""Nor is there a table of ended connections to show, so few are kept (the UI keeps 2,000)."""
FLUSH_SECONDS = 0.02
"""Lines wait at most this long (a person cannot tell 20 ms; a firehose gets one write
per 20 ms instead of one per chunk, which measured as much as a third of the printer)."""
SLICE_LINES = 256
"""Once this many lines wait, they are written at the next turn of the loop instead of at
the 20 ms mark: formatting is most of a flush's cost (~1.5 us a line), and 20 ms of a
busy server's lines (2,000 at 32,000 HTTP requests/s) held every connection up for 3 ms
at once, which was the whole p99 gap to the bare asyncio + h11 server. Slices of 256 cost
under 0.5 ms each and take their turn after the connections that were already ready."""
IDLE_LINES = 1
"""Lines formatted per idle step (`BusyPollSelector.add_idle`): ~1.5 us, so a peer whose
bytes arrive during a step waits at most about that long for them to be read. On a 32 KiB
echo window (`echo_ab.py`, 8 rounds) 1 line a step made 1.04x what 4 did; 16 (~25 us a
step) gained nothing over the slices."""
IDLE_WRITE_LINES = 128
"""Formatted lines written in one idle step once this many wait (fewer wait for the flush):
one write of ~13 KiB, a few microseconds to a file; a slow terminal makes that step longer."""
MAX_PENDING_LINES = 4096
"""Write out at once, in the middle of a callback, once this many lines wait (a single
callback that emits that many: a chat fan-out), so nothing can hold much."""


class _ClockLabel:
    """`HH:MM:SS.mmm` in local time: `strftime` once per second, the label once per millisecond
    (a burst of chat lines or accepts shares one)."""

    __slots__ = ("_second", "_prefix", "_milli", "_label")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""
        self._milli = -1
        self._label = ""

    def __call__(self, wall: float) -> str:
        milli = int(wall * 1000)
        if milli == self._milli:
            return self._label
        second = milli // 1000
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%H:%M:%S", time.localtime(second))
        self._milli = milli
        self._label = label = f"{self._prefix}.{milli - second * 1000:03d}"
        return label


class EventPrinter:
    """Turns engine events into lines on `stream`; cheap enough to subscribe directly.

    Lines are buffered for up to `FLUSH_SECONDS`, or until the loop's next turn once
    `SLICE_LINES` wait; call `flush()` before exiting. Outside a
    running loop, or with `buffered=False`, every line is written at once.
    """

    def __init__(self, *, json_lines: bool = False, stream: TextIO | None = None,
                 show_data: bool = True, preview: int | None = PREVIEW,
                 wall_clock: Callable[[], float] = time.time, buffered: bool = True) -> None:
        self.json_lines = json_lines
        self.stream = stream or sys.stdout
        self.show_data = show_data
        self.preview = preview
        """Bytes of each chunk shown; None shows all (raw: the operator reads everything)."""
        self.wall_clock = wall_clock
        self._mono_to_wall = wall_clock() - time.monotonic()
        self._label = _ClockLabel()
        self._previewed: bytes | None = None
        self._preview_text = ""
        self._last_size = -1
        self._last_shown: bytes | None = None
        self._pending: list[str | tuple | ev.Event] = []
        """Lines to write: a str, or a byte event's fields, or an event, formatted at `flush`
        or in an idle step."""
        self._ready: list[str] = []
        """Lines formatted in the loop's idle moments, written before `_pending`'s."""
        self._idle_loop: asyncio.AbstractEventLoop | None = None
        """The loop whose busy-poll selector formats lines while it waits (see `_idle_step`)."""
        self._timer: asyncio.TimerHandle | None = None
        """The flush at the `FLUSH_SECONDS` mark, while one is due."""
        self._slice_due = False
        """A flush at the next turn of the loop is due (`SLICE_LINES` lines wait)."""
        self.buffered = buffered
        """False writes each line at once (connect -v: its lines interleave with the peer's bytes)."""
        self._deferred_bytes = (frozenset((ev.BytesReceived, ev.BytesSent)) if buffered and preview
                                else frozenset())
        """The event classes whose lines wait as fields (the per-chunk path); fixed at
        construction, as `buffered` and `preview` are."""
        self._deferred_events = (frozenset((ev.ServiceNoted, *_LIFECYCLE)) if buffered
                                 else frozenset())
        """The event classes that wait as themselves, to be formatted at the flush: the
        frequent ones with nothing to copy out of them."""

    def __call__(self, event: ev.Event) -> None:
        kind = event.__class__
        if kind in self._deferred_bytes:
            self.take_bytes(kind, event.at, event.session, event.offset, event.data)  # type: ignore[attr-defined]
            return
        entry: str | ev.Event | None
        if kind in self._deferred_events:
            # A chat line, an access line, a connection's own lines: formatted at flush time
            # too, so a burst of 1,000 chat lines is not escaped and labelled before the
            # room's sends go out, nor a connection's opening line before its first read.
            entry = event
        else:
            entry = self.format(event)
            if entry is None:
                return
        pending = self._pending
        pending.append(entry)
        self._arrange_flush(len(pending))

    @property
    def bytes_tap(self) -> Callable[[type, float, int, int, bytes], None] | None:
        """What to subscribe as `bytes_tap` (see `SessionManager.subscribe`) with this printer,
        or None when it writes each bytes line at once (`buffered=False`, a full preview)."""
        return self.take_bytes if self._deferred_bytes else None

    def take_bytes(self, kind: type, at: float, session: int, offset: int, data: bytes) -> None:
        """A chunk of bytes, given as the fields of its `BytesReceived` or `BytesSent` (`kind`):
        the per-chunk path. Keeps the fields and at most `preview` bytes (never the chunk
        itself, which can be 256 KiB) and formats them at flush time, out of the path
        between a read and the service's answer, all in one batch. Only for a printer
        whose `bytes_tap` is not None."""
        size = len(data)
        shown = None
        if self.show_data:
            shown = data[:self.preview]  # the chunk itself if it is no longer than that
            if shown == self._last_shown and size == self._last_size:
                # The same preview as the line before (echo, relay: the chunk received
                # is the chunk sent): share the object, so the flush escapes it once.
                # Compared by value, not identity: keeping a reference to the chunk
                # itself cost more (freeing it late) than comparing 64 bytes.
                shown = self._last_shown
            else:
                self._last_size = size
                self._last_shown = shown
        pending = self._pending
        pending.append((kind, at, session, offset, size, shown))
        if self._timer is None or len(pending) >= SLICE_LINES:
            self._arrange_flush(len(pending))
        # else a flush is due already: the usual case, nothing to arrange

    def _arrange_flush(self, waiting: int) -> None:
        """`waiting` lines are pending: write them now, or see that a flush is due."""
        if waiting >= MAX_PENDING_LINES or not self.buffered:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop: nobody would flush later
                self.flush()
                return
            self._timer = loop.call_later(FLUSH_SECONDS, self._flush_on_time)
            if loop is not self._idle_loop:
                self._use_idle_moments(loop)
        elif waiting >= SLICE_LINES and not self._slice_due:
            self._slice_due = True
            asyncio.get_running_loop().call_soon(self._flush_slice)

    def _use_idle_moments(self, loop: asyncio.AbstractEventLoop) -> None:
        # On the busy-poll loop, format lines while the loop spins with nothing ready,
        # instead of in a slice between a read and the next: a peer that waits for its
        # echo (a 32 KiB window) lost ~10% of its rate to slices it had to wait out.
        self._idle_loop = loop
        add_idle = getattr(getattr(loop, "poller", None), "add_idle", None)
        if add_idle is not None:
            add_idle(self._idle_step)

    def _idle_step(self) -> None:
        """Format up to `IDLE_LINES` pending lines; write the formatted ones once
        `IDLE_WRITE_LINES` are ready."""
        pending = self._pending
        if not pending:
            return
        lines = self._format_entries(pending[:IDLE_LINES])
        del pending[:IDLE_LINES]  # only once formatted: an error here loses nothing
        self._ready.extend(lines)
        if len(self._ready) >= IDLE_WRITE_LINES:
            self._write_ready()

    def _flush_on_time(self) -> None:
        self._timer = None
        self.flush()

    def _flush_slice(self) -> None:
        self._slice_due = False
        self.flush()

    def flush(self) -> None:
        """Write every pending line now."""
        pending = self._pending
        if pending:
            self._ready.extend(self._format_entries(pending))
            pending.clear()
        if self._ready:
            self._write_ready()

    def _format_entries(self, entries: list) -> list[str]:
        note = self.format
        if self.json_lines:
            deferred = self._deferred_line
            return [entry if entry.__class__ is str
                    else deferred(*entry) if entry.__class__ is tuple
                    else note(entry)
                    for entry in entries]
        # `_deferred_line`'s text form, inlined: a firehose's lines are built in this one
        # loop, with the clock label looked up once per millisecond, rather than through
        # two calls each (a batch of random-binary echo lines: 1.09 -> 0.82 us a line, the
        # faster `_escape_binary` included).
        lines: list[str] = []
        append = lines.append
        received = ev.BytesReceived
        to_wall = self._mono_to_wall
        clock_label = self._label
        milli = -1
        label = ""
        previewed = self._previewed
        preview = self._preview_text
        for entry in entries:
            cls = entry.__class__
            if cls is tuple:
                kind, at, session, _offset, size, shown = entry
                wall = at + to_wall
                if int(wall * 1000) != milli:
                    milli = int(wall * 1000)
                    label = clock_label(wall)
                if shown is not previewed:  # else the same chunk both ways (echo): escaped once
                    if shown is None:
                        preview = ""
                    elif size > len(shown):
                        preview = f' "{escape_bytes(shown)}"...'
                    else:
                        preview = f' "{escape_bytes(shown)}"'
                    previewed = shown
                append(f"{label} #{session} {'<' if kind is received else '>'} {size} bytes{preview}")
            elif cls is str:
                append(entry)
            else:
                append(note(entry))  # type: ignore[arg-type]
        self._previewed = previewed
        self._preview_text = preview
        return lines

    def _write_ready(self) -> None:
        lines = self._ready
        lines.append("")
        text = "\n".join(lines)
        lines.clear()
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError):
            pass

    def format(self, event: ev.Event) -> str | None:
        kind = type(event)
        describe = _LIFECYCLE.get(kind)
        if describe is not None and not self.json_lines:
            return f"{self._label(event.at + self._mono_to_wall)} {describe(event)}"
        if kind is ev.BytesReceived or kind is ev.BytesSent:
            return self._format_bytes(event)  # type: ignore[arg-type]
        if kind is ev.ServiceNoted and not self.json_lines:  # chat and access lines: many
            who = f"#{event.session} " if event.session is not None else ""  # type: ignore[attr-defined]
            return (f"{self._label(event.at + self._mono_to_wall)} {who}{event.topic}: "  # type: ignore[attr-defined]
                    f"{escape_note(event.text)}")  # type: ignore[attr-defined]
        if kind is ev.ListenerStarted:
            return None  # the command prints "listening on ..." itself
        if self.json_lines:
            data = event.to_dict()
            data["at"] = round(event.at + self._mono_to_wall, 6)
            return json.dumps(_json_safe(data), ensure_ascii=True)
        return f"{self._label(event.at + self._mono_to_wall)} {self.describe(event)}"

    def _format_bytes(self, event: ev.BytesReceived | ev.BytesSent) -> str:
        data = event.data
        shown = (data[:self.preview] if self.preview else data) if self.show_data else None
        return self._deferred_line(type(event), event.at, event.session, event.offset, len(data),
                                   shown)

    def _deferred_line(self, kind: Any, at: float, session: int, offset: int, size: int,
                       shown: bytes | None) -> str:
        """A byte event's line from its fields; `shown` is the previewed prefix (None: no data)."""
        if self.json_lines:
            # Exactly what json.dumps(event.to_dict() + data) writes, without the generic walk.
            wall = round(at + self._mono_to_wall, 6)
            line = (f'{{"event": "{kind.kind}", "at": {wall!r}, "session": {session}, '
                    f'"offset": {offset}, "size": {size}')
            if shown is None:
                return line + "}"
            data = encode_basestring_ascii(escape_bytes(shown))
            if size > len(shown):  # a script must not take the preview for the whole chunk
                return f'{line}, "data": {data}, "data_truncated": true}}'
            return f'{line}, "data": {data}}}'
        arrow = "<" if kind is ev.BytesReceived else ">"
        if shown is None:
            preview = ""
        elif shown is self._previewed:
            preview = self._preview_text  # the same chunk both ways (echo): escaped once
        else:
            escaped = escape_bytes(shown)
            preview = f' "{escaped}"...' if size > len(shown) else f' "{escaped}"'
            self._previewed = shown
            self._preview_text = preview
        return f"{self._label(at + self._mono_to_wall)} #{session} {arrow} {size} bytes{preview}"

    def describe(self, event: ev.Event) -> str:
        # Every connection's own lines first, by exact type (the events are final classes).
        describe = _LIFECYCLE.get(type(event))
        if describe is not None:
            return describe(event)
        if type(event) is ev.ServiceNoted:  # the most frequent after bytes (chat lines, access lines)
            who = f"#{event.session} " if event.session is not None else ""
            return f"{who}{event.topic}: {escape_note(event.text)}"
        if isinstance(event, ev.BytesReceived):
            return f"#{event.session} < {event.size} bytes{self._preview(event.data)}"
        if isinstance(event, ev.BytesSent):
            return f"#{event.session} > {event.size} bytes{self._preview(event.data)}"
        if isinstance(event, ev.SessionReset):
            return (f"#{event.session} RESET by peer after {event.bytes_in} bytes in, "
                    f"{event.bytes_out} out ({event.explain()})")
        if isinstance(event, ev.SessionAborted):
            return f"#{event.session} aborted by us: {escape_text(event.reason)} (we sent RST)"
        if isinstance(event, ev.SessionTimedOut):
            return f"#{event.session} {event.explain()}"
        if isinstance(event, ev.ConnectFailed):
            return (f"#{event.session} connect to {escape_text(event.host)}:{event.port} failed: "
                    f"{event.reason.replace('_', ' ')} ({escape_text(event.message)})")
        if isinstance(event, ev.ConnectionRefusedByRule):
            return (f"refused {ev.format_address(event.peer)} on listener {event.listener}: "
                    f"{event.reason} ({escape_text(event.detail)}); {event.explain()}")
        if isinstance(event, (ev.TlsNegotiated, ev.TlsHandshakeFailed, ev.TlsBytesCounted)):
            return describe_tls(event)
        if isinstance(event, ev.ListenerStopped):
            connections = event.connections
            return (f"stopped listening on {ev.format_address(event.address)}: {connections} "
                    f"connection{'' if connections == 1 else 's'}, {event.bytes_in} bytes in, "
                    f"{event.bytes_out} bytes out")
        if isinstance(event, ev.ListenerFailed):
            return escape_text(event.message)
        if isinstance(event, ev.ServiceNoted):
            who = f"#{event.session} " if event.session is not None else ""
            return f"{who}{event.topic}: {escape_note(event.text)}"
        return escape_text(event.kind)

    def _preview(self, data: bytes) -> str:
        if not self.show_data:
            return ""
        if data is self._previewed:
            # echo and relay send on the very bytes object they received: escape it once.
            return self._preview_text
        limit = self.preview
        if not limit or len(data) <= limit:
            text = f' "{escape_bytes(data)}"'
        else:
            text = f' "{escape_bytes(data[:limit])}"...'
        self._previewed = data
        self._preview_text = text
        return text


def _describe_opened(event: ev.SessionOpened) -> str:
    if event.listener is None:
        arrow = f"{ev.format_address(event.local)} -> {ev.format_address(event.peer)}"
    else:
        arrow = f"{ev.format_address(event.peer)} -> {ev.format_address(event.local)}"
    return f"#{event.session} opened {arrow} ({event.explain()})"


def _describe_closed(event: ev.SessionClosed) -> str:
    return f"#{event.session} closed by {event.closed_by}, {event.bytes_in} bytes in, {event.bytes_out} out"


_LIFECYCLE: dict[type, Callable[[Any], str]] = {
    # Every connection's lines (a Connection: close HTTP server writes these four per
    # request): looked up by exact type, not down the isinstance chain of `describe`.
    ev.SessionOpened: _describe_opened,
    ev.PeerHalfClosed: lambda event: f"#{event.session} peer FIN ({event.explain()})",
    ev.WeHalfClosed: lambda event: f"#{event.session} our FIN ({event.explain()})",
    ev.SessionClosed: _describe_closed,
}


def describe_tls(event: ev.Event) -> str:
    """Text for the TLS events; every certificate field is escaped (it comes from the peer).

    A negotiated handshake with a certificate takes two lines, as `openssl s_client`
    separates the connection from the certificate."""
    if isinstance(event, ev.TlsNegotiated):
        parts = [escape_text(event.version), f"{escape_text(event.cipher)} ({event.bits} bits)"]
        parts.append(f"ALPN {escape_text(event.alpn)}" if event.alpn else "no ALPN")
        if event.sni:
            parts.append(f"SNI {escape_text(event.sni)}")
        line = f"#{event.session} TLS negotiated: {', '.join(parts)}"
        if not event.subject:
            return line
        names = ", ".join(escape_text(n) for n in event.sans) or "none"
        trust = "verified" if event.verified else "NOT verified (--insecure)"
        return (f"{line}\n#{event.session}   certificate: subject {escape_text(event.subject)}; "
                f"issuer {escape_text(event.issuer)}; names {names}; valid "
                f"{escape_text(event.not_before)} to {escape_text(event.not_after)}; {trust}; "
                f"SHA-256 {escape_text(event.fingerprint)}")
    if isinstance(event, ev.TlsHandshakeFailed):
        who = f"#{event.session} " if event.session is not None else ""
        return (f"{who}TLS handshake with {ev.format_address(event.peer)} failed: "
                f"{escape_text(event.message)}")
    if isinstance(event, ev.TlsBytesCounted):
        wire = ("" if event.wire_in < 0 else
                f"; on the wire (TLS records, handshake): {event.wire_in} in, {event.wire_out} out")
        return f"#{event.session} TLS plaintext: {event.bytes_in} bytes in, {event.bytes_out} out{wire}"
    return escape_text(event.kind)


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        # json.dumps(ensure_ascii=True) writes control characters as \uXXXX.
        return value
    return escape_text(str(value))
