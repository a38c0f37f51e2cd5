"""The workbench with real sockets on 127.0.0.1, driven through Pilot like a person would."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import Input

from tcpbench.screens.main import MainScreen
from tcpbench.ui_spec import ConnectSpec, ListenSpec
from tcpbench.widgets.bytelog import ByteLogView
from tcpbench.widgets.sendbar import SendBar
from tcpbench.widgets.tables import ConnectionsTable, ListenersTable
from tests.ui.helpers import cell, connect_via_dialog, make_app, start_listener, until


def log_text(app) -> str:
    log = app.screen.query_one(ByteLogView)
    return "\n".join(log.row_text(i) for i in range(log.row_count))


async def test_echo_listener_through_the_dialog_counts_and_logs_bytes():
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        listener = await start_listener(pilot, "echo")
        assert listener.address[0] == "127.0.0.1" and listener.port > 0
        listeners = app.screen.query_one(ListenersTable)
        await until(pilot, lambda: str(listener.id) in listeners.rows, what="listener row")

        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        payload = b"hello workbench\n" * 64
        writer.write(payload)
        await writer.drain()
        assert await reader.readexactly(len(payload)) == payload
        session_id = max(app.manager.history)
        await until(pilot, lambda: cell(app, session_id, "in") == "1.0K", what="bytes in shown")
        assert cell(app, session_id, "out") == "1.0K"
        assert cell(app, session_id, "state") == "open"
        assert cell(app, session_id, "origin") == "L1"
        await until(pilot, lambda: "hello workbench\\n" in log_text(app), what="bytes in the log")
        await until(pilot, lambda: listeners.get_cell(str(listener.id), "in").plain == "1.0K",
                    what="listener totals")

        writer.close()
        await writer.wait_closed()
        await until(pilot, lambda: cell(app, session_id, "state") == "closed by peer", what="closed shown")


async def test_connect_from_the_ui_and_type_into_the_send_bar():
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await received.put(await reader.readline())
        writer.close()

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    app = make_app()
    try:
        async with app.run_test(size=(120, 35)) as pilot:
            await connect_via_dialog(pilot, f"127.0.0.1:{port}")
            await until(pilot, lambda: isinstance(app.screen, MainScreen), what="dialog closed")
            session_id = max(app.manager.history)
            assert app.screen.target == ("session", session_id)
            await until(pilot, lambda: cell(app, session_id, "origin") == "client", what="client row")
            # The cursor is in the send bar at once: "EHLO x" goes to the peer; with the
            # table focused, its x would have closed the connection instead.
            bar = app.screen.query_one(SendBar)
            await until(pilot, lambda: app.focused is bar.input, what="the send bar focused")
            await pilot.press(*"EHLO x", "enter")
            assert await asyncio.wait_for(received.get(), 5) == b"EHLO x\n"
            await until(pilot, lambda: cell(app, session_id, "out") == "7", what="bytes out shown")
            assert not app.manager.history[session_id].our_fin  # x did not close it
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("key, outcome", [("f", "eof"), ("A", "reset")])
async def test_half_close_and_abort_are_seen_by_the_peer(key, outcome):
    results: asyncio.Queue[str] = asyncio.Queue()

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            data = await reader.read(100)
            await results.put("eof" if data == b"" else f"data {data!r}")
        except ConnectionResetError:
            await results.put("reset")
        writer.close()

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    app = make_app()
    try:
        async with app.run_test(size=(120, 35)) as pilot:
            await connect_via_dialog(pilot, f"127.0.0.1:{port}")
            await until(pilot, lambda: isinstance(app.screen, MainScreen), what="dialog closed")
            session_id = max(app.manager.history)
            await until(pilot, lambda: cell(app, session_id, "state") == "open", what="open row")
            app.screen.query_one(ConnectionsTable).focus()
            await pilot.press(key)
            assert await asyncio.wait_for(results.get(), 5) == outcome
            expected = {"eof": ("half-closed by us", "closing", "closed by us"), "reset": ("aborted by us",)}[outcome]
            await until(pilot, lambda: cell(app, session_id, "state") in expected,
                        what=f"state one of {expected}")
    finally:
        server.close()
        await server.wait_closed()


async def test_raw_listener_selected_makes_the_send_bar_talk_to_every_client():
    app = make_app(listen=[ListenSpec("raw", "127.0.0.1", 0)])
    async with app.run_test(size=(120, 35)) as pilot:
        await until(pilot, lambda: app.manager.listeners, what="--listen started")
        listener = next(iter(app.manager.listeners.values()))
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        await until(pilot, lambda: len(listener.sessions) == 1, what="client accepted")
        table = app.screen.query_one(ListenersTable)
        await until(pilot, lambda: table.row_count == 1, what="listener row")
        table.focus()
        await pilot.press("down", "up")
        await until(pilot, lambda: app.screen.target == ("listener", listener.id), what="listener target")
        assert "raw" in app.screen.query_one(SendBar).target_label
        await pilot.press("i", *"to all", "enter")
        assert await asyncio.wait_for(reader.readline(), 5) == b"to all\n"
        writer.close()
        await writer.wait_closed()


async def test_startup_flags_open_listeners_and_report_failures_without_dying():
    blocker = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    used = blocker.sockets[0].getsockname()[1]
    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0), ListenSpec("echo", "127.0.0.1", used)],
                   connect=[ConnectSpec("127.0.0.1", used)])
    try:
        async with app.run_test(size=(120, 35)) as pilot:
            await until(pilot, lambda: len(app._notifications) >= 2, what="two notifications")
            texts = [n.message for n in app._notifications]
            assert any("already in use" in text for text in texts)
            assert any("listening on" in text for text in texts)
            assert len(app.manager.listeners) == 1
            await until(pilot, lambda: len(app.manager.history) == 1, what="--connect session")
            assert app.is_running
    finally:
        blocker.close()
        await blocker.wait_closed()


async def test_peer_markup_and_escapes_never_reach_the_screen_raw():
    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    app.pwned = False
    app.action_pwned = lambda: setattr(app, "pwned", True)  # type: ignore[attr-defined]
    async with app.run_test(size=(120, 35)) as pilot:
        await until(pilot, lambda: app.manager.listeners, what="listener")
        listener = next(iter(app.manager.listeners.values()))
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        payload = b"[@click=app.pwned]CLICK[/] [/bold] \x1b]52;c;aGk=\x07 \x9b2J" + bytes(range(256))
        writer.write(payload)
        await writer.drain()
        await reader.readexactly(len(payload))
        await until(pilot, lambda: "CLICK" in log_text(app), what="payload in the log")
        await pilot.pause(0.1)
        log = app.screen.query_one(ByteLogView)
        await pilot.click(log)
        screen_text = "".join(strip.text for strip in app.screen._compositor.render_strips())
        assert "\x1b" not in screen_text and "\x9b" not in screen_text and "\x07" not in screen_text
        assert not app.pwned and app.is_running
        writer.close()
        await writer.wait_closed()


async def test_log_views_toggle_and_search():
    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    async with app.run_test(size=(120, 35)) as pilot:
        await until(pilot, lambda: app.manager.listeners, what="listener")
        listener = next(iter(app.manager.listeners.values()))
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(b"needle in a haystack\n")
        await reader.readline()
        log = app.screen.query_one(ByteLogView)
        await until(pilot, lambda: log.session_id is not None, what="session selected")
        app.screen.query_one(ConnectionsTable).focus()
        await pilot.press("h")
        assert log.mode == "hex"
        await pilot.press("h", "t")
        assert log.mode == "text" and log.show_timestamps is False
        await pilot.press("v")
        assert log.session_id is None
        await pilot.press("v")
        assert log.session_id == max(app.manager.history)
        await pilot.press("slash")
        search = app.screen.query_one("#search", Input)
        assert search.display and app.focused is search
        await pilot.press(*"needle", "enter")
        assert not any("not found" in n.message for n in app._notifications)
        search.value = "absent-word"
        await pilot.press("enter")
        assert any("not found" in n.message for n in app._notifications)
        await pilot.press("escape")
        assert not search.display
        # / again: the last query is there, selected, so typing replaces it and Enter repeats it.
        await pilot.press("slash")
        await until(pilot, lambda: app.focused is search, what="search focused again")
        assert search.value == "absent-word"
        assert search.selection == (0, len("absent-word")), search.selection
        await pilot.press(*"haystack")
        assert search.value == "haystack"
        writer.close()
        await writer.wait_closed()


async def test_stop_listener_asks_when_it_has_connections():
    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    async with app.run_test(size=(120, 35)) as pilot:
        await until(pilot, lambda: app.manager.listeners, what="listener")
        listener = next(iter(app.manager.listeners.values()))
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        await until(pilot, lambda: listener.sessions, what="accepted")
        table = app.screen.query_one(ListenersTable)
        await until(pilot, lambda: table.row_count == 1, what="row")
        table.focus()
        await pilot.press("s")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmDialog", what="confirm")
        await pilot.press("y")
        assert await asyncio.wait_for(reader.read(), 5) == b""
        await until(pilot, lambda: table.get_cell(str(listener.id), "state").plain == "stopped",
                    what="stopped shown")
        writer.close()
        await writer.wait_closed()


async def test_q_asks_first_while_anything_is_open_and_ctrl_q_does_not():
    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    async with app.run_test(size=(120, 35)) as pilot:
        await until(pilot, lambda: app.manager.listeners, what="listener")
        app.screen.query_one(ConnectionsTable).focus()
        await pilot.press("q")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmDialog", what="asked")
        assert "1 listener and 0 connections" in str(app.screen.question)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="back")
        assert app.is_running and app.manager.listeners
        await pilot.press("q")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConfirmDialog", what="asked again")
        await pilot.press("y")
        await until(pilot, lambda: not app.is_running, what="quit")
    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    async with app.run_test(size=(120, 35)) as pilot:
        await until(pilot, lambda: app.manager.listeners, what="listener")
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running, what="quit without asking")
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running, what="nothing open: quit at once")


async def test_help_and_command_palette_list_the_actions():
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.press("question_mark")
        await until(pilot, lambda: app.screen.__class__.__name__ == "HelpScreen", what="help")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="back")
        titles = {command.title for command in app.get_system_commands(app.screen)}
        assert {"New listener", "Connect", "Abort (RST)", "Half-close (FIN)", "Probe ports"} <= titles


async def test_probe_and_probe_this_listener_open_the_probe_screen():
    from tcpbench.screens.probe import ProbeScreen

    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    async with app.run_test(size=(120, 35)) as pilot:
        await until(pilot, lambda: app.manager.listeners, what="listener")
        listener = next(iter(app.manager.listeners.values()))
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, ProbeScreen), what="probe screen")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="back")
        table = app.screen.query_one(ListenersTable)
        await until(pilot, lambda: table.row_count == 1, what="listener row")
        table.focus()
        await pilot.press("P")
        await until(pilot, lambda: isinstance(app.screen, ProbeScreen), what="probe this listener")
        assert str(listener.port) in str(app.screen.query_one("#probe-ports", Input).value)


async def test_a_failed_background_task_becomes_a_notification_not_a_crash():
    app = make_app()

    async def broken() -> None:
        raise OSError("simulated failure")

    async with app.run_test(size=(100, 30)) as pilot:
        app.run_worker(broken(), name="demo task", exit_on_error=False)
        await until(pilot, lambda: any("demo task failed" in n.message for n in app._notifications),
                    what="notification")
        assert app.is_running


async def test_a_burst_of_resets_is_one_or_two_notifications_not_a_toast_storm():
    import re
    import socket
    import struct

    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.manager.listeners, what="listener")
        listener = next(iter(app.manager.listeners.values()))
        for _ in range(10):
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            writer.write(b"x")
            await reader.readexactly(1)
            writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                                       struct.pack("ii", 1, 0))
            writer.close()
            await writer.wait_closed()

        def reported() -> int:
            total = 0
            for note in app._notifications:
                if note.title == "connection reset":
                    match = re.match(r"(\d+) connections", note.message)
                    total += int(match.group(1)) if match else 1
            return total

        await until(pilot, lambda: reported() == 10, what="all resets reported")
        assert sum(n.title == "connection reset" for n in app._notifications) <= 2
