"""TLS in the workbench: the ticks in the new-listener and connect dialogs, the log's TLS lines,
and a failed handshake shown in the dialog. Real sockets on 127.0.0.1, driven through Pilot."""

from __future__ import annotations

import asyncio
import ssl

import pytest
from textual.widgets import Checkbox, Input, Static

from tcpbench.screens.dialogs import ConnectDialog
from tcpbench.screens.main import MainScreen
from tests.ui.helpers import fill_listener_dialog, make_app, until
from tests.ui.test_app import log_text

pytestmark = pytest.mark.timeout(60)


async def start_tls_listener(pilot, service: str = "echo"):
    app = pilot.app
    dialog = await fill_listener_dialog(pilot, service)
    dialog.query_one("#tls", Checkbox).value = True
    await pilot.click("#start")
    await until(pilot, lambda: app.manager.listeners, what="listener started")
    await until(pilot, lambda: isinstance(app.screen, MainScreen), what="dialog closed")
    return next(iter(app.manager.listeners.values()))


async def open_connect_dialog(pilot, address: str, *, tls: bool, insecure: bool,
                              sni: str = "") -> ConnectDialog:
    await pilot.press("c")
    await until(pilot, lambda: isinstance(pilot.app.screen, ConnectDialog), what="connect dialog")
    dialog = pilot.app.screen
    dialog.query_one("#address", Input).value = address
    dialog.query_one("#tls", Checkbox).value = tls
    dialog.query_one("#insecure", Checkbox).value = insecure
    dialog.query_one("#sni", Input).value = sni
    await pilot.pause()
    await pilot.click("#connect")
    return dialog


async def test_tls_listener_and_tls_connect_through_the_dialogs():
    app = make_app()
    async with app.run_test(size=(130, 40)) as pilot:
        listener = await start_tls_listener(pilot)
        assert listener.tls is not None and listener.tls.self_signed
        # A standard-library client sees the certificate the dialog made.
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port, ssl=context)
        writer.write(b"over tls\n")
        assert await reader.readline() == b"over tls\n"
        writer.close()
        await writer.wait_closed()

        await open_connect_dialog(pilot, f"127.0.0.1:{listener.port}", tls=True, insecure=True,
                                  sni="localhost")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="connected")
        client = [s for s in app.manager.sessions.values() if s.listener_id is None][0]
        assert client.tls is not None and client.tls.sni == "localhost" and not client.tls.verified
        await until(pilot, lambda: "TLS negotiated: TLSv1.3" in log_text(app), what="TLS in the log")
        text = log_text(app)
        assert "NOT verified" in text and "SNI localhost" in text


async def test_a_failed_handshake_is_shown_in_the_connect_dialog():
    app = make_app()
    async with app.run_test(size=(130, 40)) as pilot:
        listener = await start_tls_listener(pilot)
        dialog = await open_connect_dialog(pilot, f"127.0.0.1:{listener.port}", tls=True,
                                           insecure=False)
        error = dialog.query_one("#error", Static)
        await until(pilot, lambda: "TLS handshake" in str(error.render()), what="handshake error")
        assert "self-signed" in str(error.render())
        assert app.screen is dialog and app.is_running
        # Tick "insecure" and try again in the same dialog: it connects.
        dialog.query_one("#insecure", Checkbox).value = True
        # Enter in the address field: a Button ignores a second click while it still shows the first.
        dialog.query_one("#address", Input).focus()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="connected")
        # The listener's side of the first attempt was noticed too.
        assert listener.tls_failures == 1


async def test_plain_connect_to_a_tls_listener_leaves_the_listener_serving():
    app = make_app()
    async with app.run_test(size=(130, 40)) as pilot:
        listener = await start_tls_listener(pilot)
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(b"\x16\x03\x01\x00\x05hello, not really tls\r\n")
        await reader.read()
        writer.close()
        await writer.wait_closed()
        await until(pilot, lambda: listener.tls_failures == 1, what="failure counted")
        await until(pilot, lambda: any("TLS handshake" in n.message
                                       for n in app._notifications), what="failure noticed")
        assert listener.id in app.manager.listeners


async def test_a_hostile_certificate_is_inert_in_the_log(tmp_path):
    from tcpbench.engine.certs import make_self_signed
    from tcpbench.engine.registry import build_service
    from tcpbench.engine.tls import server_tls

    made = make_self_signed(["evil\x1b]52;c;cHduZWQ=\x07[@click=app.quit]x[/]", "localhost"])
    (tmp_path / "c.pem").write_bytes(made.cert_pem)
    (tmp_path / "k.pem").write_bytes(made.key_pem)
    app = make_app()
    async with app.run_test(size=(160, 40)) as pilot:
        listener = await app.manager.start_listener(
            build_service("echo"), "127.0.0.1", 0,
            tls=server_tls("127.0.0.1", cert_file=str(tmp_path / "c.pem"),
                           key_file=str(tmp_path / "k.pem")))
        await open_connect_dialog(pilot, f"127.0.0.1:{listener.port}", tls=True, insecure=True)
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="connected")
        await until(pilot, lambda: "TLS negotiated" in log_text(app), what="TLS in the log")
        assert "CN=evil\\e]52" in log_text(app) and "[@click=app.quit]" in log_text(app)
        await pilot.pause()
        screen_text = "".join(strip.text for strip in app.screen._compositor.render_strips())
        assert "\x1b" not in screen_text and "\x07" not in screen_text
        assert app.is_running
