"""`apply_blink`: the app's cursor-blink setting applied to a screen's inputs.

Apart from `screens.dialogs` because the main screen calls it on mount, before its
first frame, and the dialogs module (Select, TextArea, the service registry and TLS)
costs ~20 ms to import that the first frame does not need.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Input


def apply_blink(screen: Any) -> None:
    """Tests turn the cursor blink off (`TcpBenchApp(cursor_blink=False)`) for stable snapshots."""
    blink = getattr(screen.app, "cursor_blink", True)
    for widget in screen.query(Input):
        widget.cursor_blink = blink
