"""The CLI's bad inputs (tests/cli/test_bad_input.py), typed into the dialogs: one line of error
in the dialog, the dialog stays open, the app keeps running and can still start a listener.

The --allow/--deny CIDR fields are another branch's: their rows join when they land.
"""

from __future__ import annotations

import os
import socket

import pytest
from textual.widgets import Input, Static

from tcpbench.screens.dialogs import ConnectDialog
from tcpbench.screens.main import MainScreen
from tcpbench.screens.probe import ProbeScreen
from tests.netutil import closed_port
from tests.ui.helpers import fill_listener_dialog, make_app, start_listener, until

# (service, host, port, {option: text}, the error's text). {busy}/{free} as in the CLI table.
LISTENER_ROWS = [
    ("echo", "127.0.0.1", "70000", {}, "not a number from 0 to 65535"),
    ("echo", "127.0.0.1", "abc", {}, "not a number from 0 to 65535"),
    ("echo", "127.0.0.1", "\u00b2", {}, "not a number from 0 to 65535"),
    ("echo", "127.0.0.1", "{busy}", {}, "already in use"),
    ("echo", "no-such-host.invalid", "0", {}, "unknown host 'no-such-host.invalid'"),
    ("echo", "192.0.2.1", "0", {}, "is not an address of this machine"),
    ("http", "127.0.0.1", "0", {"body_file": "/nonexistent/body"}, "cannot read /nonexistent/body"),
    ("http", "127.0.0.1", "0", {"dir": "/nonexistent/dir"}, "is not a directory"),
    ("http", "127.0.0.1", "0", {"status": "abc"}, "--status: 'abc' is not a whole number"),
    ("http", "127.0.0.1", "0", {"body": "a\\q"}, "unknown escape \\q"),
    ("motd", "127.0.0.1", "0", {"message_file": "/nonexistent/msg"}, "cannot read /nonexistent/msg"),
    ("motd", "127.0.0.1", "0", {"message": "\\x4"}, "bad escape \\x4"),
    ("chat", "127.0.0.1", "0", {"nick": "a b"}, "must be 1-16 of"),
    ("relay", "127.0.0.1", "0", {}, "say where to relay to"),
    ("relay", "127.0.0.1", "0", {"to": "localhost"}, "is not HOST:PORT"),
    ("relay", "127.0.0.1", "{free}", {"to": "127.0.0.1:{free}"}, "is this listener itself"),
    ("relay", "0.0.0.0", "{free}", {"to": "localhost:{free}"}, "is this listener itself"),
]
CONNECT_ROWS = [
    ("localhost", "5", "expected HOST:PORT"),
    ("localhost:0", "5", "port 0 cannot be connected to"),
    ("[::1", "5", "missing ']'"),
    ("localhost:abc", "5", "is not a number"),
    ("localhost:\u00b2", "5", "is not a number"),
    ("::1:80", "5", "put an IPv6 address in brackets"),
    ("127.0.0.1:80", "abc", "is not a number of seconds"),
    ("127.0.0.1:80", "0", "more than 0 and at most 600"),
    ("no-such-host.invalid:80", "5", "cannot resolve 'no-such-host.invalid'"),
    ("127.0.0.1:{free}", "5", "connection refused"),
]
PROBE_ROWS = [
    ("127.0.0.1", "0", "3", "port 0 is out of range"),
    ("127.0.0.1", "70000", "3", "out of range"),
    ("127.0.0.1", "9-1", "3", "runs backwards"),
    ("127.0.0.1", "80,,81", "3", "empty item"),
    ("127.0.0.1", "\u0661\u0662", "3", "bad port"),
    ("127.0.0.1", "nosuchservice", "3", "unknown service name"),
    ("", "80", "3", "Give a host"),
    ("127.0.0.1", "80", "x", "must be a number of seconds"),
]


@pytest.fixture
def busy():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def text_of(widget: Static) -> str:
    return str(widget.render())


async def still_works(pilot) -> None:
    """The app runs on: back to the main screen, a valid listener starts and is listed."""
    app = pilot.app
    while not isinstance(app.screen, MainScreen):
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen) or not app.is_running,
                    what="dialog closed")
    assert app.is_running
    listener = await start_listener(pilot, "echo")
    assert listener.id in app.manager.listeners


@pytest.mark.timeout(30)
@pytest.mark.parametrize("service, host, port, options, expected", LISTENER_ROWS,
                         ids=[f"{r[0]}-{r[1]}-{r[2]}-{r[3]}" for r in LISTENER_ROWS])
async def test_new_listener_dialog(service, host, port, options, expected, busy) -> None:
    free = str(closed_port())
    fill = {"busy": str(busy), "free": free}
    app = make_app()
    async with app.run_test(size=(110, 50)) as pilot:
        dialog = await fill_listener_dialog(pilot, service, host, port.format(**fill))
        for name, value in options.items():
            dialog.query_one(f"#opt-{name}", Input).value = value.format(**fill)
        await pilot.pause()
        await dialog.action_start()
        error = dialog.query_one("#error", Static)
        await until(pilot, lambda: text_of(error), what="an error")
        assert expected.format(**fill) in text_of(error) and "\n" not in text_of(error)
        assert app.screen is dialog and not app.manager.listeners
        # Fixed in place, the same dialog starts a listener.
        dialog.query_one("#host", Input).value = "127.0.0.1"
        dialog.query_one("#port", Input).value = "0"
        for name in options:
            dialog.query_one(f"#opt-{name}", Input).value = ""
        if service == "relay":
            dialog.query_one("#opt-to", Input).value = f"127.0.0.1:{free}"
        await dialog.action_start()
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="dialog closed")
        assert len(app.manager.listeners) == 1
        await still_works(pilot)


@pytest.mark.timeout(30)
async def test_a_privileged_port_in_the_dialog() -> None:
    """Not root: permission denied in the dialog. Root: the port is just a port."""
    port = next(p for p in range(1000, 1024) if _free(p))
    app = make_app()
    async with app.run_test(size=(110, 50)) as pilot:
        dialog = await fill_listener_dialog(pilot, "echo", "127.0.0.1", str(port))
        await dialog.action_start()
        if os.geteuid() == 0:
            await until(pilot, lambda: isinstance(app.screen, MainScreen), what="started")
            assert [l.port for l in app.manager.listeners.values()] == [port]
        else:
            await until(pilot, lambda: "permission denied" in text_of(dialog.query_one("#error")),
                        what="permission error")
        await still_works(pilot)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("address, timeout, expected", CONNECT_ROWS, ids=[r[0] + "|" + r[1] for r in CONNECT_ROWS])
async def test_connect_dialog(address, timeout, expected) -> None:
    free = str(closed_port())
    app = make_app()
    async with app.run_test(size=(110, 50)) as pilot:
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ConnectDialog), what="connect dialog")
        dialog = app.screen
        dialog.query_one("#address", Input).value = address.format(free=free)
        dialog.query_one("#timeout", Input).value = timeout
        await pilot.pause()
        dialog.action_connect()
        error = dialog.query_one("#error", Static)
        await until(pilot, lambda: expected in text_of(error), what=f"error {expected!r}")
        assert "\n" not in text_of(error)
        assert app.screen is dialog and not app.manager.sessions
        await still_works(pilot)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("host, ports, timeout, expected", PROBE_ROWS, ids=[r[1] + "|" + r[0] + "|" + r[2] for r in PROBE_ROWS])
async def test_probe_screen(host, ports, timeout, expected) -> None:
    app = make_app()
    async with app.run_test(size=(110, 50)) as pilot:
        app.open_probe(host, ports)
        await until(pilot, lambda: isinstance(app.screen, ProbeScreen) and app.screen.query("#probe-results"),
                    what="probe screen")
        screen = app.screen
        screen.query_one("#probe-host", Input).value = host
        screen.query_one("#probe-ports", Input).value = ports
        screen.query_one("#probe-timeout", Input).value = timeout
        await pilot.pause()
        screen.action_run()
        status = screen.query_one("#probe-status", Static)
        await until(pilot, lambda: expected in text_of(status), what=f"error {expected!r}")
        assert "\n" not in text_of(status) and status.has_class("error")
        assert app.screen is screen
        await still_works(pilot)


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
