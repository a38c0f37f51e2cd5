"""'What just happened?': one connection's story as a short timeline, every step explained.

The steps come from the session's byte store (the lifecycle events and the
chunks, in order); runs of chunks in one direction, each within `SAME_MOMENT` of
the one before, become one step ("< 3 chunks, 1.2 KiB"), so a firehose does
not bury the FIN. The top line is the
kernel's own view of the connection (`TCP_INFO`), or what became of it after
the close (TIME_WAIT is visible in /proc/net/tcp).

Peer bytes are previewed through `escape_bytes` and shown as plain `Content`.
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Callable, NamedTuple

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from tcpbench.engine import events as ev
from tcpbench.engine.bytestore import EVENT, RECEIVED
from tcpbench.engine.tcpinfo import STATE_MEANINGS, leftover_state, tcp_info
from tcpbench.safetext import escape_bytes, escape_text
from tcpbench.widgets.bytelog_format import SAME_MOMENT

if TYPE_CHECKING:
    from tcpbench.engine.session import Session

MAX_STEPS = 200
PREVIEW = 40
RECEIVED_MEANS = "data from the peer: our kernel ACKed it on arrival, then tcpbench read it"
SENT_MEANS = "our data went out in segments; the peer's kernel ACKs each one it receives"


class Step(NamedTuple):
    seconds: float
    """Since the session opened."""
    mark: str
    """'<' received, '>' sent, '*' a lifecycle event, '!' a note from the service."""
    text: str
    explanation: str


def timeline(session: Session, max_steps: int = MAX_STEPS) -> list[Step]:
    """The steps of a session from what its store holds, oldest first (the newest `max_steps`)."""
    steps: list[Step] = []
    run_dir, run_chunks, run_bytes, run_at, run_head = "", 0, 0, 0.0, b""
    last_at = 0.0

    def end_run() -> None:
        nonlocal run_dir, run_chunks, run_bytes, run_head
        if run_chunks:
            received = run_dir == RECEIVED
            preview = escape_bytes(run_head[:PREVIEW]) + ("..." if run_bytes > PREVIEW else "")
            what = f"{'received' if received else 'sent'} {run_bytes} byte(s)"
            if run_chunks > 1:
                what += f" in {run_chunks} chunks"
            steps.append(Step(run_at - session.opened_at, "<" if received else ">",
                              f"{what}: {preview}", RECEIVED_MEANS if received else SENT_MEANS))
        run_dir, run_chunks, run_bytes, run_head = "", 0, 0, b""

    for record in session.store:
        if record.session != session.id:
            continue
        if record.direction == EVENT:
            end_run()
            event = record.event
            if event is None or isinstance(event, (ev.BytesReceived, ev.BytesSent)):
                continue
            steps.append(_event_step(event, event.at - session.opened_at))
            continue
        if record.direction != run_dir or record.at - last_at > SAME_MOMENT:
            end_run()
            run_dir, run_at = record.direction, record.at
        last_at = record.at
        run_chunks += 1
        run_bytes += len(record.data)
        if len(run_head) < PREVIEW:
            run_head += record.data[:PREVIEW]
    end_run()
    if session.store.dropped_bytes:
        steps.insert(0, Step(0.0, "*", f"(the first {session.store.dropped_bytes} byte(s) are no "
                                       "longer kept)", ""))
    return steps[-max_steps:]


def printable(text: str) -> str:
    """Service notes are escaped by their service already; a control character that slipped
    through still must not reach the terminal."""
    return "".join(ch if ch.isprintable() else escape_text(ch) for ch in text)


def _event_step(event: ev.Event, seconds: float) -> Step:
    if isinstance(event, ev.ServiceNoted):
        return Step(seconds, "!", f"{event.topic}: {printable(event.text)}", "what the service says it did")
    if isinstance(event, ev.SessionOpened):
        return Step(seconds, "*", f"opened ({event.origin})", event.explain())
    label = {"peer_fin": "peer sent FIN", "our_fin": "we sent FIN", "closed": "closed",
             "reset": "reset (RST)", "aborted": "aborted by us (RST)",
             "timed_out": "idle timeout"}.get(event.kind, event.kind)
    return Step(seconds, "*", label, event.explain())


def kernel_view(session: Session) -> str:
    """One line: what the kernel says about this connection now."""
    info = tcp_info(session)
    if info is not None:
        return f"kernel: {info.summary()}: {info.meaning}"
    if not session.local[1]:
        return "kernel: this connection never got a socket"
    found = leftover_state(session.local, session.peer)
    if found is not None:
        return f"kernel: {found.state}: {STATE_MEANINGS.get(found.state, '')}"
    if session.state in ("reset", "aborted"):
        return "kernel: nothing left: after an RST neither side keeps the connection (no TIME_WAIT)"
    return ("kernel: nothing left on our side (the peer closed first, so the TIME_WAIT, if any, "
            "is on its side)" if session.closed_by == "peer" else
            "kernel: nothing left of it (TIME_WAIT lasts 60 s on the side that closed first)")


class TimelineScreen(ModalScreen[None]):
    """A session's timeline; Escape closes it, r reads it again."""

    DEFAULT_CSS = """
    TimelineScreen #timeline {
        width: 120;
        max-width: 98%;
        height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    TimelineScreen #timeline-title {
        text-style: bold;
        color: $text-accent;
    }
    TimelineScreen #timeline-steps {
        height: 1fr;
    }
    """

    BINDINGS = [Binding("escape,q,w", "dismiss", "Close", id="timeline.close"),
                Binding("r", "refresh_timeline", "Refresh", id="timeline.refresh",
                        tooltip="Read the session and the kernel again")]

    def __init__(self, session: Session, address_formatter: Callable[[tuple[str, int]], str]) -> None:
        super().__init__()
        self.session = session
        self.address_formatter = address_formatter

    def compose(self) -> ComposeResult:
        with Vertical(id="timeline"):
            yield Static("", id="timeline-title", markup=False)
            yield Static("", id="timeline-kernel", classes="dim", markup=False)
            with VerticalScroll(id="timeline-steps"):
                yield Static("", id="timeline-text", markup=False)
            yield Static("r: refresh   Esc: close", classes="dim", markup=False)

    def on_mount(self) -> None:
        self.action_refresh_timeline()

    def action_refresh_timeline(self) -> None:
        session = self.session
        fmt = self.address_formatter
        self.query_one("#timeline-title", Static).update(Content(
            f"What just happened on #{session.id}: {fmt(session.local)} <-> {fmt(session.peer)} "
            f"({session.origin}), now {session.state}"))
        self.query_one("#timeline-kernel", Static).update(Content(kernel_view(session)))
        # Explanations wrap under their step, indented, instead of back to the left edge.
        width = max(40, min(120, self.size.width - 2) - 6)
        lines = []
        for step in timeline(session):
            lines.append(f"{step.seconds:+9.3f}s {step.mark} {step.text}")
            if step.explanation:
                lines.extend(textwrap.wrap(step.explanation, width, initial_indent=" " * 13,
                                           subsequent_indent=" " * 13))
        self.query_one("#timeline-text", Static).update(Content("\n".join(lines) or "(nothing yet)"))
