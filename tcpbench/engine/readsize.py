"""How much a session's next read asks for: sized to the traffic, and to how busy the loop is.

asyncio's socket transport reads `recv(transport.max_size)`, 256 KiB every time,
and CPython allocates the whole request before `recv` and shrinks it after;
above glibc's 128 KiB mmap threshold that is an mmap, a page fault, an mremap
and a munmap for every read, however few bytes arrived (~15 us against ~2 us
for a 64 KiB request). So a session sets `max_size` before each read:

- **A busy loop** (several peers ready at once, or no way to tell): throughput
  first. Reads start at `READ_SMALL`, grow 4x while each one fills its buffer (a
  bulk sender) up to the session's ceiling, and go back to `READ_SMALL` after a
  read shorter than that.
- **A loop serving one peer** (`BusyPollSelector.solo_polls`: this socket, alone,
  for the last `SOLO_POLLS` polls) and a small burst: latency first. A peer that
  keeps a window of data in flight (an echo client, a request/response peer)
  waits for its bytes to come back before it sends more. Reading its whole burst
  and answering it at once leaves the peer idle while we work, and us idle while
  it works. Reading a burst of up to `SPLIT_MAX` in `READ_SPLIT` pieces (halves)
  sends the first half's answer while the second half is still queued, so the
  peer tops up its window while we read on. The burst is what a read filled its
  buffer with plus what the kernel still holds (FIONREAD, asked before the answer
  goes out, so a quick peer's next bytes cannot count), or a read of at most
  `READ_SPLIT` that emptied the socket. A larger read that emptied it may be the
  part of a bigger burst that has arrived so far, so the next read asks for
  `SPLIT_MAX` and, if it fills, FIONREAD tells. So a burst of 16-32 KiB that
  always arrives whole before we read is read whole.
- **A loop serving one peer and a larger burst** (up to `HALVE_MAX`: a 64-256 KiB
  window): once a read has emptied the socket, the burst it ended (every read since
  the socket was last empty) is known, and the next one is read in halves of it,
  for the same overlap. Larger bursts (a bulk sender) are read as on a busy loop.

The split is only made for a loop serving one peer: with 8 echo connections,
16 KiB reads cost ~30% against the throughput policy (the CPU is the limit
there, and every read has a fixed cost in Python). The figures are under
`SPLIT_MAX` and `READ_SPLIT`.
"""

from __future__ import annotations

import sys
from typing import Any

try:
    import fcntl
    import termios
except ImportError:  # not a POSIX system: no FIONREAD, so no split by queued bytes
    fcntl = termios = None  # type: ignore[assignment]

READ_SMALL = 64 * 1024
"""What a read asks for at first and after any short read on a busy loop: below glibc's
mmap threshold (128 KiB), so a read of a few bytes costs one heap allocation, not four
syscalls."""
READ_LARGE = 512 * 1024
"""What a read may grow to while each one fills its buffer (a bulk sender): half the reads
of asyncio's 256 KiB, and so half the per-chunk work. Not 1 MiB: with 8 bulk connections
1 MiB reads ran at 0.93x a bare asyncio echo against 1.04x for 512 KiB (5 alternating
rounds, 256 MiB each; 1 connection: no difference), and took 2-3x the page faults."""
READ_CONDUIT = 256 * 1024
"""The most a read asks for in a session with a handler (exec, relay): asyncio's own size,
which the handler queue's bound (`CONDUIT_QUEUE_LIMIT`) was measured with."""
READ_SPLIT = 16 * 1024
"""What each read asks for while a small burst is split: half of the largest burst split
(`SPLIT_MAX`). Each read costs ~10 us of Python whatever its size: a 32 KiB window read in
8 KiB pieces ran at ~440 MiB/s, in 16 KiB pieces ~580."""
SPLIT_MAX = 2 * READ_SPLIT
"""The largest burst that is split in `READ_SPLIT` pieces (larger ones up to `HALVE_MAX`
are read in halves of their size, and beyond that as on a busy loop). Where each
read's fixed cost (~10 us of Python) is near the time its copies take, the overlap pays;
above, the extra reads cost more than it gives. One echo connection, 3 rotated rounds of
`benchmarks/echo_ab.py` each, before splitting -> after:
- bursts of up to 32 KiB split: a 32 KiB window 471 -> 552 MiB/s, 64 KiB 717 -> 718,
  128 KiB 1,561 -> 1,550;
- up to 64 KiB split: 32 KiB 462 -> 557, 64 KiB 702 -> 787, but 128 KiB 1,501 -> 1,408: a
  peer streaming a large window through 16-32 KiB pieces shows little queued at times, the
  reads stay small, and the server runs out of CPU."""
HALVE_MAX = 256 * 1024
"""The largest burst above `SPLIT_MAX` that is read in halves (rounded down to a multiple of
`READ_SPLIT`) when the next one comes. One echo connection, `echo_ab.py` against the commit
before, 256 MiB, 4-6 rotated rounds: a 64 KiB window 1.13x, 128 KiB 1.85x (933 -> 1,731
MiB/s, where socat PIPE made 1,206), 256 KiB 1.35x; 32 KiB and bulk unchanged; 1 MiB 1.02x,
512 KiB 0.94x (ceiling-sized bursts halved made 512 KiB 0.88x, hence this bound)."""
SOLO_POLLS = 4
"""How many polls in a row must find this one socket alone before reads are split; with 8
busy echo connections a run of 4 almost never happens, with one it always does."""

_FIONREAD = getattr(termios, "FIONREAD", None)
_INT_OUT = bytes(4)
"""The ioctl's argument: room for the C int FIONREAD writes back."""


def adaptable_reader(transport: Any) -> Any:
    """`transport` if its reads can be sized by the session (set to `READ_SMALL`), else None.

    asyncio's plain socket transport reads `recv(self.max_size)`, an instance
    attribute it never changes. uvloop reads into one preallocated buffer (no
    allocation to avoid), and a TLS transport's reads go through the SSL protocol's
    own buffer, so neither has anything to adapt.
    """
    if type(getattr(transport, "max_size", None)) is not int:
        return None
    try:
        transport.max_size = READ_SMALL
    except (AttributeError, TypeError):
        return None
    return transport


def queued_bytes(fd: int) -> int | None:
    """Bytes the kernel holds for socket `fd` that no read has taken yet; None if it cannot say."""
    if _FIONREAD is None or fd < 0:
        return None
    try:
        return int.from_bytes(fcntl.ioctl(fd, _FIONREAD, _INT_OUT), sys.byteorder)
    except OSError:
        return None


def next_read_size(nbytes: int, limit: int, ceiling: int, fd: int, solo: bool, burst: int) -> int:
    """What the next read should ask for, after one that got `nbytes` of the `limit` it asked.

    `ceiling`: the most a read of this session may ask for. `fd`: its socket, asked
    how much is still queued when a read filled its buffer. `solo`: the loop is
    serving this socket alone, so bursts are split (see the module's docstring);
    otherwise reads follow the throughput policy. `burst`: the bytes read since a
    read last emptied the socket, this read's included. Never returns less than
    `READ_SPLIT` or more than `ceiling` (given a `limit` within them).
    """
    if solo:
        if nbytes < limit:  # the read emptied the socket
            if nbytes <= READ_SPLIT:
                return READ_SPLIT
            if nbytes <= SPLIT_MAX:
                # The whole burst, or the part of a larger one that has arrived so far (a
                # peer streaming a large window): ask for SPLIT_MAX, so that a read that
                # fills it measures the burst. Splitting on this read's word alone made a
                # 128 KiB window 0.59x and a 64 KiB one 0.78x (echo_ab.py, 3 rounds).
                return SPLIT_MAX
            if burst <= HALVE_MAX:
                # A larger burst, all of it read by now (the reads before this one filled
                # their buffers): the next is read in halves, for the same overlap.
                return min(ceiling, max(READ_SPLIT, (burst // 2) & ~(READ_SPLIT - 1)))
        elif limit < ceiling:
            queued = queued_bytes(fd)
            if queued is not None and nbytes + queued <= SPLIT_MAX:
                return READ_SPLIT
    if nbytes == limit:
        return min(limit * 4, ceiling) if limit < ceiling else limit
    if nbytes < READ_SMALL and limit != READ_SMALL:
        return READ_SMALL
    return limit
