"""The scenario's notes: a side panel with the lesson's title and what to try (N hides it).

Hidden until a scenario gives it something to say. The text comes from a
scenario file, which may come from anyone, so it goes on screen as plain
`Content` (no markup parser) after `escape_text` (no terminal escapes).
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from tcpbench.safetext import escape_text


RESERVED_ROWS = 3
"""The totals line above, the send bar and the footer below."""
FULL_WIDTH_BELOW = 100
"""Screens narrower than this show the notes across the whole width (N: the workbench)."""
NOTE_WIDTH = 46
"""Characters per line inside the panel (its width less border and padding); the built-in
notes are written to fit, so nothing wraps on a projector."""


class NotesPanel(VerticalScroll):
    """A scenario's title and notes, docked at the right of the workbench."""

    DEFAULT_CSS = """
    NotesPanel {
        dock: right;
        width: 50;
        max-width: 45%;
        height: 1fr;
        margin-top: 1;
        border: round $panel-lighten-2;
        border-title-color: $text-accent;
        padding: 0 1;
        display: none;
    }
    NotesPanel.-full-width {
        width: 100%;
        max-width: 100%;
    }
    NotesPanel:focus-within {
        border: round $accent;
    }
    NotesPanel > #notes-title {
        text-style: bold;
        color: $text-accent;
        margin-bottom: 1;
    }
    NotesPanel > #notes-problems {
        color: $text-error;
        margin-bottom: 1;
        display: none;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.has_notes = False
        """True once a scenario gave it a title (only then does N show it)."""

    def compose(self) -> ComposeResult:
        yield Static("", id="notes-title", markup=False)
        yield Static("", id="notes-problems", markup=False)
        yield Static("", id="notes-text", markup=False)

    def on_mount(self) -> None:
        self.border_title = "Notes"
        self.border_subtitle = "N: hide"
        self.screen.screen_layout_refresh_signal.subscribe(self, self._fit)

    def _fit(self, screen: object = None) -> None:
        # Below the totals line and above the send bar and the footer (3 rows in all). A docked
        # widget's height counts from the screen's top whatever its margin, and CSS has no
        # calc(), so the height follows the screen's (set only on change: no layout loop).
        height = max(3, self.screen.size.height - RESERVED_ROWS)
        if self.styles.height is None or self.styles.height.value != height:
            self.styles.height = height
        # Beside the tables, a narrow screen (a projector at 80x24) leaves the notes wrapped
        # in a third of it and the tables without their state column: there the notes take
        # the whole width, and N switches between them and the workbench.
        self.set_class(self.screen.size.width < FULL_WIDTH_BELOW, "-full-width")

    def show_notes(self, title: str, notes: str, problems: list[str] | None = None) -> None:
        """Fill the panel and show it."""
        def plain(text: str) -> Content:
            # Letters of any script stay (a lesson may be in Russian); controls are escaped.
            return Content("\n".join("".join(ch if ch.isprintable() else escape_text(ch) for ch in line)
                                     for line in text.strip("\n").splitlines()))

        self.query_one("#notes-title", Static).update(plain(title))
        trouble = self.query_one("#notes-problems", Static)
        trouble.update(plain("\n".join(f"! {p}" for p in problems or ())))
        trouble.display = bool(problems)
        self.query_one("#notes-text", Static).update(plain(notes))
        self.has_notes = True
        self.display = True

    def toggle(self) -> bool:
        """Show or hide; returns whether it is shown. Without notes it stays hidden."""
        self.display = self.has_notes and not self.display
        return bool(self.display)
