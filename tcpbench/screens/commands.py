"""The workbench's commands: one table for the key bindings, the footer, the palette and help."""

from __future__ import annotations

from typing import NamedTuple


class Command(NamedTuple):
    key: str
    action: str
    label: str
    """Short footer label."""
    title: str
    """Command palette title."""
    help: str
    show: bool = True


COMMANDS = (
    Command("n", "new_listener", "Listen", "New listener",
            "Start a server: pick a service, an address, a port and the service's options"),
    Command("s", "stop_listener", "Stop", "Stop listener",
            "Stop the selected listener and close its connections gracefully", False),
    Command("c", "connect", "Connect", "Connect",
            "Open a client session to HOST:PORT"),
    Command("x", "close_session", "Close", "Close connection",
            "Close the selected connection gracefully (FIN, then wait for the peer's FIN)"),
    Command("f", "half_close", "FIN", "Half-close (FIN)",
            "Send FIN on the selected connection: we stop sending but keep reading"),
    Command("A", "abort", "RST", "Abort (RST)",
            "Abort the selected connection at once with RST; the peer sees 'connection reset'"),
    Command("d", "details", "Details", "Connection details",
            "Every field of the selected connection (also Enter): addresses, bytes and rates "
            "each way, 60 s sparklines, who closed first, how it ended", False),
    Command("h", "toggle_hex", "Hex", "Toggle hex / text",
            "Show the byte log as a hexdump or as escaped text lines"),
    Command("t", "toggle_timestamps", "Times", "Toggle timestamps",
            "Show or hide the time of every row in the byte log", False),
    Command("u", "toggle_utc", "UTC", "Toggle UTC / local time",
            "Byte log timestamps in UTC or in local time (the default; --utc starts in UTC)", False),
    Command("w", "follow_newest", "Follow", "Follow the newest connection",
            "The byte log shows the newest connection again, not the one picked", False),
    Command("v", "toggle_all", "All", "Show all / selected",
            "Byte log of every connection, or only of the selected one"),
    Command("ctrl+l", "clear_log", "Clear", "Clear the log",
            "Forget the rows in the byte log (counters stay)", False),
    Command("slash", "search", "Search", "Search the log",
            "Find text in the byte log (Enter: next, Ctrl+R: previous, Esc: close)"),
    Command("i", "focus_send", "Type", "Type to send",
            "Move to the send bar: type bytes for the selected connection or listener", False),
    Command("p", "probe", "Probe", "Probe ports",
            "Check which ports of a host accept connections"),
    Command("P", "probe_listener", "Probe this", "Probe this listener",
            "Probe the selected listener's host and port", False),
    Command("W", "timeline", "What?", "What just happened?",
            "A timeline of the selected connection's events, each explained, with the kernel's view", False),
    Command("e", "export", "Export", "Export the record",
            "Save the selected connection (or all) as JSON Lines, a transcript and the raw bytes", False),
    Command("N", "toggle_notes", "Notes", "Show / hide the notes",
            "The scenario's notes panel (tcpbench --scenario)", False),
    Command("question_mark", "help", "Help", "Help", "Keys and what the TCP words mean"),
    Command("f1", "tcp_help", "TCP", "TCP lifecycle",
            "Handshake, data and ACK, FIN, RST and TIME_WAIT, with the selected connection's state", False),
    Command("q", "quit", "Quit", "Quit",
            "Close every connection and listener, then leave (asks first while any is open)"),
)
