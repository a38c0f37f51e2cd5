"""raw: the operator is the server (like `ncat -l -k`).

What the operator types goes to every connected client; what clients send is
shown to the operator. The session stays open after the client's FIN so the
operator can still answer, as with a half-closed netcat. When the operator's
input ends (EOF on stdin), every client gets FIN, as `ncat -l` does, and so does
any client that connects afterwards: nothing more will be sent to it.
"""

from __future__ import annotations

from tcpbench.services.base import Effects, HalfClose, Note, Send, Service


class RawService(Service):
    name = "raw"
    summary = "you type the server's side; every client gets what you send"

    def __init__(self) -> None:
        self.clients: list[int] = []
        self.close_on_peer_fin = False
        self.operator_done = False

    def session_opened(self, session, peer, local, now) -> Effects:
        self.clients.append(session)
        return [HalfClose(session)] if self.operator_done else []

    def session_closed(self, session, now) -> Effects:
        if session in self.clients:
            self.clients.remove(session)
        return []

    def operator_input(self, data: bytes, now: float) -> Effects:
        return [Send(session, data) for session in self.clients]

    def operator_closed(self, now: float) -> Effects:
        self.operator_done = True
        count = len(self.clients)
        clients = "1 client" if count == 1 else f"{count} clients"
        return [Note(f"operator input ended: FIN sent to {clients}", None, "raw"),
                *(HalfClose(session) for session in self.clients)]
