"""The suite's own bare reference servers, each a few lines of plain asyncio.

    python benchmarks/refservers.py KIND [ARG]

KIND is one of: echo-protocol, echo-protocol-tls (ARG: a PEM with cert and key), echo-streams, h11 (ARG: the body), chat.
Each binds 127.0.0.1 on a free port with a backlog of 4096 (tcpbench's own
backlog, so accept bursts compare fairly), prints `listening on 127.0.0.1:PORT`
as its first line (the same line `tcpbench serve` prints) and serves until
SIGTERM. They print nothing else: they are the floor of what asyncio costs.
With REF_BUSY_POLL=USEC in the environment they run on tcpbench's busy-poll
selector (`tcpbench/engine/busypoll.py`), the loop `tcpbench serve` runs on by
default, so a reader can tell what the loop gives from what tcpbench does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

BACKLOG = 4096


class EchoProtocol(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)

    def eof_received(self):
        self.transport.close()


async def echo_streams(reader, writer):
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


def h11_protocol(body: bytes):
    import h11

    class H11Protocol(asyncio.Protocol):
        """One h11.Connection per connection; 200 with the body; keep-alive unless asked to close."""

        def connection_made(self, transport):
            self.transport = transport
            self.conn = h11.Connection(h11.SERVER)

        def data_received(self, data):
            conn = self.conn
            conn.receive_data(data)
            while True:
                try:
                    event = conn.next_event()
                except h11.RemoteProtocolError:
                    self.transport.close()
                    return
                if event is h11.NEED_DATA or event is h11.PAUSED:
                    return
                if isinstance(event, h11.EndOfMessage):
                    out = conn.send(h11.Response(status_code=200, headers=[
                        ("Content-Length", str(len(body))), ("Content-Type", "text/plain")]))
                    out += conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage())
                    self.transport.write(out)
                    if conn.our_state is h11.MUST_CLOSE:
                        self.transport.close()
                        return
                    conn.start_next_cycle()
                elif isinstance(event, h11.ConnectionClosed):
                    self.transport.close()
                    return

    return H11Protocol


def chat_protocol():
    clients: set = set()

    class ChatProtocol(asyncio.Protocol):
        """Complete lines from one client go to every other client: one write per peer per read."""

        def connection_made(self, transport):
            self.transport = transport
            self.buffer = b""
            clients.add(self)

        def data_received(self, data):
            data = self.buffer + data if self.buffer else data
            cut = data.rfind(b"\n") + 1
            self.buffer = data[cut:]
            if cut:
                lines = data[:cut]
                for client in clients:
                    if client is not self:
                        client.transport.write(lines)

        def eof_received(self):
            self.transport.close()

        def connection_lost(self, exc):
            clients.discard(self)

    return ChatProtocol


async def main(kind: str, arg: str | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if kind == "echo-protocol":
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0, backlog=BACKLOG)
    elif kind == "echo-protocol-tls":  # ARG: a PEM file with the certificate and its key
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(arg)
        server = await loop.create_server(EchoProtocol, "127.0.0.1", 0, backlog=BACKLOG,
                                          ssl=context)
    elif kind == "echo-streams":
        server = await asyncio.start_server(echo_streams, "127.0.0.1", 0, backlog=BACKLOG)
    elif kind == "h11":
        server = await loop.create_server(h11_protocol((arg or "x").encode()), "127.0.0.1", 0,
                                          backlog=BACKLOG)
    elif kind == "chat":
        server = await loop.create_server(chat_protocol(), "127.0.0.1", 0, backlog=BACKLOG)
    else:
        raise SystemExit(f"unknown reference server {kind!r}")
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await stop.wait()
    server.close()


def loop_factory():
    budget = os.environ.get("REF_BUSY_POLL")
    if not budget:
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tcpbench.engine.busypoll import BusyPollSelector

    return lambda: asyncio.SelectorEventLoop(BusyPollSelector(float(budget)))


if __name__ == "__main__":
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        runner.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
