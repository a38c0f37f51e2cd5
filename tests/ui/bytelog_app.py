"""A tiny app around the byte log for UI tests: a real SessionManager, a 30 Hz sync timer."""

from __future__ import annotations

from textual.app import App, ComposeResult

from tcpbench.engine.manager import SessionManager
from tcpbench.widgets import ByteLogView

FIXED_CLOCK = 1_700_000_000.0


class LogApp(App):
    def __init__(self, manager: SessionManager, **view_options) -> None:
        super().__init__()
        self.manager = manager
        self.view_options = view_options
        self.pwned = False

    def compose(self) -> ComposeResult:
        yield ByteLogView(self.manager, clock=lambda: FIXED_CLOCK, id="log", **self.view_options)

    def on_mount(self) -> None:
        self.log_view = self.query_one(ByteLogView)
        self.log_view.focus()
        self.set_interval(1 / 30, self.log_view.sync)

    def action_pwned(self) -> None:
        self.pwned = True


def screen_text(app: App) -> str:
    """Every visible cell of the screen, line by line, as the compositor renders it."""
    lines = []
    for strip in app.screen._compositor.render_strips():
        lines.append("".join(segment.text for segment in strip))
    return "\n".join(lines)
