"""The help screen: every key, and what the TCP words on screen mean."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

STATES = (
    ("open", "both sides may send."),
    ("half-closed by peer", "the peer sent FIN: it sends nothing more but still reads; you may keep sending."),
    ("half-closed by us", "we sent FIN (f): we send nothing more but still read what the peer sends."),
    ("closing", "both FINs are on their way; the socket closes in a moment."),
    ("closed by ...", "an orderly close: both sides sent FIN, no data was lost; 'by' says whose FIN came first."),
    ("reset by peer", "the peer sent RST: the connection died at once, in-flight data was dropped."),
    ("aborted by us", "we sent RST (a): the peer sees 'connection reset'."),
)

NOTES = (
    "In the byte log '<' is what the peer sent us, '>' what we sent, '*' a lifecycle event. "
    "Bytes that are not printable ASCII show as \\n \\r \\t \\e \\0 \\\\ or \\xNN, so nothing a "
    "peer sends can change your terminal. The send bar takes the same escapes.\n\n"
    "Listening on 127.0.0.1 or ::1 reaches this machine only; 0.0.0.0 or :: opens the port to "
    "the network. Port 0 lets the system pick a free port."
)


def key_rows() -> list[tuple[str, str]]:
    """(keys, what they do) for every command of the main screen."""
    from tcpbench.screens.commands import COMMANDS

    rows = []
    for command in COMMANDS:
        keys = command.key.replace("question_mark", "?").replace("slash", "/").replace(",", " ")
        rows.append((keys, f"{command.title}: {command.help}"))
    rows.append(("tab", "Move between the panes (shift+tab: back)"))
    rows.append(("escape", "Close a dialog, the search or this help"))
    rows.append(("ctrl+p", "Command palette: every action, searchable"))
    return rows


class HelpScreen(ModalScreen[None]):
    """Keys and a small TCP glossary; any of Esc, q, ? closes it."""

    DEFAULT_CSS = """
    HelpScreen .help-row { height: auto; }
    HelpScreen .help-key { width: 10; color: $text-accent; text-style: bold; }
    HelpScreen .help-text { width: 1fr; }
    HelpScreen .help-state { width: 21; color: $text-accent; }
    HelpScreen .help-heading { text-style: bold; margin: 1 0; }
    HelpScreen .help-notes { margin-top: 1; }
    """

    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close", id="help.close",
                        tooltip="Back to the workbench")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help", classes="dialog"):
            yield Static("tcpbench help", classes="dialog-title", markup=False)
            yield Static("Keys", classes="help-heading", markup=False)
            for keys, text in key_rows():
                with Horizontal(classes="help-row"):
                    yield Static(keys, classes="help-key", markup=False)
                    yield Static(text, classes="help-text", markup=False)
            yield Static("What the states mean", classes="help-heading", markup=False)
            for state, meaning in STATES:
                with Horizontal(classes="help-row"):
                    yield Static(state, classes="help-state", markup=False)
                    yield Static(meaning, classes="help-text", markup=False)
            yield Static(NOTES, classes="help-notes", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
