"""relay on real loopback sockets: round trip, half-close per direction, RST, failures, flow control."""

from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from tcpbench.engine.events import ServiceNoted
from tcpbench.engine.relay import RelayService, parse_target
from tcpbench.services.base import OptionError
from tcpbench.services.echo import EchoService
from tests.conftest import wait_until


def test_parse_target():
    assert parse_target("example.org:80") == ("example.org", 80)
    assert parse_target("[::1]:8080") == ("::1", 8080)
    for bad in (None, "", "host", "host:x", "host:0", "::1:80", "[::1]80", ":80"):
        with pytest.raises(OptionError):
            parse_target(bad)


async def _relay(manager, port: int, **options):
    notes: list[ServiceNoted] = []
    manager.subscribe(lambda e: notes.append(e) if isinstance(e, ServiceNoted) else None)
    service = RelayService(to=f"127.0.0.1:{port}", **options)
    listener = await manager.start_listener(service, "127.0.0.1", 0)
    return service, listener, notes


async def test_round_trip_through_the_relay_to_our_echo(manager):
    echo = await manager.start_listener(EchoService(), "127.0.0.1", 0)
    service, listener, notes = await _relay(manager, echo.port)
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(b"through the relay\n")
        assert await reader.readline() == b"through the relay\n"
        await wait_until(lambda: service.pairs, 5, "pair")
        client_id, up_id = next(iter(service.pairs.items()))
        assert manager.sessions[client_id].linked == up_id
        assert manager.sessions[up_id].linked == client_id
        assert manager.sessions[up_id].bytes_out == 18 and manager.sessions[client_id].bytes_in == 18
        writer.write_eof()
        assert await reader.read() == b""  # the echo's FIN, relayed
        writer.close()
        await wait_until(lambda: not service.pairs and not manager.sessions, 5, "all closed")
    assert manager.history[client_id].state == "closed"
    assert manager.history[up_id].state == "closed"
    assert any(n.topic == "relay" and n.text.startswith(f"paired #{client_id}") for n in notes)


async def test_half_close_is_forwarded_per_direction(manager):
    received_upstream: list[bytes] = []

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"banner\n")
        writer.write_eof()  # upstream -> client is done; client -> upstream goes on
        received_upstream.append(await reader.read())  # until the client's FIN
        writer.close()

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        service, listener, notes = await _relay(manager, port)
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            assert await reader.read() == b"banner\n"  # then EOF: upstream's FIN reached us
            writer.write(b"still talking after your FIN\n")  # our direction is still open
            await writer.drain()
            writer.write_eof()
            await wait_until(lambda: received_upstream, 5, "upstream saw our FIN")
            writer.close()
        assert received_upstream == [b"still talking after your FIN\n"]
    finally:
        server.close()
        await server.wait_closed()


async def test_an_upstream_reset_resets_the_client(manager):
    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # RST

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        service, listener, notes = await _relay(manager, port)
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            writer.write(b"x")
            with pytest.raises(ConnectionResetError):
                await reader.read()
            writer.close()
            await wait_until(lambda: not manager.sessions, 5, "both legs ended")
        states = sorted(s.state for s in manager.history.values())
        assert states == ["aborted", "reset"]
        aborted = next(s for s in manager.history.values() if s.state == "aborted")
        assert "was reset by its peer" in aborted.end_reason
    finally:
        server.close()
        await server.wait_closed()


async def test_a_client_reset_aborts_the_upstream(manager):
    seen: list[BaseException | bytes] = []

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            seen.append(await reader.read())
        except ConnectionResetError as exc:
            seen.append(exc)
        writer.close()

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        service, listener, notes = await _relay(manager, port)
        async with asyncio.timeout(10):
            sock = socket.create_connection(("127.0.0.1", listener.port))
            await wait_until(lambda: service.pairs, 5, "pair")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # RST
            await wait_until(lambda: seen, 5, "upstream saw the end")
        assert isinstance(seen[0], ConnectionResetError)
    finally:
        server.close()
        await server.wait_closed()


async def test_a_refused_upstream_closes_the_client_and_says_refused(manager):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed_port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    service, listener, notes = await _relay(manager, closed_port)
    async with asyncio.timeout(10):
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        assert await reader.read() == b""  # a clean close, not a reset
        writer.close()
    relay_notes = [n for n in notes if n.topic == "relay"]
    assert relay_notes and "refused" in relay_notes[0].text
    assert dict(relay_notes[0].fields)["reason"] == "refused"


async def test_a_slow_client_throttles_the_upstream_with_bounded_memory(manager):
    total = 64 * 1024 * 1024
    chunk = b"\xab" * (256 * 1024)

    async def firehose(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for _ in range(total // len(chunk)):
                writer.write(chunk)
                await writer.drain()
            writer.write_eof()
            await reader.read()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(firehose, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        service, listener, notes = await _relay(manager, port)
        async with asyncio.timeout(30):
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port, limit=1 << 16)
            await wait_until(lambda: service.pairs, 5, "pair")
            client_id, up_id = next(iter(service.pairs.items()))
            client, up = manager.sessions[client_id], manager.sessions[up_id]
            # The client reads nothing: the relay must stop reading upstream, not buffer 64 MiB.
            previous = -1
            for _ in range(200):  # bounded: until the upstream leg stalls (about 1 s)
                await asyncio.sleep(0.02)
                if up.bytes_in == previous:
                    break
                previous = up.bytes_in
            print(f"relay stall: upstream in {up.bytes_in}, client out {client.bytes_out}, "
                  f"client write buffer {client.write_buffer_size}")
            assert up.bytes_in < total // 2, up.bytes_in
            queued = up.bytes_in - client.bytes_out  # held by the relay itself
            assert queued <= 1024 * 1024, queued
            assert client.write_buffer_size <= 1024 * 1024
            got = 0
            while data := await reader.read(1 << 20):
                got += len(data)
            assert got == total
            writer.close()
    finally:
        server.close()
        await server.wait_closed()


# --- a relay to itself ------------------------------------------------------------------


async def test_a_relay_to_its_own_listener_is_refused(manager) -> None:
    import socket as _socket

    from tcpbench.engine import ListenError, events as _ev
    from tcpbench.engine.relay import RelayService

    failed: list = []
    manager.subscribe(lambda e: failed.append(e) if isinstance(e, _ev.ListenerFailed) else None)
    with _socket.socket() as probe:  # a free port to ask for by number
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    for host, to in (("127.0.0.1", f"127.0.0.1:{port}"), ("127.0.0.1", f"localhost:{port}"),
                     ("0.0.0.0", f"127.0.0.1:{port}")):
        with pytest.raises(ListenError) as info:
            await manager.start_listener(RelayService(to=to), host, port)
        assert info.value.reason == "loop" and "this listener itself" in str(info.value)
        assert "\n" not in str(info.value)
    assert not manager.listeners and len(failed) == 3
    # The port was given back: a relay elsewhere may listen there now.
    other = await manager.start_listener(RelayService(to=f"127.0.0.1:{port + 1 if port < 65535 else 1}"),
                                         "127.0.0.1", port)
    assert other.port == port
