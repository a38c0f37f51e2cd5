"""Ports that do not answer the way a listener does: one that refuses, one that drops.

A teaching aid for "refused vs dropped" (what a port check shows in each case),
built without root or a firewall:

- `RefusingPort`: a socket that is bound but never listens. The port stays ours
  (nobody else can take it while the lesson runs) and the kernel answers every
  SYN to it with RST: the client sees "connection refused" at once.
- `DroppingPort`: a socket listening with a backlog of 0 whose accept queue we
  fill with our own connections and never accept. Linux then drops further SYNs
  silently (with the default `net.ipv4.tcp_abort_on_overflow = 0`), which a
  client cannot tell from a firewall's DROP: its connect times out.

A real firewall DROP needs root (`iptables -A INPUT -p tcp --dport N -j DROP`);
this is the honest unprivileged stand-in, and it only works on the loopback
side of this machine (remote SYNs are dropped the same way, though).
"""

from __future__ import annotations

import socket

FILLERS = 3
"""Connections parked in the accept queue. Linux keeps backlog+1 (= 1) completed
handshakes; the extra ones keep retrying their SYN so the queue stays full."""


class RefusingPort:
    """A bound, never-listening TCP port: SYNs to it are answered with RST.

    Resource handling: owns one socket until `close()`.

    Errors: `OSError` from bind (the port is taken, the address is not ours).
    """

    behaviour = "refuse"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._sock.bind((host, port))
        except BaseException:
            self._sock.close()
            raise
        self.address: tuple[str, int] = self._sock.getsockname()[:2]

    def close(self) -> None:
        self._sock.close()


class DroppingPort:
    """A listening port whose full accept queue makes the kernel drop new SYNs.

    Resource handling: owns the listening socket and `FILLERS` client sockets
    until `close()`.

    Errors: `OSError` from bind or listen.
    """

    behaviour = "drop"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._server = socket.socket(family, socket.SOCK_STREAM)
        self._fillers: list[socket.socket] = []
        try:
            self._server.bind((host, port))
            self._server.listen(0)
            self.address: tuple[str, int] = self._server.getsockname()[:2]
            target = "::1" if family == socket.AF_INET6 and host in ("::", "") else host
            target = "127.0.0.1" if target in ("0.0.0.0", "") else target
            for _ in range(FILLERS):
                filler = socket.socket(family, socket.SOCK_STREAM)
                self._fillers.append(filler)
                filler.setblocking(False)
                filler.connect_ex((target, self.address[1]))
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        for filler in self._fillers:
            filler.close()
        self._fillers.clear()
        self._server.close()
