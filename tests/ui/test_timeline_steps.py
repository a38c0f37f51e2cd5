"""The W timeline's steps, from a byte store filled with chunks at chosen times (no sockets: this
is the grouping rule alone; test_teaching drives the screen with real connections)."""

from __future__ import annotations

from types import SimpleNamespace

from tcpbench.engine.bytestore import RECEIVED, SENT, ByteStore
from tcpbench.screens.timeline import timeline
from tcpbench.widgets.bytelog_format import SAME_MOMENT

OPENED = 1000.0


def session_with(chunks: list[tuple[float, str, bytes]]) -> SimpleNamespace:
    store = ByteStore(1 << 20)
    offsets = {RECEIVED: 0, SENT: 0}
    for seconds, direction, data in chunks:
        store.add_data(OPENED + seconds, 1, direction, offsets[direction], data)
        offsets[direction] += len(data)
    return SimpleNamespace(id=1, store=store, opened_at=OPENED)


def test_a_burst_is_one_step_and_lines_typed_seconds_apart_are_steps_of_their_own():
    burst = [(0.10 + i * 0.001, RECEIVED, b"x" * 100) for i in range(50)]
    typed = [(3.0, SENT, b"EHLO x\r\n"), (3.0 + SAME_MOMENT / 2, SENT, b"more\r\n"),
             (9.0, SENT, b"QUIT\r\n")]
    steps = timeline(session_with(burst + typed))
    assert [(round(s.seconds, 3), s.mark) for s in steps] == [(0.1, "<"), (3.0, ">"), (9.0, ">")]
    assert steps[0].text.startswith("received 5000 byte(s) in 50 chunks")
    assert steps[1].text.startswith("sent 14 byte(s) in 2 chunks")
    assert steps[2].text == "sent 6 byte(s): QUIT\\r\\n"
