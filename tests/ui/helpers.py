"""Helpers for the workbench's Pilot tests: bounded polling and dialog driving."""

from __future__ import annotations

import time
from typing import Callable

from textual.pilot import Pilot
from textual.widgets import Input, Select

from tcpbench.app import TcpBenchApp
from tcpbench.engine.listener import Listener
from tcpbench.screens.dialogs import ConnectDialog, NewListenerDialog
from tcpbench.widgets.tables import ConnectionsTable


async def until(pilot: Pilot, predicate: Callable[[], object], timeout: float = 10.0,
                what: str = "condition") -> None:
    """Poll `predicate` while the app runs; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await pilot.pause(0.02)


def make_app(**kwargs) -> TcpBenchApp:
    kwargs.setdefault("cursor_blink", False)
    return TcpBenchApp(**kwargs)


async def open_listener_dialog(pilot: Pilot) -> NewListenerDialog:
    await pilot.press("n")
    await until(pilot, lambda: isinstance(pilot.app.screen, NewListenerDialog), what="dialog open")
    dialog = pilot.app.screen
    assert isinstance(dialog, NewListenerDialog)
    await until(pilot, lambda: bool(dialog.query("#options").first().children), what="options shown")
    return dialog


async def fill_listener_dialog(pilot: Pilot, service: str = "echo", host: str = "127.0.0.1",
                               port: str = "0") -> NewListenerDialog:
    dialog = await open_listener_dialog(pilot)
    if service != dialog.service_name:
        dialog.query_one("#service", Select).value = service
        await until(pilot, lambda: dialog.service_name == service, what="service switched")
    dialog.query_one("#host", Input).value = host
    dialog.query_one("#port", Input).value = port
    await pilot.pause()
    return dialog


async def start_listener(pilot: Pilot, service: str = "echo", port: str = "0") -> Listener:
    """Start a listener through the dialog, as a person would; return it."""
    app = pilot.app
    before = set(app.manager.listeners)
    await fill_listener_dialog(pilot, service, port=port)
    await pilot.click("#start")
    await until(pilot, lambda: set(app.manager.listeners) - before, what="listener started")
    await until(pilot, lambda: not isinstance(app.screen, NewListenerDialog), what="dialog closed")
    (new_id,) = set(app.manager.listeners) - before
    return app.manager.listeners[new_id]


async def connect_via_dialog(pilot: Pilot, address: str) -> ConnectDialog:
    await pilot.press("c")
    await until(pilot, lambda: isinstance(pilot.app.screen, ConnectDialog), what="connect dialog")
    dialog = pilot.app.screen
    dialog.query_one("#address", Input).value = address
    await pilot.click("#connect")
    return dialog


def cell(app: TcpBenchApp, session_id: int, column: str) -> str:
    """The full text of a connection's cell, whether its column is shown at this width or not."""
    value = app.screen.query_one(ConnectionsTable).value(session_id, column)
    return "" if value is None else value
