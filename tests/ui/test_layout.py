"""Responsive tables on the rendered screen: at 80, 120, 160 and 200 columns nothing is cut off.

Real listeners on 127.0.0.1 and ::1 (when the host has IPv6 loopback) and real
clients; the checks read the cells as the compositor drew them, not the
widgets' data, so a column pushed out of view or a value cut at the end fails.
"""

from __future__ import annotations

import asyncio
import socket

import pytest

from tcpbench.engine.events import format_address
from tcpbench.engine.registry import build_service
from tcpbench.widgets.columns import ELLIPSIS
from tcpbench.widgets.tables import ConnectionsTable, ListenersTable
from tests.ui.helpers import make_app, until

pytestmark = pytest.mark.timeout(60)


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


def screen_lines(app) -> list[str]:
    return ["".join(segment.text for segment in strip)
            for strip in app.screen._compositor.render_strips()]


def table_lines(app, table) -> list[str]:
    """The table's part of each rendered screen line, header first."""
    region = table.region
    lines = screen_lines(app)
    return [lines[y][region.x:region.right] for y in range(region.y, region.bottom)]


def cells_of(line: str, widths: list[int], padding: int) -> list[str]:
    """Split a rendered row into its cells by the planned column widths."""
    cells, x = [], 0
    for width in widths:
        cells.append(line[x + padding:x + padding + width])
        x += width + 2 * padding
    return cells


def check_table(app, table, priority: list[str], labels: dict[str, str]) -> dict[str, int]:
    """Assert the rendered table shows whole values in every visible column; return them."""
    shown = table.visible_columns
    keys = list(shown)
    # The least important columns fold first: what shows is a prefix of the priority order.
    assert keys == priority[:len(keys)]
    padding = table.cell_padding
    total = sum(width + 2 * padding for width in shown.values())
    # No overflow: every column fits the table beside the (reserved) scrollbar.
    assert total <= table.size.width - table.styles.scrollbar_size_vertical
    assert table.virtual_size.width <= table.scrollable_content_region.width
    lines = table_lines(app, table)
    header = cells_of(lines[0], list(shown.values()), padding)
    assert [cell.strip() for cell in header] == [labels[key] for key in keys]
    for row_index, row_key in enumerate(table.rows):
        rendered = cells_of(lines[1 + row_index], list(shown.values()), padding)
        for key, cell in zip(keys, rendered):
            value = table.value(int(row_key.value), key)
            if key == "spark":
                assert len(cell) == shown[key]
                continue
            text = cell.rstrip()
            if text == value:
                continue
            # Only a flexible (address) column may shorten, and then in the middle, keeping the port.
            assert key in ("peer", "local", "address"), (key, value, cell)
            assert ELLIPSIS in text and len(text) == shown[key], (key, value, cell)
            head, tail = text.split(ELLIPSIS)
            assert value.startswith(head) and value.endswith(tail) and ":" in tail, (value, text)
    return shown


CONNECTION_KEYS = [column.key for column in ConnectionsTable.COLUMNS]
CONNECTION_LABELS = {column.key: column.label for column in ConnectionsTable.COLUMNS}
LISTENER_KEYS = [column.key for column in ListenersTable.COLUMNS]
LISTENER_LABELS = {column.key: column.label for column in ListenersTable.COLUMNS}


@pytest.mark.parametrize("size, at_least", [
    ((80, 24), "rate"),      # id, peer, state, in, out, age, rate
    ((120, 35), "spark"),    # everything
    ((160, 45), "spark"),
    ((200, 50), "local"),    # side by side: the connections table gets 3/5
])
async def test_no_column_is_cut_at_common_sizes(size, at_least):
    ipv6 = has_ipv6_loopback()
    app = make_app()
    writers = []
    async with app.run_test(size=size) as pilot:
        manager = app.manager
        listeners = app.screen.query_one(ListenersTable)
        hosts = ["127.0.0.1"] + (["::1"] if ipv6 else [])
        for host in hosts:
            listener = await manager.start_listener(build_service("echo"), host, 0)
            listeners.track(listener)
            reader, writer = await asyncio.open_connection(host, listener.port)
            writer.write(b"x" * 1500)
            await writer.drain()
            await reader.readexactly(1500)
            writers.append(writer)
        table = app.screen.query_one(ConnectionsTable)
        await until(pilot, lambda: table.row_count == len(hosts)
                    and all(table.value(i, "in") == "1.5K" for i in manager.history), what="rows")
        await pilot.pause(0.3)

        shown = check_table(app, table, CONNECTION_KEYS, CONNECTION_LABELS)
        assert at_least in shown, shown
        listener_columns = check_table(app, listeners, LISTENER_KEYS, LISTENER_LABELS)
        assert list(listener_columns) == LISTENER_KEYS  # the listeners table fits whole everywhere

        for writer in writers:
            writer.close()
        await until(pilot, lambda: all(table.value(i, "state") == "closed by peer"
                                       for i in manager.history), what="closed rows")
        await pilot.pause(0.3)
        check_table(app, table, CONNECTION_KEYS, CONNECTION_LABELS)  # the widest state fits too


async def test_a_long_address_is_shortened_in_the_middle_and_grows_back_with_width():
    # A formatter that shows our client's address as long as a full IPv6 one: the
    # socket is a real one on 127.0.0.1, only its text is long.
    long_peer = "[2001:db8:85a3:1234:5678:8a2e:370:7334]:54321"
    client_ports: set[int] = set()

    def formatter(address):
        return long_peer if address and address[1] in client_ports else format_address(address)

    app = make_app(address_formatter=formatter)
    async with app.run_test(size=(80, 24)) as pilot:
        listener = await app.manager.start_listener(build_service("echo"), "127.0.0.1", 0)
        _reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        client_ports.add(writer.get_extra_info("sockname")[1])
        table = app.screen.query_one(ConnectionsTable)
        session_id = 1
        await until(pilot, lambda: table.value(session_id, "peer") == long_peer, what="row")
        await pilot.pause(0.3)
        shown = check_table(app, table, CONNECTION_KEYS, CONNECTION_LABELS)
        rendered = table_lines(app, table)[1]
        assert f"[2001:{ELLIPSIS}" in rendered and ELLIPSIS in rendered and ":54321" in rendered
        assert shown["peer"] < len(long_peer)

        await pilot.resize_terminal(160, 45)
        await until(pilot, lambda: table.visible_columns.get("peer") == len(long_peer),
                    what="the peer column widened to the whole address")
        await pilot.pause(0.3)
        check_table(app, table, CONNECTION_KEYS, CONNECTION_LABELS)
        assert long_peer in table_lines(app, table)[1]
        writer.close()


@pytest.mark.parametrize("size, per_row", [((80, 24), 8), ((200, 50), 16)])
async def test_hex_rows_fit_the_log_width(size, per_row):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        from tcpbench.widgets.bytelog import ByteLogView

        listener = await app.manager.start_listener(build_service("echo"), "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        payload = bytes(range(256)) * 2  # enough rows for the log's scrollbar to show
        writer.write(payload)
        await writer.drain()
        await reader.readexactly(len(payload))
        table = app.screen.query_one(ConnectionsTable)
        await until(pilot, lambda: table.value(1, "in") == "512", what="bytes counted")
        table.focus()
        await pilot.press("h")
        log = app.screen.query_one(ByteLogView)
        await until(pilot, lambda: log.mode == "hex" and log.row_count > 2 * len(payload) // 16,
                    what="hex rows")
        await pilot.pause(0.3)
        assert log.hex_width == per_row
        region = log.scrollable_content_region  # without the scrollbar
        lines = screen_lines(app)
        rows = [lines[y][region.x:region.right] for y in range(region.y, region.bottom)]
        hex_rows = [row for row in rows if "|" in row]
        assert len(hex_rows) >= 3
        for row in hex_rows:
            # The whole row (offset, every hex byte, the ASCII column and its closing bar) is visible.
            body = row.rstrip()
            assert body.endswith("|"), row
            _offset, hex_part, ascii_part = _split_hex(body)
            assert len(hex_part.split()) == per_row, row
            assert len(ascii_part) == per_row, row
        writer.close()
        await writer.wait_closed()


def _split_hex(body: str) -> tuple[str, str, str]:
    """`... 000000a0  a0 a1 ...  |....|` -> (offset, hex bytes, ascii)."""
    start = body.index("|")
    ascii_part = body[start + 1:-1]
    before = body[:start].rstrip()
    marker = before.index("  ", before.index("< ") if "< " in before else before.index("> "))
    offset = before[:marker].split()[-1]
    return offset, before[marker:].strip(), ascii_part


def pane_heights(app) -> tuple[int, int, int]:
    return tuple(app.screen.query_one(f"#{pane}-pane").region.height
                 for pane in ("listeners", "connections", "log"))


def panes_fit(heights: tuple[int, int, int], rows: int) -> bool:
    # The tables take 45% of the height (at least what shows a header and a few rows of
    # each), connections the larger part; the byte log takes the rest.
    listeners, connections, log = heights
    return (listeners + connections == max(11, rows * 45 // 100)
            and 5 <= listeners <= connections and connections >= 6 and log >= 4)


@pytest.mark.parametrize("rows", [24, 30, 40, 60])
async def test_the_table_panes_grow_with_the_terminal_height(rows):
    app = make_app()
    async with app.run_test(size=(120, rows)) as pilot:
        await pilot.pause()
        assert panes_fit(pane_heights(app), rows), (pane_heights(app), rows)


async def test_the_table_panes_follow_a_resized_terminal():
    # A teacher maximises the window on the projector after starting: the tables grow too.
    app = make_app()
    async with app.run_test(size=(120, 24)) as pilot:
        await pilot.pause()
        for rows in (60, 40, 30, 24):
            await pilot.resize_terminal(120, rows)
            await until(pilot, lambda: panes_fit(pane_heights(app), rows),
                        what=f"panes sized for {rows} rows")
