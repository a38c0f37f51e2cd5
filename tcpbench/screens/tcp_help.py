"""F1: the TCP lifecycle on one screen, tied to the states the class sees in the tables.

Each stage names what tcpbench shows (the Connections table's state, the byte
log's `--` lines) and the kernel's state for it, as `ss -tan` would print it.
When a connection is selected, the top says where it is now, from `TCP_INFO`;
the bottom counts the sockets the kernel holds in TIME_WAIT on our listeners'
ports (they outlive every socket of ours, so only /proc/net/tcp shows them).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from tcpbench.engine.tcpinfo import STATE_MEANINGS, kernel_sockets, leftover_state, tcp_info

if TYPE_CHECKING:
    from tcpbench.engine.manager import SessionManager

STAGES = (
    ("Handshake", "SYN_SENT -> SYN_RECV -> ESTABLISHED",
     "The client sends SYN, the server answers SYN-ACK, the client ACKs. The kernel does all "
     "three before the program even calls accept(): that is 'accepted' / 'connected' in the "
     "log, and the row appears as 'open'. No answer to the SYN at all: 'timed out' (DROP). "
     "RST instead of SYN-ACK: 'refused' (nothing listens, or REJECT)."),
    ("Data and ACK", "ESTABLISHED",
     "Bytes go out in segments ('>' in the log); the receiving kernel acknowledges them (ACK) "
     "as they arrive, before the program reads them ('<'). Unacknowledged data is sent again "
     "after a timeout: the RTT below is how long an ACK takes to come back."),
    ("FIN from the peer", "CLOSE_WAIT on our side",
     "'peer sent FIN' / row 'half-closed by peer': the peer will send no more (nc: Ctrl-D), "
     "but it still reads. We may keep sending; the kernel waits for our close."),
    ("FIN from us", "FIN_WAIT1 -> FIN_WAIT2 on our side",
     "'we sent FIN' (f) / row 'half-closed by us': we send no more, but we keep reading "
     "until the peer sends its FIN too."),
    ("Both FINs", "LAST_ACK or TIME_WAIT",
     "'closed by peer' or 'closed by us': an orderly close, nothing lost. Whoever sent the "
     "first FIN ends in TIME_WAIT."),
    ("RST", "gone at once, on both sides",
     "'reset by peer' or 'aborted by us' (A): the connection dies immediately; data in flight "
     "or unread is thrown away and there is no TIME_WAIT. Closing a socket with unread input "
     "sends RST too: that is how netcat breaks a browser (ERR_CONNECTION_RESET)."),
    ("TIME_WAIT", "TIME_WAIT (60 s on Linux)",
     "After an orderly close, the side that closed first keeps the address pair for 60 s, so "
     "a late segment of the old connection cannot be taken for part of a new one. It is "
     "invisible to programs (the socket is closed) but `ss -tan` and the count below show it."),
)


class TcpHelpScreen(ModalScreen[None]):
    """The TCP lifecycle, with the selected connection's kernel state; Escape closes it."""

    DEFAULT_CSS = """
    TcpHelpScreen #tcp-help {
        width: 110;
        max-width: 98%;
        height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    TcpHelpScreen #tcp-help-title {
        text-style: bold;
        color: $text-accent;
    }
    TcpHelpScreen #tcp-help-live {
        margin-bottom: 1;
        color: $text-warning;
    }
    TcpHelpScreen #tcp-help-body {
        height: 1fr;
    }
    TcpHelpScreen .stage {
        margin-bottom: 1;
    }
    """

    BINDINGS = [Binding("escape,q,f1", "dismiss", "Close", id="tcp_help.close")]

    def __init__(self, manager: SessionManager, session_id: int | None = None) -> None:
        super().__init__()
        self.manager = manager
        self.session_id = session_id

    def compose(self) -> ComposeResult:
        with Vertical(id="tcp-help"):
            yield Static("The TCP lifecycle (F1)", id="tcp-help-title", markup=False)
            yield Static(Content(self.live_line()), id="tcp-help-live", markup=False)
            with VerticalScroll(id="tcp-help-body"):
                for title, kernel, text in STAGES:
                    yield Static(Content.assemble((title, "bold"), f"   kernel: {kernel}\n", text),
                                 classes="stage", markup=False)
                yield Static(Content(self.time_wait_line()), id="tcp-help-timewait", markup=False)
            yield Static("Esc: close   W on a row: what just happened?", classes="dim", markup=False)

    def live_line(self) -> str:
        """Where the selected connection is now, in tcpbench's words and the kernel's."""
        if self.session_id is None or self.session_id not in self.manager.history:
            return "Select a connection (in the Connections table) to see its state here."
        session = self.manager.history[self.session_id]
        info = tcp_info(session)
        if info is not None:
            kernel = f"the kernel says {info.summary()}: {info.meaning}"
        elif (left := leftover_state(session.local, session.peer)) is not None:
            # Closed for tcpbench, not yet for the kernel: the lesson's TIME_WAIT, live.
            kernel = (f"we hold no socket for it any more, but the kernel still keeps it in "
                      f"{left.state}: {STATE_MEANINGS.get(left.state, '')}")
        else:
            kernel = "the kernel holds no socket of ours for it any more"
        return f"Connection #{session.id} is {session.state}; {kernel}."

    def time_wait_line(self) -> str:
        ports = sorted({listener.port for listener in self.manager.listeners.values()})
        if not ports:
            return "TIME_WAIT now: no listener open."
        counts: Counter[str] = Counter()
        listening: set[tuple[str, int]] = set()
        queues = 0
        for port in ports:
            for found in kernel_sockets(port):
                if found.state == "LISTEN":
                    # A listener's SO_REUSEPORT accept queues are one listener, not several.
                    queues += 1
                    if found.local in listening:
                        continue
                    listening.add(found.local)
                counts[found.state] += 1
        states = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"
        line = f"Kernel sockets on our listeners' ports ({', '.join(map(str, ports))}) now: {states}."
        if queues > len(listening):
            line += (f" (`ss -ltn` shows {queues} LISTEN lines: a listener spreads its accepts "
                     "over several SO_REUSEPORT queues, as nginx's reuseport does.)")
        return line
