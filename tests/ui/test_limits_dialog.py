"""The new-listener dialog's limits and access fields, with real sockets."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import Collapsible, Input, Select, Static

from tcpbench.screens.main import MainScreen
from tcpbench.widgets.tables import ListenersTable
from tests.ui.helpers import fill_listener_dialog, make_app, until

pytestmark = pytest.mark.timeout(60)


def error_text(screen) -> str:
    return str(screen.query_one("#error", Static).render())


async def test_limits_from_the_dialog_turn_connections_away_and_count_them():
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        dialog = await fill_listener_dialog(pilot, "echo")
        dialog.query_one("#limits", Collapsible).collapsed = False
        await pilot.pause()
        dialog.query_one("#limit-deny", Input).value = "10.0.0.0/33"
        await pilot.click("#start")
        await until(pilot, lambda: "'10.0.0.0/33' is not an IPv4" in error_text(dialog), what="bad CIDR")
        assert app.screen is dialog and not app.manager.listeners
        dialog.query_one("#limit-deny", Input).value = "10.0.0.0/8, fd00::/8"
        dialog.query_one("#limit-max", Input).value = "1"
        dialog.query_one("#limit-idle", Input).value = "30"
        dialog.query_one("#limit-refuse", Select).value = "banner"
        dialog.query_one("#limit-banner", Input).value = "421 busy"
        # Enter in a field: a Button ignores a second click while it still shows the first.
        dialog.query_one("#port", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="dialog closed")
        listener = next(iter(app.manager.listeners.values()))
        assert listener.idle_timeout == 30 and listener.admission.max_conns == 1
        assert [str(n) for n in listener.admission.deny] == ["10.0.0.0/8", "fd00::/8"]
        held = await asyncio.open_connection("127.0.0.1", listener.port)
        await until(pilot, lambda: len(listener.sessions) == 1, what="one admitted")
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        assert await asyncio.wait_for(reader.read(), 5) == b"421 busy\r\n"
        writer.close()
        table = app.screen.query_one(ListenersTable)
        await until(pilot, lambda: table.get_cell(str(listener.id), "refused") is not None
                    and str(table.get_cell(str(listener.id), "refused")) == "1", what="count shown")
        await until(pilot, lambda: any("turned 127.0.0.1:" in n.message and "max-conns" in n.message
                                       for n in app._notifications), what="refusal notified")
        held[1].close()


async def test_the_limits_stay_folded_and_unset_by_default():
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        dialog = await fill_listener_dialog(pilot, "echo")
        assert dialog.query_one("#limits", Collapsible).collapsed
        await pilot.click("#start")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="dialog closed")
        listener = next(iter(app.manager.listeners.values()))
        assert listener.admission is None and listener.idle_timeout is None
        table = app.screen.query_one(ListenersTable)
        await until(pilot, lambda: str(table.get_cell(str(listener.id), "refused")) == "-", what="row")
