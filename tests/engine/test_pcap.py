"""The synthesised pcap, read back by an independent reader (and by tshark when installed)."""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import subprocess

import pytest

from tcpbench.engine.recorder import Recorder, prepare_directory
from tcpbench.engine.registry import build_service
from tests.conftest import wait_until
from tests.netutil import echo_then_fin

pytestmark = pytest.mark.timeout(60)
PAYLOAD = bytes(range(256)) * 40  # several segments of 1460


def fold(data: bytes) -> int:
    """RFC 1071 sum, written out again here so the test does not trust the code under test."""
    data += b"\0" * (len(data) % 2)
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def packets(path):
    raw = path.read_bytes()
    magic, major, minor, _, _, _, link = struct.unpack("<IHHiIII", raw[:24])
    assert (magic, major, minor, link) == (0xA1B2C3D4, 2, 4, 1)
    pos = 24
    while pos < len(raw):
        _, _, caplen, length = struct.unpack("<IIII", raw[pos:pos + 16])
        frame = raw[pos + 16:pos + 16 + caplen]
        assert caplen == length == len(frame)
        pos += 16 + caplen
        assert frame[12:14] in (b"\x08\x00", b"\x86\xdd")
        if frame[12:14] == b"\x08\x00":
            ip = frame[14:]
            assert fold(ip[:20]) == 0xFFFF  # the IPv4 header checksum holds
            assert struct.unpack("!H", ip[2:4])[0] == len(ip)
            src, dst, tcp = ip[12:16], ip[16:20], ip[20:]
            pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp))
        else:
            ip = frame[14:]
            src, dst, tcp = ip[8:24], ip[24:40], ip[40:]
            pseudo = src + dst + struct.pack("!I3xB", len(tcp), 6)
        assert fold(pseudo + tcp) == 0xFFFF  # the TCP checksum holds
        sport, dport, seq, ack, offset, flags = struct.unpack("!HHIIBB", tcp[:14])
        yield sport, dport, seq, ack, flags, tcp[(offset >> 4) * 4:]


def follow(path, server_port: int):
    """Reassemble both directions by sequence number, as Wireshark's Follow TCP stream does."""
    isn, streams, flags_seen = {}, {"to_server": {}, "to_client": {}}, []
    for sport, dport, seq, ack, flags, payload in packets(path):
        way = "to_server" if dport == server_port else "to_client"
        flags_seen.append((way, flags))
        if flags & 0x02:
            isn[way] = seq
        if payload:
            streams[way][seq - isn[way] - 1] = payload
    joined = {way: b"".join(chunks[k] for k in sorted(chunks)) for way, chunks in streams.items()}
    return joined, flags_seen


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_pcap_of_an_echo_session_holds_the_bytes_and_the_lifecycle(manager, tmp_path, host) -> None:
    recorder = Recorder(prepare_directory(tmp_path / "r"))
    manager.subscribe(recorder)
    listener = await manager.start_listener(build_service("echo"), host)
    await echo_then_fin(host, listener.port, PAYLOAD)
    await wait_until(lambda: not manager.sessions, what="the close")
    recorder.close()
    path = tmp_path / "r" / "session-1.pcap"
    streams, flags = follow(path, listener.port)
    assert streams == {"to_server": PAYLOAD, "to_client": PAYLOAD}
    assert flags[:3] == [("to_server", 0x02), ("to_client", 0x12), ("to_server", 0x10)]
    assert ("to_server", 0x11) in flags and ("to_client", 0x11) in flags  # a FIN each way
    assert not any(f & 0x04 for _, f in flags)  # no RST in an orderly close


async def test_an_abort_is_an_rst_in_the_pcap(manager, tmp_path) -> None:
    recorder = Recorder(prepare_directory(tmp_path / "r"))
    manager.subscribe(recorder)
    listener = await manager.start_listener(build_service("discard"))
    with socket.create_connection(listener.address, timeout=5):
        await wait_until(lambda: manager.sessions, what="accepted")
        next(iter(manager.sessions.values())).abort()
        await wait_until(lambda: not manager.sessions, what="aborted")
    recorder.close()
    _, flags = follow(tmp_path / "r" / "session-1.pcap", listener.port)
    assert flags[-1] == ("to_client", 0x14)  # RST|ACK from us


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed (apt install tshark)")
async def test_tshark_follows_the_stream(manager, tmp_path) -> None:
    recorder = Recorder(prepare_directory(tmp_path / "r"))
    manager.subscribe(recorder)
    listener = await manager.start_listener(build_service("echo"))
    reader, writer = await asyncio.open_connection(*listener.address)
    writer.write(b"hello wireshark\n")
    assert await asyncio.wait_for(reader.readexactly(16), 10) == b"hello wireshark\n"
    writer.close()
    await wait_until(lambda: not manager.sessions, what="closed")
    recorder.close()
    out = await asyncio.to_thread(subprocess.run, ["tshark", "-r", str(tmp_path / "r" / "session-1.pcap"),
                                                   "-q", "-z", "follow,tcp,raw,0"],
                                  capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    hexes = [line.strip() for line in out.stdout.splitlines() if line.strip() and
             all(c in "0123456789abcdef" for c in line.strip())]
    assert bytes.fromhex("".join(hexes)) == b"hello wireshark\n" * 2
