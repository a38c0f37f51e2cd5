"""exec from the dialog needs exactly one opt-in; Escape hands the keys back to the screen."""

from __future__ import annotations

import asyncio

from textual.widgets import Checkbox

from tcpbench.screens.dialogs import NewListenerDialog
from tcpbench.screens.main import MainScreen
from tcpbench.widgets.bytelog import ByteLogView
from tcpbench.widgets.sendbar import SendBar
from tests.ui.helpers import fill_listener_dialog, make_app, until


async def test_exec_runs_after_one_opt_in_tick() -> None:
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        dialog = await fill_listener_dialog(pilot, "exec")
        assert not dialog.query("#opt-allow_exec"), "the dialog's tick stands for --allow-exec"
        command = dialog.query_one("#opt-command")
        command.value = "cat"
        command.focus()
        await pilot.press("enter")  # Enter in any field starts, as a person would
        await until(pilot, lambda: "needs the explicit opt-in" in str(dialog.query_one("#error").render()),
                    what="refusal without the tick")
        assert not app.manager.listeners
        dialog.query_one("#danger-opt-in", Checkbox).value = True
        command.focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="dialog closed")
        (listener,) = app.manager.listeners.values()
        reader, writer = await asyncio.open_connection(*listener.address)
        writer.write(b"through cat\n")
        assert await asyncio.wait_for(reader.readline(), 10) == b"through cat\n"
        writer.close()
        await writer.wait_closed()
        assert not isinstance(app.screen, NewListenerDialog)


async def test_escape_leaves_the_send_bar() -> None:
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        await pilot.press("i")
        bar = app.screen.query_one(SendBar)
        await until(pilot, lambda: bar.has_focus_within, what="send bar focused")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.focused, ByteLogView), what="focus back on the log")
        await pilot.press("n")  # a single-key command works again
        await until(pilot, lambda: isinstance(app.screen, NewListenerDialog), what="dialog opened")
