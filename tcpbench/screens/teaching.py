"""The main screen's teaching actions: notes (N), what just happened (W), export (e), F1.

A mixin, so the workbench screen gains them with one base class and its own
module stays about the workbench. It uses what `MainScreen` has: `bench` (the
app as a `Workbench`) and `_session()` (the selected connection, or a warning).
"""

from __future__ import annotations

from typing import Any


class TeachingActions:
    """Actions for a class watching TCP; mixed into `MainScreen`."""

    def action_toggle_notes(self: Any) -> None:
        from tcpbench.widgets.notes_panel import NotesPanel

        panel = self.query_one(NotesPanel)
        if not panel.has_notes:
            self.app.notify("No notes: they come with a scenario (tcpbench --scenario NAME; "
                            "tcpbench scenarios lists them).", severity="warning", markup=False)
            return
        panel.toggle()

    def action_timeline(self: Any) -> None:
        from tcpbench.screens.timeline import TimelineScreen

        if (session := self._session()) is not None:
            self.app.push_screen(TimelineScreen(session, self.bench.address_formatter))

    def action_tcp_help(self: Any) -> None:
        from tcpbench.screens.tcp_help import TcpHelpScreen
        from tcpbench.widgets.tables import ConnectionsTable

        selected = self.query_one(ConnectionsTable).selected_key
        self.app.push_screen(TcpHelpScreen(self.bench.manager, selected))

    def action_export(self: Any) -> None:
        from tcpbench.screens.export import ExportDialog
        from tcpbench.widgets.tables import ConnectionsTable

        def done(summary: str | None) -> None:
            if summary:
                self.app.notify(summary, title="exported", markup=False)

        selected = self.query_one(ConnectionsTable).selected_key
        self.app.push_screen(ExportDialog(self.bench.manager, selected), done)
