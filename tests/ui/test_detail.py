"""The connection detail view: every field, live, over real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import Sparkline

from tcpbench.engine.registry import build_service
from tcpbench.screens.detail import FIELDS, ConnectionDetail
from tcpbench.screens.main import MainScreen
from tcpbench.widgets.tables import ConnectionsTable
from tests.ui.helpers import make_app, until

pytestmark = pytest.mark.timeout(60)


def rendered(app) -> str:
    return "\n".join("".join(segment.text for segment in strip)
                     for strip in app.screen._compositor.render_strips())


async def test_detail_view_shows_every_field_live_and_how_it_ended():
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        listener = await app.manager.start_listener(build_service("echo"), "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        local_port = writer.get_extra_info("sockname")[1]
        table = app.screen.query_one(ConnectionsTable)
        await until(pilot, lambda: table.row_count == 1, what="row")
        table.focus()
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, ConnectionDetail), what="detail open")
        detail = app.screen
        values = detail.values()
        assert list(values) == list(FIELDS)
        # At 80 columns the table folds `from` and `local`; here they are.
        assert values["peer"] == f"127.0.0.1:{local_port}"
        assert values["local"] == f"127.0.0.1:{listener.port}"
        assert values["listener"] == f"L{listener.id} echo on 127.0.0.1:{listener.port}"
        assert values["state"] == "open" and values["closed first"] == "nobody yet"
        screen = rendered(app)
        for field in FIELDS:
            assert field in screen
        assert f"127.0.0.1:{listener.port}" in screen

        # Bytes flow while the view is open: it follows them, rate and sparkline included.
        writer.write(b"z" * 3000)
        await writer.drain()
        await reader.readexactly(3000)
        await until(pilot, lambda: "(3,000 bytes)" in detail.values()["received"], what="live bytes")
        await until(pilot, lambda: "rate -" not in detail.values()["sent"], what="a rate")
        await until(pilot, lambda: max(detail.query_one("#spark-in", Sparkline).data) == 3000,
                    what="the sparkline")
        await until(pilot, lambda: "(3,000 bytes)" in rendered(app), what="drawn")

        writer.close()
        await writer.wait_closed()
        await until(pilot, lambda: detail.values()["ended"] == "closed by peer", what="ended")
        assert detail.values()["closed first"].startswith("the peer")
        assert detail.values()["FIN"] == "from the peer: yes   from us: yes"

        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="closed")


async def test_enter_on_a_row_and_the_palette_open_the_detail_view():
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        listener = await app.manager.start_listener(build_service("echo"), "127.0.0.1", 0)
        _reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        table = app.screen.query_one(ConnectionsTable)
        await until(pilot, lambda: table.row_count == 1, what="row")
        table.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, ConnectionDetail), what="enter opens it")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="closed")
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Connection details" in titles
        writer.close()
        await writer.wait_closed()


async def test_rate_and_sparklines_appear_as_soon_as_bytes_flow():
    from tcpbench.widgets.header import TotalsHeader
    from tcpbench.widgets.throughput import BLOCKS

    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        listener = await app.manager.start_listener(build_service("echo"), "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        table = app.screen.query_one(ConnectionsTable)
        await until(pilot, lambda: table.row_count == 1, what="row")
        assert "spark" in table.visible_columns

        async def flow() -> None:
            while True:
                writer.write(b"f" * 2048)
                await writer.drain()
                await reader.readexactly(2048)
                await asyncio.sleep(0.01)

        started = asyncio.get_running_loop().time()
        flowing = asyncio.create_task(flow())
        try:
            def shown() -> bool:
                rate = table.value(1, "rate")
                return rate not in ("-", "0/s") and any(ch in BLOCKS for ch in table.get_cell("1", "spark").plain)
            await until(pilot, shown, timeout=5, what="a rate and a sparkline")
            elapsed = asyncio.get_running_loop().time() - started
            # The table syncs about 4 times a second; a figure must not wait for a full second.
            assert elapsed < 0.8, elapsed
            header = app.screen.query_one(TotalsHeader)
            await until(pilot, lambda: any(ch in BLOCKS for ch in str(header.render())), timeout=2,
                        what="the header's sparkline")
            assert "rate " in str(header.render()) and "rate -" not in str(header.render())
        finally:
            flowing.cancel()
            await asyncio.gather(flowing, return_exceptions=True)
        writer.close()
        await writer.wait_closed()
