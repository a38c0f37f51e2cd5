"""raw: the operator is the server (like `ncat -l -k`).

What the operator types goes to every connected client; what clients send is
shown to the operator. The session stays open after the client's FIN so the
operator can still answer, as with a half-closed netcat.
"""

from __future__ import annotations

from tcpbench.services.base import Effects, Send, Service


class RawService(Service):
    name = "raw"
    summary = "you type the server's side; every client gets what you send"

    def __init__(self) -> None:
        self.clients: list[int] = []
        self.close_on_peer_fin = False

    def session_opened(self, session, peer, local, now) -> Effects:
        self.clients.append(session)
        return []

    def session_closed(self, session, now) -> Effects:
        if session in self.clients:
            self.clients.remove(session)
        return []

    def operator_input(self, data: bytes, now: float) -> Effects:
        return [Send(session, data) for session in self.clients]
