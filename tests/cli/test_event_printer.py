"""The serve printer defers byte lines to its flush: the text must be exactly what formatting
each event at once gives, in the same order, and no chunk may be held until then."""

from __future__ import annotations

import asyncio
import io
import socket
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpbench.cli import output
from tcpbench.cli.output import IDLE_WRITE_LINES, PREVIEW, SLICE_LINES, EventPrinter
from tcpbench.engine import events as ev
from tcpbench.engine.busypoll import BusyPollEventLoop

payloads = st.one_of(st.binary(max_size=3 * PREVIEW), st.sampled_from([b"", b"\x1b[31m[red]\\", b"a" * 64, b"a" * 100, b"a" * 5000]))


@st.composite
def event_runs(draw):
    """Byte events (sometimes an echo: the sent event carries the very received object),
    with notes and closes between them, on a few sessions."""
    run: list[ev.Event] = []
    at = 1000.0
    offsets: dict[tuple[int, str], int] = {}
    for _ in range(draw(st.integers(0, 30))):
        at += draw(st.floats(0, 2.0))
        session = draw(st.integers(1, 3))
        what = draw(st.sampled_from(["in", "out", "echo", "note", "closed"]))
        data = draw(payloads)
        if what in ("in", "out", "echo"):
            direction = "out" if what == "out" else "in"
            offset = offsets.get((session, direction), 0)
            kind = ev.BytesSent if what == "out" else ev.BytesReceived
            run.append(kind(at, session, offset, data))
            offsets[(session, direction)] = offset + len(data)
            if what == "echo":
                sent = offsets.get((session, "out"), 0)
                run.append(ev.BytesSent(at, session, sent, data))
                offsets[(session, "out")] = sent + len(data)
        elif what == "note":
            run.append(ev.ServiceNoted(at, session, 1, "chat", data.decode("latin-1")))
        else:
            run.append(ev.SessionClosed(at, session, "peer", 1, 2))
    return run


def _printer(stream: io.StringIO, *, buffered: bool, **options) -> EventPrinter:
    return EventPrinter(stream=stream, buffered=buffered, wall_clock=lambda: 1_700_000_000.0, **options)


@pytest.mark.timeout(60)
@settings(max_examples=150, deadline=None)
@given(run=event_runs(), json_lines=st.booleans(), show_data=st.booleans())
def test_deferred_lines_are_the_eager_lines(run, json_lines, show_data):
    eager, deferred = io.StringIO(), io.StringIO()
    at_once = _printer(eager, buffered=False, json_lines=json_lines, show_data=show_data)
    later = _printer(deferred, buffered=True, json_lines=json_lines, show_data=show_data)
    later._mono_to_wall = at_once._mono_to_wall  # the same clock offset, so labels compare

    async def feed() -> None:  # a running loop: the buffered printer defers to its flush
        for event in run:
            at_once(event)
            later(event)
        later.flush()

    asyncio.run(feed())
    assert deferred.getvalue() == eager.getvalue()


@pytest.mark.timeout(30)
def test_a_waiting_byte_line_does_not_hold_its_chunk():
    stream = io.StringIO()
    printer = _printer(stream, buffered=True)
    chunk = bytes(256 * 1024)

    async def feed() -> None:
        before = sys.getrefcount(chunk)
        printer(ev.BytesReceived(1.0, 1, 0, chunk))
        printer(ev.BytesSent(1.0, 1, 0, chunk))
        assert len(printer._pending) == 2  # both lines wait for the flush
        assert sys.getrefcount(chunk) == before  # neither the lines nor the printer keep it
        printer.flush()

    asyncio.run(feed())
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].endswith('"...') and " < 262144 bytes " in lines[0]
    assert " > 262144 bytes " in lines[1]


@pytest.mark.timeout(30)
def test_a_fast_stream_is_written_in_slices_at_the_next_turn():
    """Past SLICE_LINES waiting lines the flush comes at the loop's next turn, not at the
    FLUSH_SECONDS mark: one flush of 20 ms of a busy server's lines held every connection."""
    stream = io.StringIO()
    printer = _printer(stream, buffered=True)

    async def feed() -> tuple[int, int, int]:
        for i in range(SLICE_LINES - 1):
            printer(ev.BytesReceived(1.0, 1, i, b"x"))
        await asyncio.sleep(0)
        before_slice = stream.getvalue().count("\n")  # few lines wait for the 20 ms mark
        printer(ev.ServiceNoted(1.0, 1, 1, "chat", "<alice> the slice's last line"))
        at_once = stream.getvalue().count("\n")  # not in the middle of the callback
        await asyncio.sleep(0)
        return before_slice, at_once, stream.getvalue().count("\n")

    before_slice, at_once, next_turn = asyncio.run(feed())
    assert (before_slice, at_once, next_turn) == (0, 0, SLICE_LINES)
    assert stream.getvalue().splitlines()[-1].endswith("#1 chat: <alice> the slice's last line")


@pytest.mark.timeout(30)
def test_a_note_is_formatted_at_the_flush_not_when_it_comes():
    stream = io.StringIO()
    printer = _printer(stream, buffered=True)
    note = ev.ServiceNoted(1.0, 1, 1, "chat", "<bob> \x1b]52;c;AAAA\x07 hi")

    async def feed() -> None:
        printer(note)
        assert printer._pending == [note]  # waiting as it came, not yet a line
        printer.flush()

    asyncio.run(feed())
    assert stream.getvalue().endswith("#1 chat: <bob> \\e]52;c;AAAA\\x07 hi\n")


def test_a_connections_own_lines_are_formatted_at_the_flush():
    """Four lines per `Connection: close` request: they wait as events, as notes do."""
    stream = io.StringIO()
    printer = _printer(stream, buffered=True)
    lifecycle = [ev.SessionOpened(1.0, 7, ("127.0.0.1", 80), ("127.0.0.1", 5000), 1),
                 ev.WeHalfClosed(1.0, 7), ev.PeerHalfClosed(1.0, 7),
                 ev.SessionClosed(1.0, 7, "us", 98, 117)]

    async def feed() -> None:
        for event in lifecycle:
            printer(event)
        assert printer._pending == lifecycle  # waiting as they came, not yet lines
        printer.flush()

    asyncio.run(feed())
    lines = stream.getvalue().splitlines()
    assert [line.split(" ", 2)[1:] for line in lines] == [
        ["#7", "opened 127.0.0.1:5000 -> 127.0.0.1:80 (" + lifecycle[0].explain() + ")"],
        ["#7", "our FIN (" + lifecycle[1].explain() + ")"],
        ["#7", "peer FIN (" + lifecycle[2].explain() + ")"],
        ["#7", "closed by us, 98 bytes in, 117 out"]]


def test_each_connection_lines_read_as_before():
    """The lines every connection writes (looked up by type, not down `describe`'s chain)."""
    stream = io.StringIO()
    printer = _printer(stream, buffered=False)
    here, there = ("127.0.0.1", 8080), ("127.0.0.1", 50000)
    lines = [
        (ev.SessionOpened(1.0, 1, here, there, 1),
         "#1 opened 127.0.0.1:50000 -> 127.0.0.1:8080 (accepted: a peer completed the three-way "
         "handshake with our listener)"),
        (ev.SessionOpened(1.0, 2, there, here, None),
         "#2 opened 127.0.0.1:50000 -> 127.0.0.1:8080 (connected: our SYN was answered with "
         "SYN-ACK; the three-way handshake is done)"),
        (ev.WeHalfClosed(1.0, 1),
         "#1 our FIN (we sent FIN: we will send nothing more, but we still read what the peer sends)"),
        (ev.PeerHalfClosed(1.0, 1),
         "#1 peer FIN (peer sent FIN: it will send nothing more, but still reads; you can keep "
         "sending)"),
        (ev.SessionClosed(1.0, 1, "us", 60, 117), "#1 closed by us, 60 bytes in, 117 out"),
    ]
    for event, text in lines:
        assert printer.describe(event) == text
        printer(event)
    written = stream.getvalue().splitlines()
    assert [line.split(" ", 1)[1] for line in written] == [text for _, text in lines]


@pytest.mark.timeout(30)
def test_lines_are_formatted_while_the_busy_poll_loop_waits(monkeypatch):
    """On the busy-poll loop, lines are formatted and written in the spin's empty polls,
    not in a slice between a read and the answer, and read exactly as the eager ones."""
    monkeypatch.setattr(output, "FLUSH_SECONDS", 60.0)  # only the idle steps may write
    stream, eager = io.StringIO(), io.StringIO()
    printer = _printer(stream, buffered=True)
    at_once = _printer(eager, buffered=False)
    at_once._mono_to_wall = printer._mono_to_wall
    events = []
    for i in range(IDLE_WRITE_LINES + 10):
        chunk = bytes([i % 256]) * 100 + b"\x1b[2J"
        events += [ev.BytesReceived(1.0 + i, 1, i * 106, chunk), ev.BytesSent(1.0 + i, 1, i * 106, chunk)]
    events = events[:IDLE_WRITE_LINES + 8]
    here, there = ("127.0.0.1", 7), ("127.0.0.1", 50000)
    events[5:5] = [ev.SessionOpened(1.0, 2, here, there, 1)]  # a line formatted as it comes
    events.append(ev.SessionClosed(2.0, 2, "peer", 0, 0))
    later = [ev.BytesReceived(3.0, 1, 0, b"late\x00"), ev.SessionClosed(3.0, 1, "us", 5, 0)]

    async def feed() -> tuple[int, int, int]:
        loop = asyncio.get_running_loop()
        mine, peer = socket.socketpair()
        arrived = asyncio.Event()

        def read() -> None:
            mine.recv(16)
            arrived.set()

        async def traffic() -> None:  # the loop's next blocking wait spins
            arrived.clear()
            peer.send(b"x")
            await arrived.wait()

        loop.add_reader(mine, read)
        try:
            await traffic()
            for event in events:
                at_once(event)
                printer(event)
            waiting = len(printer._pending)
            deadline = loop.time() + 10
            # Spins of 50 ms each; one is plenty, but a machine busy with other work may
            # give the loop only some of that (sched_yield between polls hands the CPU on).
            while printer._pending and loop.time() < deadline:
                await asyncio.sleep(0.05)
                await traffic()
            counts = waiting, len(printer._pending), stream.getvalue().count("\n")
            for event in later:  # these wait behind the lines formatted while idle
                at_once(event)
                printer(event)
            return counts
        finally:
            loop.remove_reader(mine)
            mine.close()
            peer.close()

    with asyncio.Runner(loop_factory=lambda: BusyPollEventLoop(budget_us=50_000)) as runner:
        waiting, left, written = runner.run(feed())
    assert waiting == IDLE_WRITE_LINES + 10  # nothing formatted in the callback
    assert (left, written) == (0, IDLE_WRITE_LINES)  # all formatted while waiting; 128 written
    assert len(printer._ready) == 10 and len(printer._pending) == 2
    printer.flush()
    assert stream.getvalue() == eager.getvalue()
