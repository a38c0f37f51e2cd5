"""Selecting a listener shows its view: every connection's bytes and events, and the
listener-wide notes, merged in time order and tagged with their connection."""

from __future__ import annotations

import asyncio
import re

from tcpbench.ui_spec import ListenSpec
from tcpbench.widgets.bytelog import ByteLogView
from tcpbench.widgets.tables import ConnectionsTable, ListenersTable
from tests.ui.helpers import make_app, until


def log_rows(app) -> list[str]:
    """The rows without their timestamps: 'TAG MARKER BODY'."""
    log = app.screen.query_one(ByteLogView)
    return [TIME.sub("", log.row_text(i)) for i in range(log.row_count)]


TIME = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} ")


async def read_until(reader, needle: bytes) -> bytes:
    data = b""
    while needle not in data:
        chunk = await asyncio.wait_for(reader.read(4096), 5)
        assert chunk, f"EOF before {needle!r}"
        data += chunk
    return data


async def test_chat_listener_view_shows_joins_lines_by_connection_and_the_operator():
    app = make_app(listen=[ListenSpec("chat", "127.0.0.1", 0)])
    async with app.run_test(size=(120, 35)) as pilot:
        await until(pilot, lambda: app.manager.listeners, what="--listen started")
        listener = next(iter(app.manager.listeners.values()))
        table = app.screen.query_one(ListenersTable)
        await until(pilot, lambda: table.row_count == 1, what="listener row")
        table.focus()
        log = app.screen.query_one(ByteLogView)
        await until(pilot, lambda: log.listener_id == listener.id, what="listener view")

        reader1, writer1 = await asyncio.open_connection("127.0.0.1", listener.port)
        await read_until(reader1, b"\n")
        await until(pilot, lambda: len(listener.sessions) == 1, what="first joined")
        (first,) = listener.sessions
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", listener.port)
        await read_until(reader1, b"joined")
        (second,) = listener.sessions - {first}
        writer1.write(b"hello from one\n")
        await read_until(reader2, b"hello from one")
        writer2.write(b"hi from two\n")
        await read_until(reader1, b"hi from two")
        # The operator types into the listener (the send bar's target is the room).
        assert app.screen.target == ("listener", listener.id)
        await pilot.press("i", *"operator here", "enter")
        await read_until(reader2, b"operator here")
        await until(pilot, lambda: any("operator here" in row and row.split()[0] == f"L{listener.id}"
                                       for row in log_rows(app)), what="operator line in the view")
        rows = log_rows(app)
        text = "\n".join(rows)

        def at(predicate, what: str) -> int:
            for i, row in enumerate(rows):
                if predicate(row):
                    return i
            raise AssertionError(f"{what} not in the listener view:\n{text}")

        tag = lambda row: row.split()[0]  # noqa: E731  rows start with their connection's tag
        joined = at(lambda r: tag(r) == f"#{second}" and "* " in r and "joined" in r, "second's join")
        one = at(lambda r: tag(r) == f"#{first}" and r.split()[1] == "<" and "hello from one" in r,
                 "first's line, received")
        two = at(lambda r: tag(r) == f"#{second}" and r.split()[1] == "<" and "hi from two" in r,
                 "second's line, received")
        operator = at(lambda r: tag(r) == f"L{listener.id}" and "operator here" in r, "operator line")
        assert joined < one < two < operator, text
        # The second client's copy of the first one's line is tagged with the second connection.
        at(lambda r: tag(r) == f"#{second}" and r.split()[1] == ">" and "hello from one" in r,
           "the line sent on to the second client")
        assert "listener L1 (chat)" in app.screen.query_one("#log-pane").border_subtitle

        # The leave shows too (told while its session still lives, so in that session's rows).
        writer1.close()
        await writer1.wait_closed()
        await until(pilot, lambda: any("left" in row for row in log_rows(app)), what="leave shown")
        # Back in the connections table, the log shows a connection again.
        app.screen.query_one(ConnectionsTable).focus()
        await until(pilot, lambda: log.listener_id is None and log.session_id == second,
                    what="connection view again")
        writer2.close()
        await writer2.wait_closed()
