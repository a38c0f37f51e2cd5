"""The connections table keeps the newest ended rows and drops the rest in one pass."""

from __future__ import annotations

import socket

from tcpbench.engine.registry import build_service
from tcpbench.widgets import tables
from tcpbench.widgets.tables import ConnectionsTable
from tests.ui.helpers import make_app, until


def _row_ids(table: ConnectionsTable) -> list[int]:
    return [int(row.key.value) for row in table.ordered_rows]


async def test_only_the_newest_ended_rows_stay_in_order_and_the_cursor_still_works(monkeypatch):
    monkeypatch.setattr(tables, "MAX_ENDED_ROWS", 5)
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        table = app.screen.query_one(ConnectionsTable)
        listener = await app.manager.start_listener(build_service("echo"), "127.0.0.1", 0)
        live = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
        try:
            await until(pilot, lambda: len(_row_ids(table)) == 1, what="the live row")
            live_id = _row_ids(table)[0]
            for round_ in range(12):  # one at a time: each gets its row before it ends
                before = listener.accepted
                with socket.create_connection(("127.0.0.1", listener.port), timeout=5):
                    await until(pilot, lambda: listener.accepted > before and
                                len(table.rows) == min(round_, 5) + 2, what="a row each")
                await until(pilot, lambda: listener.sessions <= {live_id}, what="it ended")
            ended = sorted(s for s in app.manager.history if s != live_id)
            await until(pilot, lambda: _row_ids(table) == [live_id, *ended[-5:]],
                        what="the live row and the newest 5 ended, in order")
            for _ in range(6):
                await pilot.press("down")
            assert table.selected_key == ended[-1]
            await pilot.press("up")
            assert table.selected_key == ended[-2]
        finally:
            live.close()


async def test_a_burst_that_ended_between_two_syncs_adds_only_its_newest_rows(monkeypatch):
    monkeypatch.setattr(tables, "MAX_NEW_ENDED_ROWS", 4)
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        table = app.screen.query_one(ConnectionsTable)
        screen = app.screen
        screen._sync_timer.pause()  # the burst happens between two syncs
        listener = await app.manager.start_listener(build_service("echo"), "127.0.0.1", 0)
        for _ in range(10):
            socket.create_connection(("127.0.0.1", listener.port), timeout=5).close()
        await until(pilot, lambda: listener.accepted == 10 and not listener.sessions,
                    what="all ten came and went")
        screen._sync_timer.resume()
        ids = sorted(app.manager.history)
        await until(pilot, lambda: _row_ids(table) == ids[-4:], what="the newest four rows")
        assert listener.accepted == 10  # the counts keep every one
