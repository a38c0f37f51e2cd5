"""What the kernel knows about a connection, read without privilege (Linux).

- `tcp_info(session)`: `getsockopt(TCP_INFO)` on the session's own socket: the
  kernel's TCP state (ESTABLISHED, FIN_WAIT2, CLOSE_WAIT ...), the smoothed RTT,
  retransmissions, the congestion window. Read on demand (a screen asks), never
  per chunk.
- `kernel_sockets(port)`: the lines of `/proc/net/tcp` and `/proc/net/tcp6` for a
  port, which is where TIME_WAIT shows: after close there is no socket of ours
  to ask, but the kernel still holds the connection for 60 s.

Both return None or an empty list where Linux does not offer them (other
systems, a closed socket); nothing here raises for that.
"""

from __future__ import annotations

import socket
import struct
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tcpbench.engine.session import Session

STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
          6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}

STATE_MEANINGS = {
    "SYN_SENT": "we sent SYN and wait for SYN-ACK",
    "SYN_RECV": "a SYN arrived and we answered SYN-ACK; waiting for the final ACK",
    "ESTABLISHED": "the handshake is done: both sides may send",
    "FIN_WAIT1": "we sent FIN; it is not acknowledged yet",
    "FIN_WAIT2": "our FIN was acknowledged; we wait for the peer's FIN (we still read)",
    "CLOSE_WAIT": "the peer sent FIN; we may still send, and the kernel waits for our close",
    "LAST_ACK": "both sent FIN (the peer first); waiting for the ACK of ours",
    "CLOSING": "both sent FIN at the same time; waiting for the ACK of ours",
    "TIME_WAIT": "we closed first and all is done; the kernel keeps the pair 60 s so "
                 "stray segments of this connection cannot land in a new one",
    "CLOSE": "nothing is left of the connection",
    "LISTEN": "a listening socket: the kernel completes handshakes and queues them for accept",
}

_HEAD = struct.Struct("=8B24I")
_WIDE = struct.Struct("=4Q2I")


@dataclass(frozen=True)
class TcpInfo:
    """A snapshot of `struct tcp_info` (the fields a class can read)."""

    state: str
    rtt_us: int
    """Smoothed round-trip time, microseconds."""
    rttvar_us: int
    retransmits: int
    """Retransmissions of the segment in flight now."""
    total_retrans: int
    snd_cwnd: int
    """Congestion window, in segments."""
    snd_mss: int
    unacked: int
    """Segments sent and not yet acknowledged."""
    bytes_acked: int | None = None
    bytes_received: int | None = None

    @property
    def meaning(self) -> str:
        return STATE_MEANINGS.get(self.state, "")

    def summary(self) -> str:
        """`ESTABLISHED, rtt 0.05 ms (+-0.02), cwnd 10, 0 retransmissions`."""
        text = (f"{self.state}, rtt {self.rtt_us / 1000:.2f} ms (+-{self.rttvar_us / 1000:.2f}), "
                f"cwnd {self.snd_cwnd}, {self.total_retrans} retransmission(s), "
                f"{self.unacked} segment(s) unacknowledged")
        return text


def tcp_info(session: Session) -> TcpInfo | None:
    """The kernel's view of a live session's connection; None when it has no socket any more
    or the system offers no `TCP_INFO`."""
    transport = session.transport
    if transport is None or transport.is_closing() or not hasattr(socket, "TCP_INFO"):
        return None
    sock: Any = transport.get_extra_info("socket")
    if sock is None:
        return None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    except OSError:
        return None
    return parse_tcp_info(raw)


def parse_tcp_info(raw: bytes) -> TcpInfo | None:
    """Decode the bytes of `getsockopt(TCP_INFO)` (older kernels give fewer fields)."""
    if len(raw) < _HEAD.size:
        return None
    head = _HEAD.unpack_from(raw)
    u8, u32 = head[:8], head[8:]
    acked = received = None
    if len(raw) >= _HEAD.size + _WIDE.size:
        wide = _WIDE.unpack_from(raw, _HEAD.size)
        acked, received = wide[2], wide[3]
    return TcpInfo(state=STATES.get(u8[0], f"state {u8[0]}"), rtt_us=u32[15], rttvar_us=u32[16],
                   retransmits=u8[2], total_retrans=u32[23], snd_cwnd=u32[18], snd_mss=u32[2],
                   unacked=u32[4], bytes_acked=acked, bytes_received=received)


@dataclass(frozen=True)
class KernelSocket:
    state: str
    local: tuple[str, int]
    remote: tuple[str, int]


def kernel_sockets(port: int) -> list[KernelSocket]:
    """Every TCP socket of this network namespace whose local or remote port is `port`, from
    `/proc/net/tcp{,6}` (readable by anyone); [] where there is no /proc."""
    found: list[KernelSocket] = []
    for name, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            with open(name, encoding="ascii") as table:
                lines = table.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 4:
                continue
            local, remote = _address(fields[1], family), _address(fields[2], family)
            if port in (local[1], remote[1]):
                found.append(KernelSocket(STATES.get(int(fields[3], 16), fields[3]), local, remote))
    return found


def leftover_state(local: tuple[str, int], peer: tuple[str, int]) -> KernelSocket | None:
    """The kernel's socket still left for a connection we no longer hold (TIME_WAIT after
    we closed first, FIN_WAIT2 while the peer has not), or None: matched by our local port
    and the peer's port, so with both ends ours the other end's socket is not taken for it."""
    if not local[1]:
        return None
    for found in kernel_sockets(local[1]):
        if found.local[1] == local[1] and found.remote[1] == peer[1]:
            return found
    return None


def _address(text: str, family: int) -> tuple[str, int]:
    host_hex, _, port_hex = text.partition(":")
    raw = bytes.fromhex(host_hex)
    # /proc prints each 32-bit word of the address in host byte order.
    if sys.byteorder == "little":
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return socket.inet_ntop(family, raw), int(port_hex, 16)
