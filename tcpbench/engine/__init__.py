"""The engine: asyncio and the standard library only, never Textual or Rich.

It owns every socket, task and child process (`SessionManager`), reports the
whole TCP lifecycle as events (`tcpbench.engine.events`), and runs services.

The names below are loaded on first use (PEP 562), not when the package is: importing
any engine module runs this file first, and the workbench imports light ones
(`runtime`, `address`, `bytestore`) before its first frame, which must not pay the
~20 ms of the whole engine (the manager, sessions, TLS, ~40 event dataclasses).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tcpbench.engine.conduit import Conduit, SessionClosedError
    from tcpbench.engine.errors import ConnectError, ListenError, TcpBenchError
    from tcpbench.engine.listener import Listener
    from tcpbench.engine.manager import SessionManager
    from tcpbench.engine.session import Session

_HOMES = {
    "Conduit": "conduit", "SessionClosedError": "conduit",
    "ConnectError": "errors", "ListenError": "errors", "TcpBenchError": "errors",
    "Listener": "listener", "SessionManager": "manager", "Session": "session",
}

__all__ = ["Conduit", "ConnectError", "ListenError", "Listener", "Session", "SessionClosedError",
           "SessionManager", "TcpBenchError"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
