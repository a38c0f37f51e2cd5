"""The pure helpers behind responsive tables and sparklines: plain function calls."""

from __future__ import annotations

from tcpbench.widgets.columns import ELLIPSIS, ColumnSpec, plan_columns, shorten_middle
from tcpbench.widgets.throughput import BLOCKS, Throughput, sparkline

COLUMNS = (ColumnSpec("id", "#", 3), ColumnSpec("peer", "peer", 10, 40), ColumnSpec("state", "state", 6),
           ColumnSpec("local", "local", 10, 40))


def test_plan_folds_the_least_important_first_and_gives_spare_room_to_flexible_columns():
    assert plan_columns(COLUMNS, 100, 2) == [("id", 3), ("peer", 10), ("state", 6), ("local", 10)]
    assert plan_columns(COLUMNS, 100, 2, {"peer": 25, "local": 30}) == [
        ("id", 3), ("peer", 25), ("state", 6), ("local", 30)]
    # 5 + 12 + 8 = 25: local (12) does not fit in 30, and nothing after a folded column shows.
    assert plan_columns(COLUMNS, 30, 2, {"peer": 25}) == [("id", 3), ("peer", 15), ("state", 6)]
    assert plan_columns(COLUMNS, 4, 2) == [("id", 3)]


def test_shorten_middle_keeps_the_start_and_the_port():
    assert shorten_middle("127.0.0.1:54321", 15) == "127.0.0.1:54321"
    assert shorten_middle("127.0.0.1:54321", 13) == f"127.0{ELLIPSIS}1:54321"
    short = shorten_middle("[2001:db8:85a3::8a2e:370:7334]:443", 17)
    assert len(short) == 17 and short == f"[2001:db{ELLIPSIS}334]:443"
    assert shorten_middle("abcdef", 1) == ELLIPSIS and shorten_middle("abcdef", 0) == ""


def test_rate_shows_at_the_first_sample_after_bytes_flow():
    meter = Throughput(100.0)
    assert meter.rate() is None
    meter.sample(100.25, 2500, 500)
    assert meter.rates() == (10_000.0, 2000.0)
    for step in range(1, 9):
        meter.sample(100.25 + step * 0.25, 2500, 500)  # silence
    assert meter.rate() == 0.0


def test_a_fixed_clock_gives_no_rate_and_keeps_the_bytes_for_later():
    meter = Throughput(5.0)
    meter.sample(5.0, 100, 0)
    meter.sample(5.0, 300, 0)
    assert meter.rate() is None
    meter.sample(5.5, 300, 0)
    assert meter.rate() == 600.0


def test_history_buckets_by_second_and_sparkline_draws_the_newest_at_the_right():
    meter = Throughput(0.0)
    meter.sample(0.5, 100, 0)
    meter.sample(3.2, 100, 400)
    history = meter.history()
    assert len(history) == 60 and history[-4:] == [100, 0, 0, 400]
    assert meter.history("in")[-4:] == [100, 0, 0, 0]
    assert sparkline([0, 1, 0, 8], 4) == f" {BLOCKS[0]} {BLOCKS[-1]}"
    assert sparkline([0] * 60, 6) == " " * 6
    assert len(sparkline(history, 8)) == 8 and sparkline(history, 8)[-1] == BLOCKS[-1]
    meter.sample(1000.0, 100, 400)  # a long silence empties the window
    assert meter.history() == [0] * 60


def test_both_is_cached_until_a_bucket_changes():
    meter = Throughput(0.0)
    meter.sample(0.2, 10, 0)
    first = meter.both()
    meter.sample(0.4, 10, 0)
    assert meter.both() is first  # nothing moved: the same tuple, no rebuild
    meter.sample(0.6, 15, 0)
    assert meter.both() is not first and meter.both()[-1] == 15
    before = meter.both()
    meter.sample(1.1, 15, 0)  # a new second shifts the window
    assert meter.both() is not before and meter.both()[-2:] == (15, 0)
