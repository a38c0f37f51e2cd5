"""Dialog error paths: every failure shows inside the dialog, which stays open; the app keeps running."""

from __future__ import annotations

import asyncio
import socket

import pytest
from textual.widgets import Checkbox, Input, Static, TextArea

from tcpbench.engine.registry import SERVICES
from tcpbench.screens.dialogs import ConnectDialog, NewListenerDialog, network_warning
from tcpbench.screens.main import MainScreen
from tcpbench.services.base import Option, ServiceInfo
from tcpbench.services.echo import EchoService
from tcpbench.ui_spec import ConnectSpec, ListenSpec
from tcpbench.widgets.tables import ConnectionsTable
from tests.ui.helpers import connect_via_dialog, fill_listener_dialog, make_app, until


async def submit(pilot, field: str = "#port") -> None:
    """Press Enter in a field (a Button ignores a second click while it still shows the first)."""
    pilot.app.screen.query_one(field, Input).focus()
    await pilot.press("enter")


def error_text(screen) -> str:
    return str(screen.query_one("#error", Static).render())


async def test_port_in_use_is_shown_in_the_dialog():
    blocker = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    used = blocker.sockets[0].getsockname()[1]
    app = make_app()
    try:
        async with app.run_test(size=(100, 40)) as pilot:
            dialog = await fill_listener_dialog(pilot, "echo", port=str(used))
            await pilot.click("#start")
            await until(pilot, lambda: "already in use" in error_text(dialog), what="in-use error")
            assert app.screen is dialog and not app.manager.listeners
            # Fix the port in place and try again: the same dialog succeeds.
            dialog.query_one("#port", Input).value = "0"
            await submit(pilot, "#port")
            await until(pilot, lambda: isinstance(app.screen, MainScreen), what="dialog closed")
            assert len(app.manager.listeners) == 1
    finally:
        blocker.close()
        await blocker.wait_closed()


async def test_bad_port_and_unknown_host_are_shown_in_the_dialog():
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        dialog = await fill_listener_dialog(pilot, "echo", port="70000")
        await pilot.click("#start")
        await until(pilot, lambda: "0 to 65535" in error_text(dialog), what="bad port error")
        dialog.query_one("#port", Input).value = "0"
        dialog.query_one("#host", Input).value = "no-such-host.invalid"
        await submit(pilot, "#port")
        await until(pilot, lambda: "unknown host" in error_text(dialog), what="bad host error")
        assert app.screen is dialog and app.is_running
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="cancelled")
        assert not app.manager.listeners


async def test_open_to_the_network_warning_follows_the_host():
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        dialog = await fill_listener_dialog(pilot, "echo")
        warning = dialog.query_one("#warning", Static)
        assert not warning.display
        dialog.query_one("#host", Input).value = "0.0.0.0"
        await until(pilot, lambda: warning.display, what="warning shown")
        assert "open to the network" in str(warning.render())
        dialog.query_one("#host", Input).value = "::1"
        await until(pilot, lambda: not warning.display, what="warning hidden")
    assert network_warning("::") and network_warning("192.0.2.1") and not network_warning("127.0.0.2")
    assert not network_warning("")


async def test_an_emptied_host_listens_on_loopback_as_its_placeholder_says():
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        dialog = await fill_listener_dialog(pilot, "echo")
        dialog.query_one("#host", Input).value = ""
        assert not dialog.query_one("#warning", Static).display
        await submit(pilot, "#port")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="started")
        [listener] = app.manager.listeners.values()
        assert listener.address[0] == "127.0.0.1"


async def test_options_come_from_the_registry_and_dangerous_needs_opt_in(monkeypatch):
    built: list[dict] = []

    def build(greeting: str = "hi", repeat: int = 1, loud: bool = False, words: list | None = None):
        built.append({"greeting": greeting, "repeat": repeat, "loud": loud, "words": words})
        return EchoService()

    info = ServiceInfo("zz-test", "a test service with every option type", (
        Option("greeting", str, "hi", "what to say"),
        Option("repeat", int, 1, "how often"),
        Option("loud", bool, False, "shout"),
        Option("words", list, None, "extra words"),
    ), build, dangerous=True)
    monkeypatch.setitem(SERVICES, "zz-test", info)
    app = make_app()
    async with app.run_test(size=(100, 45)) as pilot:
        dialog = await fill_listener_dialog(pilot, "zz-test")
        assert isinstance(dialog, NewListenerDialog)
        assert dialog.query_one("#opt-greeting", Input).value == "hi"
        dialog.query_one("#opt-repeat", Input).value = "lots"
        await pilot.click("#start")
        await until(pilot, lambda: "opt-in" in error_text(dialog), what="opt-in required")
        dialog.query_one("#danger-opt-in", Checkbox).value = True
        await submit(pilot, "#port")
        await until(pilot, lambda: "not a whole number" in error_text(dialog), what="bad int")
        dialog.query_one("#opt-repeat", Input).value = "3"
        dialog.query_one("#opt-loud", Checkbox).value = True
        dialog.query_one("#opt-words", TextArea).text = "a, b\n\n c\n"  # one value per line
        await submit(pilot, "#port")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="started")
        assert built == [{"greeting": "hi", "repeat": 3, "loud": True, "words": ["a, b", "c"]}]


async def test_refused_connect_is_shown_in_the_dialog():
    with socket.socket() as sock:  # a port that was just free: nothing listens there now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        dialog = await connect_via_dialog(pilot, f"127.0.0.1:{port}")
        assert isinstance(dialog, ConnectDialog)
        await until(pilot, lambda: "refused" in error_text(dialog), what="refused error")
        assert app.screen is dialog and app.is_running
        dialog.query_one("#address", Input).value = "127.0.0.1"
        await submit(pilot, "#address")
        await until(pilot, lambda: "HOST:PORT" in error_text(dialog), what="format error")
        dialog.query_one("#address", Input).value = "[::1:80"
        await submit(pilot, "#address")
        await until(pilot, lambda: "']'" in error_text(dialog), what="bracket error")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="cancelled")
        assert not app.manager.sessions


async def test_the_connect_dialog_starts_from_the_last_address_that_connected():
    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: app.manager.listeners, what="listener")
        [listener] = app.manager.listeners.values()
        app.screen.query_one(ConnectionsTable).focus()
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConnectDialog), what="dialog")
        assert app.screen.query_one("#address", Input).value == "127.0.0.1:"  # nothing yet
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="cancelled")
        await connect_via_dialog(pilot, f"127.0.0.1:{listener.port}")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="connected")
        app.screen.query_one(ConnectionsTable).focus()
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConnectDialog), what="dialog again")
        assert app.screen.query_one("#address", Input).value == f"127.0.0.1:{listener.port}"
        await pilot.press("escape")


async def test_a_session_opened_by_connect_at_start_is_the_dialogs_last_address():
    peers: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda r, w: peers.append(w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    app = make_app(connect=[ConnectSpec("127.0.0.1", port)])
    try:
        async with app.run_test(size=(100, 40)) as pilot:
            await until(pilot, lambda: app.manager.sessions, what="--connect opened")
            await until(pilot, lambda: app.screen.last_connect_address != "127.0.0.1:",
                        what="remembered")
            app.screen.query_one(ConnectionsTable).focus()
            await pilot.press("c")
            await until(pilot, lambda: isinstance(app.screen, ConnectDialog), what="dialog")
            assert app.screen.query_one("#address", Input).value == f"127.0.0.1:{port}"
            await pilot.press("escape")
    finally:
        for writer in peers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_list_option_value_may_hold_a_comma_http_header_round_trip():
    app = make_app()
    async with app.run_test(size=(100, 45)) as pilot:
        dialog = await fill_listener_dialog(pilot, "http")
        headers = dialog.query_one("#opt-header", TextArea)
        headers.focus()
        await pilot.press(*"Cache-Control: no-cache, no-store", "enter", *"X-Workshop: a, b, c")
        await pilot.click("#start")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="started")
        listener = next(iter(app.manager.listeners.values()))
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        response = await asyncio.wait_for(reader.read(), 5)
        head = response.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
        assert head[0].startswith(b"HTTP/1.1 200")
        assert b"Cache-Control: no-cache, no-store" in head, head
        assert b"X-Workshop: a, b, c" in head, head
        writer.close()
        await writer.wait_closed()


def fully_shown(widget, within) -> bool:
    region = widget.region
    return region.height > 0 and within.region.contains_region(region)


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
async def test_on_a_small_terminal_the_listener_dialogs_error_and_buttons_stay_in_view(size):
    app = make_app()
    async with app.run_test(size=size) as pilot:
        dialog = await fill_listener_dialog(pilot, "http", port="70000")  # http: many options
        await submit(pilot, "#port")
        await until(pilot, lambda: "0 to 65535" in error_text(dialog), what="bad port error")
        box = dialog.query_one("#dialog")
        await until(pilot, lambda: fully_shown(dialog.query_one("#error"), box)
                    and fully_shown(dialog.query_one("#start"), box), what="error and Start in view")
        assert box.region.bottom <= app.screen.region.bottom
        await pilot.press("escape")
