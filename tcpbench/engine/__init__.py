"""The engine: asyncio and the standard library only, never Textual or Rich.

It owns every socket, task and child process (`SessionManager`), reports the
whole TCP lifecycle as events (`tcpbench.engine.events`), and runs services.
"""

from tcpbench.engine.errors import ConnectError, ListenError, TcpBenchError
from tcpbench.engine.listener import Listener
from tcpbench.engine.manager import SessionManager
from tcpbench.engine.conduit import Conduit, SessionClosedError
from tcpbench.engine.session import Session

__all__ = ["Conduit", "ConnectError", "ListenError", "Listener", "Session", "SessionClosedError",
           "SessionManager", "TcpBenchError"]
