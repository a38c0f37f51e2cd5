"""The help screen: every key, and what the TCP words on screen mean.

The keys are generated from the bindings of the screen help was opened from,
of its widgets and of the app (`binding_sections`), so they cannot drift.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static

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


def own_bindings(cls: type) -> list[Binding]:
    """The bindings a class has in effect: its own and its bases', a subclass's binding of a
    key replacing the base's (as Textual merges them), comma keys kept together."""
    ordered: list[Binding] = []
    owner: dict[str, int] = {}
    for klass in reversed(cls.__mro__):
        for item in klass.__dict__.get("BINDINGS", ()):
            binding = item if isinstance(item, Binding) else Binding(*item)
            if binding.system and not binding.description:
                continue  # Textual's own hidden helpers (ctrl+c tells how to quit)
            ordered.append(binding)
            for key in binding.key.split(","):
                owner[key.strip()] = len(ordered) - 1
    out = []
    for index, binding in enumerate(ordered):
        keys = [k.strip() for k in binding.key.split(",") if owner.get(k.strip()) == index]
        if keys:
            out.append(dataclasses.replace(binding, key=",".join(keys)))
    return out


def binding_sections(app: App[Any], screen: Screen[Any]) -> list[tuple[str, list[Binding]]]:
    """The keys of `screen`, of each kind of widget on it that declares its own, and of the app.

    Generated from the BINDINGS themselves, so help cannot drift from what the footer
    and the palette offer. Textual's widgets count only where they are the point
    (a table's cursor keys); an Input's editing keys are everyone's.
    """
    sections: list[tuple[str, list[Binding]]] = [(HELP_TITLES.get(type(screen).__name__, "This screen"),
                                                  own_bindings(type(screen)))]
    seen: set[type] = set()
    for widget in screen.walk_children():
        cls = type(widget)
        if cls in seen:
            continue
        seen.add(cls)
        declared = [k for k in cls.__mro__ if "BINDINGS" in k.__dict__ and k.__dict__["BINDINGS"]]
        if any(k.__module__.startswith("tcpbench.") for k in declared) or isinstance(widget, DataTable):
            title = HELP_TITLES.get(cls.__name__, cls.__name__)
            if any(title == existing for existing, _ in sections):
                continue
            sections.append((title, own_bindings(cls)))
    palette = Binding(app.COMMAND_PALETTE_BINDING, "command_palette", "Command palette",
                      tooltip="Every action of this screen, searchable by name")
    sections.append(("Everywhere", own_bindings(type(app)) + [palette]))
    return sections


HELP_TITLES = {"MainScreen": "Workbench", "ByteLogView": "Byte log", "SendBar": "Send bar",
               "LineInput": "Send bar and search", "ConnectionsTable": "Tables",
               "ListenersTable": "Tables"}
"""Section headings by class name; a class not named here is shown by its own name."""


def key_text(app: App[Any], binding: Binding) -> str:
    """The keys of a binding as the footer shows them ('?', 'f1', '^l'), space-separated."""
    if binding.key_display:
        return binding.key_display
    return " ".join(app.get_key_display(Binding(key.strip(), binding.action))
                    for key in binding.key.split(","))


KEY_WIDTH = 16


def keys_content(app: App[Any], bindings: list[Binding]) -> Content:
    """The rows 'keys  what they do' of one section, as Content (never parsed as markup)."""
    parts: list[Any] = []
    for binding in bindings:
        if parts:
            parts.append("\n")
        parts.append((f"{key_text(app, binding):<{KEY_WIDTH}}", "bold $text-accent"))
        parts.append(describe(binding))
    return Content.assemble(*parts)


def describe(binding: Binding) -> str:
    text = binding.description or binding.action.replace("_", " ")
    return f"{text}: {binding.tooltip}" if binding.tooltip else text


class HelpScreen(ModalScreen[None]):
    """Keys and a small TCP glossary; any of Esc, q, ? closes it."""

    DEFAULT_CSS = """
    HelpScreen .help-row { height: auto; }
    HelpScreen .help-text { width: 1fr; }
    HelpScreen .help-state { width: 21; color: $text-accent; }
    HelpScreen .help-heading { text-style: bold; margin: 1 0; }
    HelpScreen .help-notes { margin-top: 1; }
    """

    BINDINGS = [Binding("escape,q,question_mark,f1", "close", "Close", id="help.close",
                        tooltip="Back to the workbench")]

    def __init__(self, source: Screen[Any] | None = None) -> None:
        super().__init__()
        self._source = source
        """The screen whose keys are listed (default: the one showing when help was made)."""

    def compose(self) -> ComposeResult:
        source = self._source if self._source is not None else self.app.screen
        with VerticalScroll(id="help", classes="dialog"):
            yield Static("tcpbench help", classes="dialog-title", markup=False)
            for title, bindings in binding_sections(self.app, source):
                yield Static(f"Keys: {title}", classes="help-heading", markup=False)
                # One widget per section, not two per key: help opens at once (~80 keys).
                yield Static(keys_content(self.app, bindings), classes="help-keys")
            yield Static("What the states mean", classes="help-heading", markup=False)
            for state, meaning in STATES:
                with Horizontal(classes="help-row"):
                    yield Static(state, classes="help-state", markup=False)
                    yield Static(meaning, classes="help-text", markup=False)
            yield Static(NOTES, classes="help-notes", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
