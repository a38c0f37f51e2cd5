"""The byte log: real sockets into a real SessionManager, shown by ByteLogView under Pilot."""

from __future__ import annotations

import asyncio
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpbench.engine.bytestore import Record
from tcpbench.engine.events import PeerHalfClosed
from tcpbench.engine.manager import SessionManager
from tcpbench.engine.registry import build_service
from tcpbench.widgets import bytelog_index
from tcpbench.widgets.bytelog_index import _tail_start
from tcpbench.widgets.bytelog_format import (MAX_LINE, SAME_MOMENT, continue_row, format_clock,
                                             record_rows, row_parts)
from tests.conftest import wait_until
from tests.ui.bytelog_app import LogApp, screen_text

# --- pure row logic ------------------------------------------------------------------


def test_text_rows_split_on_lf_and_cut_long_lines():
    data = b"ab\ncd\n" + b"x" * (MAX_LINE + 10)
    rows = record_rows(Record(0, 1.0, 7, "rx", 100, data), "text")
    assert [r[4] for r in rows] == [b"ab\n", b"cd\n", b"x" * MAX_LINE, b"x" * 10]
    assert [r[3] for r in rows] == [100, 103, 106, 106 + MAX_LINE]


def test_hex_rows_use_stream_offsets():
    rows = record_rows(Record(0, 1.0, 7, "tx", 32, bytes(range(40))), "hex")
    assert [(r[3], len(r[4])) for r in rows] == [(32, 16), (48, 16), (64, 8)]
    parts = row_parts(rows[0], "hex", timestamps=False, show_session=False, wall_offset=0)
    assert parts == [("> 00000020  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f  |................|", "tx")]


def test_continue_row_completes_unfinished_rows_only():
    prev = ("rx", 1.0, 7, 10, b"hel")
    merged, taken = continue_row(prev, Record(3, 2.0, 7, "rx", 13, b"lo\nnext"), "text")
    assert merged == ("rx", 1.0, 7, 10, b"hello\n") and taken == 3
    assert continue_row(prev, Record(3, 2.0, 7, "tx", 13, b"lo"), "text") is None  # other direction
    assert continue_row(prev, Record(3, 2.0, 8, "rx", 13, b"lo"), "text") is None  # other session
    assert continue_row(prev, Record(3, 2.0, 7, "rx", 99, b"lo"), "text") is None  # not contiguous
    assert continue_row(("rx", 1.0, 7, 10, b"done\n"), Record(3, 2.0, 7, "rx", 15, b"x"), "text") is None
    merged, taken = continue_row(("tx", 1.0, 7, 0, b"12345"), Record(3, 1.2, 7, "tx", 5, bytes(20)), "hex")
    assert len(merged[4]) == 16 and taken == 11
    # Seconds apart (keystrokes in telnet's character mode): its own hex row, with its own
    # time; a text line still joins up, as it is read as one line.
    assert continue_row(("tx", 1.0, 7, 0, b"a"), Record(3, 1.0 + SAME_MOMENT + 0.1, 7, "tx", 1, b"b"),
                        "hex") is None
    merged, _ = continue_row(("tx", 1.0, 7, 0, b"a"), Record(3, 9.0, 7, "tx", 1, b"b\n"), "text")
    assert merged == ("tx", 1.0, 7, 0, b"ab\n")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600).map(lambda b: b.replace(b"\x01", b"\n")), st.integers(1, 80),
       st.sampled_from(["text", "hex"]))
def test_tail_start_builds_exactly_the_last_rows(data, need, mode):
    record = Record(0, 1.0, 1, "rx", 1000, data)
    start = _tail_start(record, mode, need)
    assert record_rows(record, mode, start)[-need:] == record_rows(record, mode)[-need:]
    if start:
        assert len(record_rows(record, mode, start)) <= need + len(data) // MAX_LINE + 1


def test_clock_format_is_utc_and_cuts_millis_as_serve_and_the_transcript_do():
    from tcpbench.cli.output import _ClockLabel
    from tcpbench.engine.recorder import _clock

    assert format_clock(1_700_000_000.1234) == "22:13:20.123"
    assert format_clock(59.9996) == "00:00:59.999"
    for wall in (1_700_000_000.1239, 1_700_000_047.5899, 59.9996):
        shown = format_clock(wall, utc=False)
        assert shown == _ClockLabel()(wall) == _clock(wall), wall


def test_event_rows_explain_tcp():
    event = PeerHalfClosed(5.0, 3)
    rows = record_rows(Record(0, 5.0, 3, "ev", 0, b"", event), "text")
    text = row_parts(rows[0], "text", timestamps=False, show_session=True, wall_offset=0)
    assert "".join(t for t, _ in text) == "#3    * -- " + event.explain()


# --- the widget with real sockets ----------------------------------------------------------


async def _listen(manager: SessionManager, service: str = "echo") -> int:
    listener = await manager.start_listener(build_service(service), "127.0.0.1", 0)
    return listener.port


def _rows(view) -> list[str]:
    return [view.row_text(i) for i in range(view.row_count)]


async def test_bytes_appear_in_text_and_hex_view():
    async with SessionManager(linger=0.5) as manager:
        port = await _listen(manager)
        app = LogApp(manager)
        async with app.run_test(size=(140, 30)) as pilot:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"hello\r\nworld [bold]x\n")
            await writer.drain()
            assert await reader.readexactly(21)
            view = app.log_view
            await wait_until(lambda: sum("world" in r for r in _rows(view)) == 2, what="rx and tx rows")
            rows = _rows(view)
            assert any(re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} #1    < hello\\r\\n", r) for r in rows), rows
            assert any(r.endswith("> world [bold]x\\n") for r in rows), rows
            assert any("* -- accepted: a peer completed" in r for r in rows), rows
            await pilot.pause()
            assert "< hello\\r\\n" in screen_text(app)

            await pilot.press("h")
            assert view.mode == "hex"
            await wait_until(lambda: any("00000000  68 65 6c 6c 6f 0d 0a" in r for r in _rows(view)),
                             what="hex rows")
            await pilot.pause()
            assert "|hello..world [bo|" in screen_text(app)

            await pilot.press("t")
            assert view.show_timestamps is False
            assert view.row_text(0).startswith("#1    * -- accepted")
            writer.close()
            await writer.wait_closed()
            await wait_until(lambda: any("peer sent FIN" in r for r in _rows(view)), what="FIN row")


async def test_session_filter_shows_one_session_without_tags():
    async with SessionManager(linger=0.5) as manager:
        port = await _listen(manager, "discard")
        app = LogApp(manager)
        async with app.run_test(size=(100, 20)):
            _, w1 = await asyncio.open_connection("127.0.0.1", port)
            _, w2 = await asyncio.open_connection("127.0.0.1", port)
            w1.write(b"from-one\n")
            w2.write(b"from-two\n")
            await w1.drain()
            await w2.drain()
            view = app.log_view
            await wait_until(lambda: sum("from-" in r for r in _rows(view)) == 2, what="both sessions")
            first = min(manager.history)
            view.session_id = first
            rows = _rows(view)
            assert any(r.endswith("< from-one\\n") for r in rows)
            assert not any("from-two" in r for r in rows)
            assert not any("#" in r for r in rows)
            for w in (w1, w2):
                w.close()
                await w.wait_closed()


async def test_follows_tail_or_counts_new_rows_when_scrolled_up():
    async with SessionManager(linger=0.5) as manager:
        port = await _listen(manager, "discard")
        app = LogApp(manager)
        async with app.run_test(size=(80, 20)) as pilot:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"".join(b"line %03d\n" % i for i in range(200)))
            await writer.drain()
            view = app.log_view
            await wait_until(lambda: view.row_count >= 201, what="200 lines")
            await pilot.pause()
            assert view.at_tail and view.scroll_y == view.max_scroll_y > 0
            assert "line 199" in screen_text(app)

            await pilot.press("home")
            assert not view.at_tail and view.scroll_y == 0
            writer.write(b"".join(b"more %03d\n" % i for i in range(50)))
            await writer.drain()
            await wait_until(lambda: view.new_since_scrolled == 50, what="+50 new")
            await pilot.pause()
            assert view.scroll_y == 0 and "more 049" not in screen_text(app)

            await pilot.press("end")
            await pilot.pause()
            assert view.at_tail and view.new_since_scrolled == 0
            assert view.scroll_y == view.max_scroll_y
            assert "more 049" in screen_text(app)
            writer.write(b"tail again\n")
            await writer.drain()
            await wait_until(lambda: view.row_text(view.row_count - 1).endswith("tail again\\n"))
            await pilot.pause()
            assert view.scroll_y == view.max_scroll_y and view.new_since_scrolled == 0
            writer.close()
            await writer.wait_closed()


async def test_store_trimming_shows_exact_gap():
    async with SessionManager(linger=0.5, store_cap=1024) as manager:
        port = await _listen(manager, "discard")
        app = LogApp(manager)
        async with app.run_test(size=(120, 20)):
            view = app.log_view
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            payload = b"".join(b"%05d\n" % i for i in range(4000))
            writer.write(payload)
            await writer.drain()
            await wait_until(lambda: sum(s.bytes_in for s in manager.history.values()) == len(payload))
            await wait_until(lambda: any(r.endswith("03999\\n") for r in _rows(view)), what="last line")
            rows = _rows(view)
            gaps = [int(re.search(r"\.\.\. ([\d,]+) received bytes not kept", r).group(1).replace(",", ""))
                    for r in rows if "not kept" in r]
            shown = sum(len(r.split("< ", 1)[1].replace("\\n", "\n")) for r in rows if "< " in r)
            assert gaps, rows[:5]
            assert sum(gaps) + shown == len(payload)
            writer.close()
            await writer.wait_closed()


async def test_own_row_bound_trims_without_moving_the_reader(monkeypatch):
    monkeypatch.setattr(bytelog_index, "MAX_ROWS", 150)
    async with SessionManager(linger=0.5) as manager:
        port = await _listen(manager, "discard")
        app = LogApp(manager)
        async with app.run_test(size=(80, 20)) as pilot:
            view = app.log_view
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"".join(b"line %03d\n" % i for i in range(120)))
            await writer.drain()
            await wait_until(lambda: view.row_count == 121, what="120 lines and the opened row")
            await pilot.pause()
            view.scroll_to(y=80, animate=False, immediate=True)
            await pilot.pause()
            assert not view.at_tail
            top = view.row_text(int(view.scroll_y))
            writer.write(b"".join(b"next %03d\n" % i for i in range(60)))
            await writer.drain()
            await wait_until(lambda: view.new_since_scrolled == 60, what="60 new rows")
            assert view.row_count == 150
            assert view.row_text(int(view.scroll_y)) == top
            assert view.scroll_y == 80 - 31
            writer.close()
            await writer.wait_closed()


async def test_search_and_clear():
    async with SessionManager(linger=0.5) as manager:
        port = await _listen(manager, "discard")
        app = LogApp(manager)
        async with app.run_test(size=(80, 20)) as pilot:
            view = app.log_view
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            lines = [b"row %03d\n" % i for i in range(100)]
            lines[10] = b"the Needle here\n"
            lines[70] = b"needle again\n"
            writer.write(b"".join(lines))
            await writer.drain()
            await wait_until(lambda: view.row_count == 101)
            await pilot.pause()
            assert view.search("NEEDLE") is True
            await pilot.pause()
            assert view.scroll_y <= 11 < view.scroll_y + 18
            assert "the Needle here" in screen_text(app)
            assert view.search("needle") is True
            await pilot.pause()
            assert "needle again" in screen_text(app)
            await pilot.press("n")  # wraps around to the first match
            await pilot.pause()
            assert "the Needle here" in screen_text(app)
            assert view.search("no such text") is False

            session = next(iter(manager.history.values()))
            view.clear()
            assert view.row_count == 0
            await pilot.pause()
            assert "row 0" not in screen_text(app)
            writer.write(b"after clear\n")
            await writer.drain()
            await wait_until(lambda: view.row_count == 1)
            assert view.row_text(0).endswith("< after clear\\n")
            assert session.bytes_in == sum(len(x) for x in lines) + 12
            await pilot.press("h")  # a rebuild keeps what clear() forgot forgotten
            # 12 bytes at 8 per hex row (80 columns): two rows, nothing from before the clear.
            await wait_until(lambda: view.row_count == 2)
            assert "61 66 74 65 72" in view.row_text(0)
            writer.close()
            await writer.wait_closed()


@pytest.mark.parametrize("mode", ["text", "hex"])
async def test_sync_without_news_does_nothing(mode):
    async with SessionManager(linger=0.5) as manager:
        port = await _listen(manager, "discard")
        app = LogApp(manager)
        async with app.run_test(size=(80, 20)):
            view = app.log_view
            view.mode = mode
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"x" * 100)
            await writer.drain()
            await wait_until(lambda: view.row_count >= 2)
            before = (view.row_count, view._index.base, list(view._index._cursors.items()))
            for _ in range(5):
                view.sync()
            assert (view.row_count, view._index.base, list(view._index._cursors.items())) == before
            writer.close()
            await writer.wait_closed()


async def test_firehose_budget_skips_with_exact_gap_and_rebuild_fills_in(monkeypatch):
    monkeypatch.setattr(bytelog_index, "SYNC_ROW_BUDGET", 100)
    async with SessionManager(linger=0.5) as manager:
        port = await _listen(manager, "discard")
        app = LogApp(manager)
        async with app.run_test(size=(100, 20)) as pilot:
            view = app.log_view
            app.log_view.show_timestamps = False
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            payload = b"".join(b"%05d\n" % i for i in range(3000))
            writer.write(payload)
            await writer.drain()
            await wait_until(lambda: sum(s.bytes_in for s in manager.history.values()) == len(payload))
            await wait_until(lambda: any(r.endswith("02999\\n") for r in _rows(view)), what="last line")
            rows = _rows(view)
            gaps = sum(int(re.search(r"\.\.\. ([\d,]+) received", r).group(1).replace(",", ""))
                       for r in rows if "not kept" in r)
            shown = sum(len(r.split("< ", 1)[1].replace("\\n", "\n")) for r in rows if "< " in r)
            assert gaps > 0 and gaps + shown == len(payload)
            # Switching views rebuilds from the store, which still holds every line.
            await pilot.press("h", "h")
            rows = _rows(view)
            assert not any("not kept" in r for r in rows)
            assert sum(r.endswith("\\n") and "< " in r for r in rows) == 3000
            writer.close()
            await writer.wait_closed()


async def test_a_line_split_across_reads_is_one_row():
    async with SessionManager(linger=0.5) as manager:
        port = await _listen(manager, "discard")
        app = LogApp(manager)
        async with app.run_test(size=(100, 20)) as pilot:
            view = app.log_view
            view.show_timestamps = False
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"hel")
            await writer.drain()
            await wait_until(lambda: any(r.endswith("< hel") for r in _rows(view)), what="first part")
            writer.write(b"lo\nsecond")
            await writer.drain()
            await wait_until(lambda: any(r.endswith("< second") for r in _rows(view)), what="second part")
            await pilot.pause()
            assert [r for r in _rows(view) if "< " in r] == ["#1    < hello\\n", "#1    < second"]
            assert "< hello\\n" in screen_text(app)
            writer.close()
            await writer.wait_closed()
