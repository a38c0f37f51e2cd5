"""The byte log follows what is happening: the newest open connection until the person picks one.

Real clients on 127.0.0.1 against the app's own echo listener, driven as a person would.
"""

from __future__ import annotations

import asyncio

from tcpbench.ui_spec import ListenSpec
from tcpbench.widgets.bytelog import ByteLogView
from tcpbench.widgets.tables import ConnectionsTable
from tests.ui.helpers import cell, make_app, until


def log_text(app) -> str:
    log = app.screen.query_one(ByteLogView)
    return "\n".join(log.row_text(i) for i in range(log.row_count))


async def started(pilot):
    app = pilot.app
    await until(pilot, lambda: app.manager.listeners, what="--listen started")
    return next(iter(app.manager.listeners.values()))


async def connect(pilot, listener):
    """A real client; returns (reader, writer, session id) once its row is in the table."""
    app = pilot.app
    before = set(app.manager.history)
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    await until(pilot, lambda: set(app.manager.history) - before, what="accepted")
    (session_id,) = set(app.manager.history) - before
    table = app.screen.query_one(ConnectionsTable)
    await until(pilot, lambda: str(session_id) in table.rows, what="row shown")
    return reader, writer, session_id


async def say(reader, writer, line: bytes) -> None:
    writer.write(line)
    await writer.drain()
    assert await asyncio.wait_for(reader.readline(), 5) == line


async def leave(pilot, writer, session_id) -> None:
    writer.close()
    await writer.wait_closed()
    await until(pilot, lambda: cell(pilot.app, session_id, "state").startswith("closed"), what="ended shown")


async def hang_up(*writers) -> None:
    for writer in writers:
        writer.close()
        await writer.wait_closed()


def shown(app) -> int | None:
    return app.screen.query_one(ByteLogView).session_id


async def test_the_log_follows_the_newest_connection_after_an_earlier_one_ended():
    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    async with app.run_test(size=(120, 35)) as pilot:
        listener = await started(pilot)
        # A port check (nc -z): connect and leave at once.
        _, probe_writer, first = await connect(pilot, listener)
        await leave(pilot, probe_writer, first)
        assert shown(app) == first
        reader, writer, second = await connect(pilot, listener)
        await until(pilot, lambda: shown(app) == second, what="log on the second connection")
        await say(reader, writer, b"typed by the second client\n")
        await until(pilot, lambda: "typed by the second client" in log_text(app), what="its bytes")
        table = app.screen.query_one(ConnectionsTable)
        assert table.selected_key == second
        assert app.screen.target == ("session", second)
        assert "following the newest" in app.screen.query_one("#log-pane").border_subtitle
        await leave(pilot, writer, second)


async def test_a_short_exchange_is_shown_while_an_older_client_stays_open():
    # The lesson: the teacher's echo client stays open while a student runs the MOTD
    # example (connect, banner, FIN in a few ms). The log shows the student's exchange,
    # holds it, then goes back to the open client by itself.
    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0), ListenSpec("motd", "127.0.0.1", 0)])
    async with app.run_test(size=(120, 35)) as pilot:
        await until(pilot, lambda: len(app.manager.listeners) == 2, what="both listeners")
        echo, motd = sorted(app.manager.listeners.values(), key=lambda l: l.id)
        reader, writer, teacher = await connect(pilot, echo)
        await say(reader, writer, b"the teacher's line\n")
        await until(pilot, lambda: shown(app) == teacher, what="the teacher's client shown")
        student_reader, student_writer = await asyncio.open_connection("127.0.0.1", motd.port)
        banner = await asyncio.wait_for(student_reader.read(), 5)  # to the server's FIN
        assert banner
        student_writer.close()
        await student_writer.wait_closed()
        student = max(app.manager.history)
        await until(pilot, lambda: shown(app) == student, what="the student's exchange shown")
        await until(pilot, lambda: banner.decode().strip()[:10] in log_text(app),
                    what="the banner in the log")
        assert app.manager.history[teacher].state == "open"
        app.screen.follower.hold = 0.2  # the 8 s hold, shortened for the test
        await until(pilot, lambda: shown(app) == teacher, what="back to the open client")
        assert "following the newest" in app.screen.query_one("#log-pane").border_subtitle
        await hang_up(writer)


async def test_a_newcomer_does_not_take_the_line_being_typed():
    # A workshop: the teacher types a reply to student A; student B connects before Enter.
    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    async with app.run_test(size=(120, 35)) as pilot:
        listener = await started(pilot)
        reader_a, writer_a, a = await connect(pilot, listener)
        await until(pilot, lambda: shown(app) == a, what="following a")
        app.screen.query_one(ConnectionsTable).focus()
        await pilot.press("i", *"abc")
        _, writer_b, b = await connect(pilot, listener)
        await until(pilot, lambda: shown(app) == b, what="the log follows b")
        for _ in range(5):  # several table syncs with b the newest
            app.screen.sync()
            await pilot.pause()
        assert app.screen.target == ("session", a)
        await pilot.press("enter")
        assert await asyncio.wait_for(reader_a.readline(), 5) == b"abc\n"  # a got it, echoed
        # Leaving the bar lets its target follow the log again.
        await pilot.press("escape")
        await until(pilot, lambda: app.screen.target == ("session", b), what="the bar follows b")
        await hang_up(writer_a, writer_b)


async def test_a_picked_connection_stays_shown_when_new_ones_arrive():
    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    async with app.run_test(size=(120, 35)) as pilot:
        listener = await started(pilot)
        reader_a, writer_a, a = await connect(pilot, listener)
        _, writer_b, b = await connect(pilot, listener)
        await until(pilot, lambda: shown(app) == b, what="following b")
        table = app.screen.query_one(ConnectionsTable)
        table.focus()
        await pilot.press("up")  # the person picks a, the row above
        await until(pilot, lambda: shown(app) == a, what="a picked")
        _, writer_c, c = await connect(pilot, listener)
        await say(reader_a, writer_a, b"still on a\n")
        await until(pilot, lambda: "still on a" in log_text(app), what="a's bytes")
        for _ in range(10):  # several table syncs with c live
            app.screen.sync()
            await pilot.pause()
        assert shown(app) == a and table.selected_key == a
        assert "picked" in app.screen.query_one("#log-pane").border_subtitle
        # A click on b's row is a pick too (row 0 is the header).
        await pilot.click("#connections", offset=(5, 1 + table.get_row_index(str(b))))
        await until(pilot, lambda: shown(app) == b, what="b clicked")
        _, writer_d, d = await connect(pilot, listener)
        for _ in range(10):
            app.screen.sync()
            await pilot.pause()
        assert shown(app) == b and table.selected_key == b
        # w: follow the newest again.
        await pilot.press("w")
        await until(pilot, lambda: shown(app) == d, what="following again")
        await hang_up(writer_a, writer_b, writer_c, writer_d)


async def test_a_workshop_of_five_students_one_after_another_needs_no_key():
    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    async with app.run_test(size=(120, 35)) as pilot:
        listener = await started(pilot)
        for student in range(1, 6):
            reader, writer, session_id = await connect(pilot, listener)
            await until(pilot, lambda: shown(app) == session_id, what=f"student {student} shown")
            line = f"hello from student {student}\n".encode()
            await say(reader, writer, line)
            await until(pilot, lambda: f"hello from student {student}" in log_text(app),
                        what=f"student {student}'s line on screen")
            assert f"student {student - 1}" not in log_text(app) or student == 1
            await leave(pilot, writer, session_id)
            assert shown(app) == session_id  # the ended one stays until the next arrives


async def test_the_log_says_when_the_picked_connection_is_no_longer_listed(monkeypatch):
    from tcpbench.widgets import tables

    monkeypatch.setattr(tables, "MAX_ENDED_ROWS", 3)  # 3 ended rows instead of 200: a bounded test
    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    async with app.run_test(size=(120, 35)) as pilot:
        listener = await started(pilot)
        reader, writer, picked = await connect(pilot, listener)
        await say(reader, writer, b"the picked one\n")
        main = app.screen
        table = main.query_one(ConnectionsTable)
        table.focus()
        await pilot.press("enter")  # an explicit pick (and it opens the detail view)
        await until(pilot, lambda: app.screen is not main, what="the detail view")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is main, what="back on the main screen")
        await leave(pilot, writer, picked)
        pane = app.screen.query_one("#log-pane")
        for _ in range(4):
            _, other, session_id = await connect(pilot, listener)
            await leave(pilot, other, session_id)
        await until(pilot, lambda: str(picked) not in table.rows, what="row dropped")
        await until(pilot, lambda: f"connection #{picked} is no longer listed" in pane.border_title,
                    what="the log says so")
        assert "only the newest 3 ended connections are kept" in pane.border_title
        assert shown(app) == picked and "the picked one" in log_text(app)
        # Following again shows a listed connection, and the title is plain again.
        await pilot.press("w")
        await until(pilot, lambda: pane.border_title == "Byte log", what="title back")
        assert str(shown(app)) in table.rows


async def test_timestamps_are_local_time_by_default_and_u_switches_to_utc(monkeypatch):
    import time as time_module

    monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+05:30 all year: local and UTC always differ
    time_module.tzset()
    try:
        fixed = 1_700_000_000.0  # 22:13:20 UTC, 03:43:20 in Kolkata
        app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)], clock=lambda: fixed)
        async with app.run_test(size=(120, 35)) as pilot:
            listener = await started(pilot)
            reader, writer, _ = await connect(pilot, listener)
            await say(reader, writer, b"what time is it\n")
            await until(pilot, lambda: "what time is it" in log_text(app), what="bytes shown")
            log = app.screen.query_one(ByteLogView)
            pane = app.screen.query_one("#log-pane")
            # The view's clock is fixed at start-up: every row is within seconds of it.
            assert log.row_text(0).startswith("03:43:"), log.row_text(0)
            await until(pilot, lambda: "local time" in pane.border_subtitle, what="status local")
            await pilot.press("u")
            assert log.utc and log.row_text(0).startswith("22:13:")
            await until(pilot, lambda: "UTC" in pane.border_subtitle, what="status UTC")
            writer.close()
            await writer.wait_closed()
        app = make_app(utc=True)
        async with app.run_test(size=(120, 35)):
            assert app.screen.query_one(ByteLogView).utc
    finally:
        monkeypatch.delenv("TZ")
        time_module.tzset()


async def test_a_pick_holds_when_the_screen_is_busy_before_the_move_arrives():
    # A storm of connections can keep the screen busy for many ticks between a key and
    # the cursor move it causes: the move must still count as the person's pick, and the
    # syncs meanwhile must not put the cursor back on the followed connection.
    from textual import events

    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    async with app.run_test(size=(120, 35)) as pilot:
        listener = await started(pilot)
        _, writer_a, a = await connect(pilot, listener)
        _, writer_b, b = await connect(pilot, listener)
        await until(pilot, lambda: shown(app) == b, what="following b")
        main = app.screen
        table = main.query_one(ConnectionsTable)
        table.focus()
        await pilot.pause()
        # What pressing "up" does, with ten ticks before the screen sees the move.
        main.on_key(events.Key("up", None))
        table.action_cursor_up()
        for _ in range(10):
            main._on_tick()
            assert table.selected_key == a, "a sync put the cursor back before the move arrived"
        await until(pilot, lambda: shown(app) == a, what="a picked")
        assert table.person_moves_in_flight == 0
        for _ in range(10):
            main.sync()
            await pilot.pause()
        assert shown(app) == a and table.selected_key == a
        assert "picked" in main.query_one("#log-pane").border_subtitle
        await hang_up(writer_a, writer_b)


async def test_the_tables_own_cursor_moves_are_told_from_the_persons():
    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    async with app.run_test(size=(120, 35)) as pilot:
        listener = await started(pilot)
        _, writer_a, a = await connect(pilot, listener)
        _, writer_b, b = await connect(pilot, listener)
        await until(pilot, lambda: shown(app) == b, what="following b")
        table = app.screen.query_one(ConnectionsTable)
        seen = []
        real = table.post_message

        def spy(message):
            if type(message).__name__ == "RowHighlighted":
                seen.append(message)
            return real(message)

        table.post_message = spy
        with table.moving_itself():  # what a sync or the follower does
            table.move_cursor(row=table.get_row_index(str(a)))
        table.move_cursor(row=table.get_row_index(str(b)))  # what a key does
        assert len(seen) == 2 and table.person_moves_in_flight == 1
        await until(pilot, lambda: table.person_moves_in_flight == 0, what="the moves handled")
        # The program's move to a picked nothing; the person's move to b did. The log's
        # status line is redrawn at the screen's next sync, not as the move is handled.
        assert shown(app) == b and not app.screen.follower.following
        pane = app.screen.query_one("#log-pane")
        await until(pilot, lambda: "picked" in pane.border_subtitle, what="the status says picked")
        assert not table.highlighted_by_itself(seen[0])  # each is told once, as it arrives
        await hang_up(writer_a, writer_b)
