"""The read-size policy on its own: the sizes it picks, and the kernel's queued-byte count
it reads (a real socket pair). The policy at work on live sessions: test_read_size.py."""

from __future__ import annotations

import socket

import pytest

from tcpbench.engine.readsize import (HALVE_MAX, READ_CONDUIT, READ_LARGE, READ_SMALL, READ_SPLIT,
                                      SPLIT_MAX, next_read_size, queued_bytes)

pytestmark = pytest.mark.timeout(10)

KIB = 1024


def ask(nbytes: int, limit: int, ceiling: int, fd: int, *, solo: bool, burst: int | None = None) -> int:
    """`next_read_size`, for a read that was the whole burst unless `burst` says more."""
    return next_read_size(nbytes, limit, ceiling, fd, solo, nbytes if burst is None else burst)


def test_queued_bytes_is_what_the_kernel_holds_unread():
    mine, peer = socket.socketpair()
    try:
        assert queued_bytes(mine.fileno()) == 0
        peer.sendall(b"x" * 3000)
        assert queued_bytes(mine.fileno()) == 3000
        mine.recv(1000)
        assert queued_bytes(mine.fileno()) == 2000
    finally:
        mine.close()
        peer.close()
    assert queued_bytes(-1) is None


def test_a_closed_socket_cannot_say():
    mine, peer = socket.socketpair()
    fd = mine.fileno()
    mine.close()
    peer.close()
    assert queued_bytes(fd) is None


def test_on_a_busy_loop_reads_grow_while_full_and_go_back_after_a_short_one():
    assert ask(READ_SMALL, READ_SMALL, READ_LARGE, -1, solo=False) == 4 * READ_SMALL
    assert ask(READ_LARGE, READ_LARGE, READ_LARGE, -1, solo=False) == READ_LARGE
    assert ask(300 * KIB, READ_LARGE, READ_LARGE, -1, solo=False) == READ_LARGE
    assert ask(6, READ_LARGE, READ_LARGE, -1, solo=False) == READ_SMALL
    assert ask(6, READ_SMALL, READ_LARGE, -1, solo=False) == READ_SMALL
    # Reads left small by a split go back to READ_SMALL once the loop is busy, or grow.
    assert ask(6, READ_SPLIT, READ_LARGE, -1, solo=False) == READ_SMALL
    assert ask(READ_SPLIT, READ_SPLIT, READ_LARGE, -1, solo=False) == 4 * READ_SPLIT


def test_served_alone_a_small_burst_emptied_by_one_read_splits_the_next():
    assert (READ_SPLIT, SPLIT_MAX) == (16 * KIB, 32 * KIB)  # the figures below are for these
    assert ask(6, READ_SMALL, READ_LARGE, -1, solo=True) == READ_SPLIT
    assert ask(6, READ_LARGE, READ_LARGE, -1, solo=True) == READ_SPLIT
    assert ask(READ_SPLIT, READ_SMALL, READ_LARGE, -1, solo=True) == READ_SPLIT
    assert ask(READ_SPLIT - 1, READ_SPLIT, READ_LARGE, -1, solo=True) == READ_SPLIT


def test_served_alone_a_larger_read_that_emptied_the_socket_asks_for_split_max():
    """It may be a whole burst of up to SPLIT_MAX, or the part of a larger one that has
    arrived so far: no split on its word alone, but a next read that fills SPLIT_MAX lets
    FIONREAD tell."""
    assert ask(SPLIT_MAX, READ_SMALL, READ_LARGE, -1, solo=True) == SPLIT_MAX
    assert ask(READ_SPLIT + 1, 256 * KIB, READ_LARGE, -1, solo=True) == SPLIT_MAX
    assert ask(24 * KIB, SPLIT_MAX, READ_LARGE, -1, solo=True) == SPLIT_MAX


def test_served_alone_a_larger_burst_is_read_in_halves_next_time():
    """A read that emptied the socket ends a burst: itself and the full reads before it."""
    assert HALVE_MAX == 256 * KIB
    assert ask(128 * KIB, 256 * KIB, READ_LARGE, -1, solo=True) == 64 * KIB
    assert ask(64 * KIB, 256 * KIB, READ_LARGE, -1, solo=True, burst=128 * KIB) == 64 * KIB
    assert ask(40 * KIB, 64 * KIB, READ_LARGE, -1, solo=True, burst=104 * KIB) == 48 * KIB
    assert ask(SPLIT_MAX + 1, READ_LARGE, READ_LARGE, -1, solo=True) == READ_SPLIT  # halves round down
    assert ask(HALVE_MAX, READ_LARGE, READ_LARGE, -1, solo=True) == HALVE_MAX // 2
    assert ask(100 * KIB, 256 * KIB, READ_CONDUIT, -1, solo=True) == 48 * KIB  # a relay's reads too
    # Not served alone, the same reads are read as the throughput policy says.
    assert ask(128 * KIB, 256 * KIB, READ_LARGE, -1, solo=False) == 256 * KIB
    assert ask(40 * KIB, 64 * KIB, READ_LARGE, -1, solo=False, burst=104 * KIB) == READ_SMALL


def test_served_alone_a_burst_above_halve_max_is_read_as_on_a_busy_loop():
    assert ask(HALVE_MAX + 1, READ_LARGE, READ_LARGE, -1, solo=True) == READ_LARGE
    assert ask(40 * KIB, READ_LARGE, READ_LARGE, -1, solo=True, burst=HALVE_MAX + 40 * KIB) == READ_SMALL
    assert ask(6 * SPLIT_MAX, READ_LARGE, READ_LARGE, -1, solo=True, burst=3 * HALVE_MAX) == READ_LARGE


def test_served_alone_a_full_read_asks_the_kernel_what_is_left():
    mine, peer = socket.socketpair()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)  # room for a burst
    peer.setblocking(False)
    try:
        fd = mine.fileno()
        # A 32 KiB window: a read filled 16 KiB and the other 16 KiB waits: split.
        assert peer.send(b"x" * 16 * KIB) == 16 * KIB
        assert ask(16 * KIB, 16 * KIB, READ_LARGE, fd, solo=True) == READ_SPLIT
        # A read filled 32 KiB and nothing waits: all of a 32 KiB burst: split.
        assert len(mine.recv(64 * KIB)) == 16 * KIB
        assert ask(SPLIT_MAX, SPLIT_MAX, READ_LARGE, fd, solo=True) == READ_SPLIT
        # A bulk sender: 150 KiB behind a full 16 KiB read is far more than SPLIT_MAX,
        # so the reads grow 4x as on a busy loop, up to the ceiling.
        assert peer.send(b"y" * 150 * KIB) == 150 * KIB
        assert ask(16 * KIB, 16 * KIB, READ_LARGE, fd, solo=True) == 64 * KIB
        assert ask(16 * KIB, 16 * KIB, 32 * KIB, fd, solo=True) == 32 * KIB
        assert ask(128 * KIB, 128 * KIB, READ_LARGE, fd, solo=True) == READ_LARGE
        # Only 10 KiB behind a full 16 KiB read: a 26 KiB burst, split.
        assert len(mine.recv(140 * KIB)) == 140 * KIB and queued_bytes(fd) == 10 * KIB
        assert ask(16 * KIB, 16 * KIB, READ_LARGE, fd, solo=True) == 16 * KIB
        # At the ceiling already: no need to ask the kernel.
        assert ask(32 * KIB, 32 * KIB, 32 * KIB, fd, solo=True) == 32 * KIB
    finally:
        mine.close()
        peer.close()
    # A socket that cannot tell: grow as on a busy loop rather than guess.
    assert ask(16 * KIB, 16 * KIB, READ_LARGE, -1, solo=True) == 64 * KIB
    assert ask(READ_LARGE, READ_LARGE, READ_LARGE, -1, solo=True) == READ_LARGE
