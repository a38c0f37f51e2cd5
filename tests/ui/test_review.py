"""Fixes found by driving the workbench as a person would (tmux, 80 and 100 columns)."""

from __future__ import annotations

import asyncio

from textual.widgets._footer import FooterKey

from tcpbench.ui_spec import ListenSpec
from tests.ui.helpers import make_app, until


async def test_the_palette_key_covers_the_last_footer_column_at_80_columns():
    # The compact footer's keys overflow at 80 columns; a 1-cell margin on the docked
    # palette key let the clipped "q Quit" show through as a stray "i".
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        width, height = app.size
        widget, _ = app.screen.get_widget_at(width - 1, height - 1)
        assert isinstance(widget, FooterKey) and widget.has_class("-command-palette"), widget


async def test_a_busy_port_at_startup_is_reported_once_not_twice():
    blocker = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    used = blocker.sockets[0].getsockname()[1]
    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", used)])
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: app._notifications, what="a notification")
            await until(pilot, lambda: not any(w.name == "start-up listeners" and w.is_running
                                               for w in app.workers), what="start-up done")
            await pilot.pause(0.2)
            texts = [n.message for n in app._notifications]
            assert sum("already in use" in text for text in texts) == 1, texts
    finally:
        blocker.close()
        await blocker.wait_closed()


async def test_after_a_search_the_footer_shows_n_and_a_second_escape_gives_n_back():
    from tcpbench.screens.dialogs import NewListenerDialog
    from tcpbench.widgets.bytelog import ByteLogView

    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.manager.listeners, what="listener")
        log = app.screen.query_one(ByteLogView)
        await pilot.press("slash", *"zzz", "enter", "escape")
        assert app.focused is log

        def footer_labels() -> list[str]:
            return [key.description for key in app.screen.query(FooterKey)]

        # While a search is remembered, n is "Next match" and the footer says so.
        await until(pilot, lambda: "Next match" in footer_labels(), what="n shown as next match")
        await pilot.press("n")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, NewListenerDialog)
        # A second Escape ends the search: n opens the listener dialog again.
        await pilot.press("escape")
        await until(pilot, lambda: "Listen" in footer_labels() and "Next match" not in footer_labels(),
                    what="n shown as listen")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, NewListenerDialog), what="listener dialog")


async def test_typing_a_port_in_the_connect_dialog_completes_the_prefilled_host():
    from textual.widgets import Input

    from tcpbench.screens.dialogs import ConnectDialog

    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    app = make_app()
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, ConnectDialog), what="connect dialog")
            await pilot.press(*str(port))
            assert app.screen.query_one("#address", Input).value == f"127.0.0.1:{port}"
            await pilot.press("enter")
            await until(pilot, lambda: len(app.manager.history) == 1, what="connected")
    finally:
        server.close()
        await server.wait_closed()


async def test_the_footer_does_not_offer_slash_search_while_typing_where_slash_types():
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()

        def footer_labels() -> list[str]:
            return [key.description for key in app.screen.query(FooterKey)]

        await until(pilot, lambda: "Search" in footer_labels(), what="search offered in the tables")
        await pilot.press("i")
        await until(pilot, lambda: "Line ending" in footer_labels(), what="send bar focused")
        assert "Search" not in footer_labels()
        await pilot.press("escape", "slash")
        await until(pilot, lambda: app.screen.query_one("#search").has_focus, what="search focused")
        await pilot.pause(0.1)
        assert "Search" not in footer_labels()
