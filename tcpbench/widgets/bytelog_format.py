"""Pure helpers of the byte log: records -> row descriptors -> plain text parts.

No Textual here, so the row logic is tested with plain function calls. The
widget (`bytelog.py`) keeps a bounded list of the rows made here and turns only
the rows on screen into strips.

A row is a tuple `(kind, at, session, offset, payload)`:

- kind `rx` / `tx`: `payload` is the raw bytes of one text line (cut at
  `MAX_LINE`) or of one 16-byte hex row; `offset` is the stream offset of
  `payload[0]` in that direction.
- kind `ev`: `payload` is the engine `Event`.
- kind `gap`: `payload` is our own text ("... N bytes not kept").

Raw bytes stay raw until a row is drawn; every peer byte goes through
`tcpbench.safetext` there, so nothing a peer sends reaches the terminal as a
control sequence or is ever parsed as markup.
"""

from __future__ import annotations

import time
from typing import Any

from tcpbench.engine.bytestore import EVENT, Record
from tcpbench.safetext import escape_bytes, escape_note, escape_text, hexdump_row

MAX_LINE = 4096
"""Raw bytes per text row at most: a 1 MiB line without LF must not become one 4 MiB strip."""

HEX_WIDTH = 16
SAME_MOMENT = 0.5
"""Chunks in one direction more than this many seconds apart are separate moments: a hex
row takes the next chunk only within it (the row shows one time, and keystrokes seconds
apart in telnet's character mode are separate), and so does a step of the W timeline.
Text rows join whatever the gap: a line is read as a line."""
HEX_WIDTHS = (16, 8, 4)
"""Bytes per hex row the byte log picks from, widest first, so a row fits the view."""


def hex_row_length(width: int) -> int:
    """Characters of a hex row body of `width` bytes (see `safetext.hexdump_row`)."""
    return 4 * width + 13


def fit_hex_width(available: int, prefix: int) -> int:
    """The widest of `HEX_WIDTHS` whose rows (after a `prefix`) fit `available` cells."""
    for width in HEX_WIDTHS:
        if prefix + hex_row_length(width) <= available:
            return width
    return HEX_WIDTHS[-1]

GAP = "gap"
TEXT = "text"
HEX = "hex"

Row = tuple[str, float, int, int, Any]

MARKERS = {"rx": "<", "tx": ">", EVENT: "*", GAP: "~"}
"""`<` received from the peer, `>` sent by us, `*` a lifecycle event, `~` a gap."""


def record_rows(record: Record, mode: str, start: int = 0, hex_width: int = HEX_WIDTH) -> list[Row]:
    """The rows of one store record, from byte `start` of its data.

    Text mode splits on LF (the LF stays with its line, shown as `\\n`) and cuts
    lines longer than `MAX_LINE`; a record never shares a row with another, so a
    line split across two TCP reads shows as two rows (the missing `\\n` at the
    end of the first tells the reader). Hex mode makes 16-byte rows whose
    offsets are stream offsets, as a hexdump of the whole direction would.
    """
    kind = record.direction
    at = record.at
    session = record.session
    if kind == EVENT:
        return [(EVENT, at, session, 0, record.event)]
    data = record.data
    base = record.offset
    size = len(data)
    rows: list[Row] = []
    append = rows.append
    if mode == HEX:
        for i in range(start, size, hex_width):
            append((kind, at, session, base + i, data[i:i + hex_width]))
        return rows
    find = data.find
    i = start
    while i < size:
        end = find(b"\n", i, i + MAX_LINE)
        end = min(size, i + MAX_LINE) if end == -1 else end + 1
        append((kind, at, session, base + i, data[i:end]))
        i = end
    return rows


def continue_row(prev: Row, record: Record, mode: str,
                 hex_width: int = HEX_WIDTH) -> tuple[Row, int] | None:
    """Complete `prev` with the start of `record` when the record continues it.

    TCP has no message boundaries: one line often arrives in two reads. When
    `record` carries the very next bytes of `prev`'s session and direction and
    `prev` is unfinished (no LF yet in text mode, under 16 bytes in hex mode and
    within `SAME_MOMENT` of it),
    returns the completed row and how many bytes of `record` it took; the rest
    is `record_rows(record, mode, start=taken)`. Otherwise None.
    """
    kind, at, session, offset, payload = prev
    if kind != record.direction or session != record.session or kind not in ("rx", "tx"):
        return None
    if offset + len(payload) != record.offset:
        return None
    data = record.data
    if mode == HEX:
        room = hex_width - len(payload)
        if room <= 0 or record.at - at > SAME_MOMENT:
            return None
        take = min(room, len(data))
    else:
        room = MAX_LINE - len(payload)
        if room <= 0 or payload.endswith(b"\n"):
            return None
        end = data.find(b"\n", 0, room)
        take = end + 1 if end != -1 else min(room, len(data))
    return (kind, at, session, offset, payload + data[:take]), take


def gap_row(at: float, session: int, direction: str, nbytes: int) -> Row:
    what = "received" if direction == "rx" else "sent"
    text = f"... {nbytes:,} {what} bytes not kept for display (the counters have every byte)"
    return (GAP, at, session, 0, text)


def format_clock(wall: float, utc: bool = True) -> str:
    """`HH:MM:SS.mmm`, in UTC (the same on every machine) or in local time, as `serve` prints:
    milliseconds cut, not rounded, as `serve` and the exported transcript cut them, so the
    three show one event at the same time."""
    milli = int(wall * 1000)
    seconds = milli // 1000
    parts = time.gmtime(seconds) if utc else time.localtime(seconds)
    return time.strftime("%H:%M:%S", parts) + f".{milli - seconds * 1000:03d}"


def row_tag(row: Row) -> str:
    """Whose row it is: `#12` for a connection, `L3` for a listener-wide note (session 0)."""
    session = row[2]
    if session:
        return f"#{session}"
    listener = getattr(row[4], "listener", None)
    return f"L{listener}" if listener is not None else "-"


def row_body(row: Row, mode: str, hex_width: int = HEX_WIDTH) -> str:
    """The printable-ASCII body of a row (no prefix)."""
    kind, _at, _session, offset, payload = row
    if kind == EVENT:
        return event_text(payload)
    if kind == GAP:
        return payload
    if mode == HEX:
        return hexdump_row(offset, payload, hex_width)
    return escape_bytes(payload)


def event_text(event: Any) -> str:
    """One line for an event: its kind and what it means in TCP terms."""
    # Here, not at the top: the byte log is imported before the first frame and the
    # event classes are not; an event to format means the engine is loaded anyway.
    from tcpbench.engine.events import ServiceNoted

    if isinstance(event, ServiceNoted):
        # Service notes can carry peer-controlled text (a chat nick, an HTTP path).
        return f"-- {escape_text(event.topic)}: {escape_note(event.text)}"
    # explain() names what happened itself ("peer sent FIN: ..."); the kind is the fallback.
    explained = event.explain()
    return escape_text(f"-- {explained}" if explained else f"-- {event.kind}")


def row_parts(row: Row, mode: str, *, timestamps: bool, show_session: bool,
              wall_offset: float, utc: bool = True,
              hex_width: int = HEX_WIDTH) -> list[tuple[str, str]]:
    """The row as `(text, role)` parts; roles name the widget's component classes.

    Roles: `timestamp`, `session`, and the row kind (`rx`, `tx`, `ev`, `gap`).
    """
    kind, at, _session, _offset, _payload = row
    parts: list[tuple[str, str]] = []
    if timestamps:
        parts.append((format_clock(at + wall_offset, utc) + " ", "timestamp"))
    if show_session:
        parts.append((f"{row_tag(row):<5} ", "session"))
    parts.append((MARKERS[kind] + " " + row_body(row, mode, hex_width), kind))
    return parts


def prefix_width(timestamps: bool, show_session: bool, session_width: int = 6) -> int:
    """Cells taken before the body (used to estimate the virtual width)."""
    return (13 if timestamps else 0) + (session_width if show_session else 0) + 2
