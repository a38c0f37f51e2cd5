"""The key footer: compact from the start, and rebuilt only when its keys change.

Textual's `Footer` rebuilds itself (removes and mounts a widget per key) every time
the screen says its bindings may have changed: each focus change, each screen
change, the terminal's focus events, each explicit `refresh_bindings()`, one rebuild
per signal even when several arrive together. The main screen's footer holds about
20 keys; at start-up it was rebuilt 5 times before the first frame. And
`Footer(compact=True)` makes each key compact after it mounts, through a watcher
that adds a class and so restyles the key: ~20 more restyles per rebuild.

`CompactFooter` composes its keys with the class already on, coalesces the signals
into one check after the next refresh, and rebuilds only if what it would show (keys,
descriptions, enabled states) differs from what it shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

if TYPE_CHECKING:
    from textual.screen import Screen


class CompactFooter(Footer):
    """`Footer(compact=True)` that rebuilds only when the keys it shows change."""

    def __init__(self) -> None:
        super().__init__(compact=True)
        self._check_pending = False
        self._shown: tuple | None = None
        """What the last compose showed (see `_what_to_show`); None before the first."""

    def compose(self) -> ComposeResult:
        self._shown = self._what_to_show() if self._bindings_ready else None
        for widget in super().compose():
            if isinstance(widget, FooterKey):
                widget.add_class("-compact", update=False)
            yield widget

    def bindings_changed(self, screen: Screen) -> None:
        # Footer's own handler, but one check per refresh instead of a rebuild per signal.
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        if self.is_attached and screen is self.screen and not self._check_pending:
            self._check_pending = True
            self.call_after_refresh(self._rebuild_if_changed)

    async def _rebuild_if_changed(self) -> None:
        self._check_pending = False
        if not self.is_attached or self._what_to_show() == self._shown:
            return
        await self.recompose()

    def _what_to_show(self) -> tuple:
        """Everything `Footer.compose` reads: the shown bindings, their enabled states and
        tooltips, and whether the command palette key is on."""
        shown = tuple((binding.key, binding.action, binding.description, binding.group, enabled, tooltip)
                      for _, binding, enabled, tooltip in self.screen.active_bindings.values()
                      if binding.show)
        palette = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        palette_key = None if palette is None else (palette[1].key, palette[2], palette[3])
        return shown, palette_key, self.show_command_palette, self.app.ENABLE_COMMAND_PALETTE
