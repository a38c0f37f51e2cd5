"""echo: send back every byte received (like `ncat -c cat -k -l`).

Flow control comes from the engine: while the client does not read, its echo
buffer fills, the engine pauses reading from it, and TCP slows the client down.
"""

from __future__ import annotations

from tcpbench.services.base import Effects, Send, Service


class EchoService(Service):
    name = "echo"
    summary = "send back every byte received"

    def data_received(self, session: int, data: bytes, now: float) -> Effects:
        return [Send(session, data)]
