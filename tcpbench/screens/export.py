"""The export dialog (e): write the record of one connection or all of them into a directory.

What is written is what the workbench still holds for each session (its byte
store keeps the most recent 4 MiB); see `tcpbench.engine.recorder` for the
files. The directory must be new or empty, so a record never mixes with an
older one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from tcpbench.engine.recorder import RecordError, export_sessions

if TYPE_CHECKING:
    from tcpbench.engine.manager import SessionManager


class ExportDialog(ModalScreen["str | None"]):
    """Ask for a directory; dismiss with a one-line summary of what was written, or None."""

    BINDINGS = [Binding("escape", "dismiss(None)", "Cancel", id="export.cancel")]

    def __init__(self, manager: SessionManager, session_id: int | None,
                 default_directory: str | None = None) -> None:
        super().__init__()
        self.manager = manager
        self.session_id = session_id
        self.default_directory = default_directory or time.strftime("tcpbench-record-%Y%m%d-%H%M%S")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="export"):
            yield Static("Export the record", classes="dialog-title", markup=False)
            yield Static("JSON Lines of the events (bytes in base64), a transcript and the raw "
                         "bytes of each direction and a pcap for Wireshark, per connection.", classes="dim",
                         markup=False)
            with Horizontal(classes="row"):
                yield Static("Directory", classes="field-label", markup=False)
                yield Input(self.default_directory, id="export-dir", compact=True)
            yield Static("", id="export-error", classes="error", markup=False)
            with Horizontal(classes="buttons"):
                if self.session_id is not None:
                    yield Button(f"Connection #{self.session_id}", variant="primary", id="one",
                                 compact=True)
                yield Button(f"All {len(self.manager.history)} connections", id="all", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        from tcpbench.screens.blink import apply_blink

        apply_blink(self)
        self.query_one("#export-dir", Input).focus()

    @on(Input.Submitted, "#export-dir")
    def _submitted(self) -> None:
        self.export("one" if self.session_id is not None else "all")

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "cancel":
            self.dismiss(None)
        else:
            self.export(event.button.id or "all")

    def export(self, which: str) -> None:
        directory = self.query_one("#export-dir", Input).value.strip()
        error = self.query_one("#export-error", Static)
        if not directory:
            error.update("Give a directory name.")
            return
        if which == "one" and self.session_id is not None:
            sessions = [self.manager.history[self.session_id]] if self.session_id in \
                self.manager.history else []
        else:
            sessions = list(self.manager.history.values())
        if not sessions:
            error.update("There is no connection to export yet.")
            return
        try:
            written = export_sessions(sessions, directory)
        except RecordError as exc:
            error.update(str(exc))
            return
        self.dismiss(f"wrote the record of {len(written)} connection(s) to {directory}")
