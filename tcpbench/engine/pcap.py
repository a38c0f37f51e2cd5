"""A pcap of a session, synthesised from its events, for Wireshark or tshark.

tcpbench sees a connection from the socket API, not the wire, so these packets
are a faithful *model*, not a capture: the three-way handshake when the session
opened, the bytes each way in segments of at most `MSS` with the sequence and
acknowledgement numbers they would carry, an ACK for every chunk, FIN from each
side when it half-closed, and RST for a reset or an abort. Timestamps are the
event times; checksums (IPv4 header, TCP with its pseudo-header) are correct,
so Wireshark's "Follow TCP stream" shows exactly the bytes of the record.
What it cannot show: retransmissions, window updates, delayed or coalesced ACKs
and the real segment boundaries (see `tcpinfo` for what the kernel says).

Ethernet framing (LINKTYPE_ETHERNET) with made-up local MAC addresses; IPv4 or
IPv6 by the session's addresses. `SessionPcap` turns one session's events into
packets; the recorder appends them to `session-N.pcap` as they come.
"""

from __future__ import annotations

import ipaddress
import struct
import zlib

from tcpbench.engine import events as ev

MSS = 1460
WINDOW = 65535
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
"""Magic (microsecond timestamps), version 2.4, UTC, snaplen, LINKTYPE_ETHERNET."""
_MAC_US = b"\x02\x00\x00\x00\x00\x01"
_MAC_PEER = b"\x02\x00\x00\x00\x00\x02"


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class _End:
    __slots__ = ("ip", "port", "mac", "seq")

    def __init__(self, address: tuple[str, int], mac: bytes, isn: int) -> None:
        self.ip = ipaddress.ip_address(address[0].split("%")[0])
        self.port = address[1]
        self.mac = mac
        self.seq = isn


class SessionPcap:
    """The packets of one session, made from its events in order (`feed`).

    `feed(event, wall)` returns the pcap records (bytes) the event stands for;
    write `PCAP_HEADER` once before the first. Events of other sessions, and
    the events of a session before its `SessionOpened`, give nothing.
    """

    def __init__(self, session: int) -> None:
        self.session = session
        self.us: _End | None = None
        self.peer: _End | None = None

    def feed(self, event: ev.Event, wall: float) -> bytes:
        if getattr(event, "session", None) != self.session:
            return b""
        if isinstance(event, ev.SessionOpened):
            return self._open(event, wall)
        us, peer = self.us, self.peer
        if us is None or peer is None:
            return b""
        if isinstance(event, ev.BytesReceived):
            return self._data(peer, us, event.data, wall)
        if isinstance(event, ev.BytesSent):
            return self._data(us, peer, event.data, wall)
        if isinstance(event, ev.PeerHalfClosed):
            return self._fin(peer, us, wall)
        if isinstance(event, ev.WeHalfClosed):
            return self._fin(us, peer, wall)
        if isinstance(event, ev.SessionReset):
            return self._packet(peer, us, RST, b"", wall, ack=False)
        if isinstance(event, ev.SessionAborted):
            return self._packet(us, peer, RST | ACK, b"", wall)
        return b""

    def _open(self, event: ev.SessionOpened, wall: float) -> bytes:
        if not event.local[0] or not event.peer[0]:
            return b""
        seed = zlib.crc32(b"%d" % event.session)
        self.us = us = _End(event.local, _MAC_US, seed)
        self.peer = peer = _End(event.peer, _MAC_PEER, zlib.crc32(b"peer", seed))
        client, server = (us, peer) if event.listener is None else (peer, us)
        out = self._packet(client, server, SYN, b"", wall, ack=False)
        client.seq += 1
        out += self._packet(server, client, SYN | ACK, b"", wall)
        server.seq += 1
        return out + self._packet(client, server, ACK, b"", wall)

    def _data(self, src: _End, dst: _End, data: bytes, wall: float) -> bytes:
        out = []
        for start in range(0, len(data), MSS):
            piece = data[start:start + MSS]
            last = start + MSS >= len(data)
            out.append(self._packet(src, dst, ACK | (PSH if last else 0), piece, wall))
            src.seq = (src.seq + len(piece)) & 0xFFFFFFFF
        out.append(self._packet(dst, src, ACK, b"", wall))
        return b"".join(out)

    def _fin(self, src: _End, dst: _End, wall: float) -> bytes:
        out = self._packet(src, dst, FIN | ACK, b"", wall)
        src.seq = (src.seq + 1) & 0xFFFFFFFF
        return out + self._packet(dst, src, ACK, b"", wall)

    def _packet(self, src: _End, dst: _End, flags: int, payload: bytes, wall: float, *,
                ack: bool = True) -> bytes:
        tcp = struct.pack("!HHIIBBHHH", src.port, dst.port, src.seq, dst.seq if ack else 0,
                          5 << 4, flags, WINDOW, 0, 0) + payload
        if src.ip.version == 4:
            pseudo = src.ip.packed + dst.ip.packed + struct.pack("!BBH", 0, 6, len(tcp))
            tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
            header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, 6, 0,
                                 src.ip.packed, dst.ip.packed)
            ip = header[:10] + struct.pack("!H", checksum(header)) + header[12:] + tcp
            ethertype = 0x0800
        else:
            pseudo = src.ip.packed + dst.ip.packed + struct.pack("!I3xB", len(tcp), 6)
            tcp = tcp[:16] + struct.pack("!H", checksum(pseudo + tcp)) + tcp[18:]
            ip = struct.pack("!IHBB16s16s", 6 << 28, len(tcp), 6, 64, src.ip.packed, dst.ip.packed) + tcp
            ethertype = 0x86DD
        frame = dst.mac + src.mac + struct.pack("!H", ethertype) + ip
        seconds = int(wall)
        micros = int((wall - seconds) * 1_000_000)
        return struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame
