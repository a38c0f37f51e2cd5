"""The help screen: every key, and what the TCP words on screen mean."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

GLOSSARY = """\
What the states mean
  open                 both sides may send.
  half-closed by peer  the peer sent FIN: it sends nothing more but still reads; you may keep sending.
  half-closed by us    we sent FIN (f): we send nothing more but still read what the peer sends.
  closing              both FINs are on their way; the socket closes in a moment.
  closed               an orderly close: both sides sent FIN, no data was lost.
  reset                the peer sent RST: the connection died at once, in-flight data was dropped.
  aborted              we sent RST (a): the peer sees 'connection reset'.

In the byte log: '<' is what the peer sent us, '>' what we sent, '*' a lifecycle event.
Bytes that are not printable ASCII show as \\n \\r \\t \\e \\0 \\\\ or \\xNN, so nothing a peer
sends can change your terminal. In the send bar you can type the same escapes.

Listening on 127.0.0.1 or ::1 reaches this machine only; 0.0.0.0 or :: opens the port
to the network. Port 0 lets the system pick a free port.
"""


def key_lines() -> str:
    from tcpbench.screens.main import COMMANDS

    lines = ["Keys (also in the command palette: Ctrl+P)"]
    for command in COMMANDS:
        keys = command.key.replace("question_mark", "?").replace("slash", "/")
        lines.append(f"  {keys:<18} {command.title}: {command.help}")
    lines.append(f"  {'tab / shift+tab':<18} move between the panes")
    lines.append(f"  {'escape':<18} close a dialog, the search or this help")
    return "\n".join(lines)


class HelpScreen(ModalScreen[None]):
    """Keys and a small TCP glossary; any of Esc, q, ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close", id="help.close",
                        tooltip="Back to the workbench")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            yield Static("tcpbench help", classes="dialog-title", markup=False)
            yield Static(key_lines(), markup=False)
            yield Static(GLOSSARY, markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
