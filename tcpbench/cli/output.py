"""Event lines for the headless commands: for people by default, JSON Lines with --json.

Every byte a peer controls is escaped to printable ASCII before it is written
(`tcpbench.safetext`), so a peer cannot drive the operator's terminal.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable, TextIO

from tcpbench.engine import events as ev
from tcpbench.safetext import escape_bytes, escape_text

PREVIEW = 64


def _clock_label(wall: float) -> str:
    t = time.localtime(wall)
    return time.strftime("%H:%M:%S", t) + f".{int((wall % 1) * 1000):03d}"


class EventPrinter:
    """Turns engine events into lines on `stream`; cheap enough to subscribe directly."""

    def __init__(self, *, json_lines: bool = False, stream: TextIO | None = None,
                 show_data: bool = True, preview: int | None = PREVIEW,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.json_lines = json_lines
        self.stream = stream or sys.stdout
        self.show_data = show_data
        self.preview = preview
        """Bytes of each chunk shown; None shows all (raw: the operator reads everything)."""
        self.wall_clock = wall_clock
        self._mono_to_wall = wall_clock() - time.monotonic()

    def __call__(self, event: ev.Event) -> None:
        line = self.format(event)
        if line is not None:
            try:
                self.stream.write(line + "\n")
                self.stream.flush()
            except (BrokenPipeError, ValueError):
                pass

    def format(self, event: ev.Event) -> str | None:
        if isinstance(event, ev.ListenerStarted):
            return None  # the command prints "listening on ..." itself
        if self.json_lines:
            data = event.to_dict()
            data["at"] = round(event.at + self._mono_to_wall, 6)
            if isinstance(event, (ev.BytesReceived, ev.BytesSent)) and self.show_data:
                data["data"] = escape_bytes(event.data[:self.preview or len(event.data)])
            return json.dumps(_json_safe(data), ensure_ascii=True)
        stamp = _clock_label(event.at + self._mono_to_wall)
        return f"{stamp} {self.describe(event)}"

    def describe(self, event: ev.Event) -> str:
        if isinstance(event, ev.SessionOpened):
            arrow = f"{ev.format_address(event.peer)} -> {ev.format_address(event.local)}"
            if event.listener is None:
                arrow = f"{ev.format_address(event.local)} -> {ev.format_address(event.peer)}"
            return f"#{event.session} opened {arrow} ({event.explain()})"
        if isinstance(event, ev.BytesReceived):
            return f"#{event.session} < {event.size} bytes{self._preview(event.data)}"
        if isinstance(event, ev.BytesSent):
            return f"#{event.session} > {event.size} bytes{self._preview(event.data)}"
        if isinstance(event, ev.PeerHalfClosed):
            return f"#{event.session} peer FIN ({event.explain()})"
        if isinstance(event, ev.WeHalfClosed):
            return f"#{event.session} our FIN ({event.explain()})"
        if isinstance(event, ev.SessionClosed):
            return (f"#{event.session} closed by {event.closed_by}, {event.bytes_in} bytes in, "
                    f"{event.bytes_out} out")
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
        if isinstance(event, ev.ListenerStopped):
            return f"stopped listening on {ev.format_address(event.address)}"
        if isinstance(event, ev.ListenerFailed):
            return escape_text(event.message)
        if isinstance(event, ev.ServiceNoted):
            who = f"#{event.session} " if event.session is not None else ""
            return f"{who}{event.topic}: {escape_text(event.text)}"
        return escape_text(event.kind)

    def _preview(self, data: bytes) -> str:
        if not self.show_data:
            return ""
        limit = self.preview or len(data)
        text = escape_bytes(data[:limit])
        more = "..." if len(data) > limit else ""
        return f' "{text}"{more}'


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        # json.dumps(ensure_ascii=True) writes control characters as \uXXXX.
        return value
    return escape_text(str(value))
