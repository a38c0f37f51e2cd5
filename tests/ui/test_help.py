"""Help is generated from the bindings: every key the footer and the palette offer is listed."""

from __future__ import annotations

from textual.widgets import Static

from tcpbench.app import TcpBenchApp
from tcpbench.screens.help import KEY_WIDTH, HelpScreen, key_text, own_bindings
from tcpbench.screens.main import MainScreen
from tcpbench.widgets.bytelog import ByteLogView
from tcpbench.widgets.sendbar import SendBar
from tests.ui.helpers import make_app, until


async def test_help_lists_every_binding_of_the_app_the_main_screen_and_its_widgets():
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        main = app.screen
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), what="help open")
        lines = [line for w in app.screen.query(".help-keys").results(Static)
                 for line in str(w.render()).splitlines()]
        rows = {(line[:KEY_WIDTH].strip(), line[KEY_WIDTH:]) for line in lines}
        expected = (own_bindings(TcpBenchApp) + own_bindings(MainScreen) + own_bindings(ByteLogView)
                    + own_bindings(SendBar))
        assert len(expected) > 20
        for binding in expected:
            keys = key_text(app, binding)
            assert any(k == keys and binding.description in text for k, text in rows), (
                f"{binding.key} ({binding.action}) is not in help")
        shown = {k for k, _ in rows}
        # Search navigation, the follow and UTC keys, the palette: all there, as the footer writes them.
        assert {"n", "N", "w", "W", "u", "^p", "?", "f1", "/"} <= shown, shown
        # Every footer binding of the main screen is in help.
        footer = {key_text(app, b) for b in main.active_bindings.values() for b in [b.binding] if b.show}
        each_key = {part for keys in shown for part in keys.split()}
        assert footer and footer <= each_key, footer - each_key
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, MainScreen), what="help closed")
