"""Widgets of the TUI: the live byte log and the send bar.

They read the engine's state and post domain messages; they never touch a socket.
"""

from tcpbench.widgets.bytelog import ByteLogView
from tcpbench.widgets.sendbar import SendBar

__all__ = ["ByteLogView", "SendBar"]
