"""The first frame comes before the engine: the app makes its SessionManager only after
the main screen has been painted once, and everything waiting for it still happens.

The import check runs in a subprocess: in this one, other tests imported the engine long ago.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tcpbench.engine.registry import build_service
from tcpbench.screens.main import NO_ENGINE_YET
from tcpbench.ui_spec import ListenSpec
from tcpbench.widgets.tables import ListenersTable
from tests.ui.helpers import make_app, until

ROOT = Path(__file__).resolve().parents[2]

# Modules a bare start must not load before its first frame: the engine proper, the
# services and the dialogs (imported on demand, after).
HEAVY = ("tcpbench.engine.manager", "tcpbench.engine.events", "tcpbench.engine.session",
         "tcpbench.engine.listener", "tcpbench.engine.registry", "tcpbench.services.base", "h11",
         "tcpbench.screens.dialogs", "tcpbench.scenarios")

FIRST_FRAME_SCRIPT = """
import asyncio, json, sys
from tcpbench.app import TcpBenchApp
from tcpbench.screens.main import NO_ENGINE_YET, MainScreen

HEAVY = %r
report = {}

class Probe(TcpBenchApp):
    def _display(self, screen, renderable):
        # Textual's one way to the terminal (headless: the same call, no write). While
        # the start-up batch holds, it drops what it is given.
        if renderable is not None and self._batch_count and isinstance(screen, MainScreen):
            report["dropped"] = report.get("dropped", 0) + 1
        if (renderable is not None and not self._batch_count and isinstance(screen, MainScreen)
                and "loaded" not in report):
            report["kind"] = type(renderable).__name__
            report["loaded"] = [m for m in HEAVY if m in sys.modules]
            report["text"] = "\\n".join("".join(s.text for s in strip)
                                        for strip in screen._compositor.render_strips())
        super()._display(screen, renderable)

async def main():
    app = Probe(cursor_blink=False)
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(500):
            if app.screen.engine is not NO_ENGINE_YET:
                break
            await pilot.pause(0.01)
        report["attached"] = app.screen.engine is not NO_ENGINE_YET
        report["same"] = app.screen.engine is app.manager
        report["after"] = [m for m in HEAVY[:3] if m in sys.modules]
    print(json.dumps(report))

asyncio.run(main())
"""


def test_the_first_frame_is_painted_before_the_engine_is_imported() -> None:
    done = subprocess.run([sys.executable, "-c", FIRST_FRAME_SCRIPT % (HEAVY,)], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for marker in ("tcpbench", "listeners 0", "Listeners", "Connections", "Byte log", "Quit"):
        assert marker in report["text"], f"{marker!r} not in the first frame:\n{report['text']}"
    assert report["loaded"] == [], f"imported before the first frame: {report['loaded']}"
    # No whole-screen render thrown away in Textual's start-up batch, and the first
    # frame out is the whole screen (LayoutUpdate), not the parts that changed (ChopsUpdate).
    assert report.get("dropped", 0) == 0
    assert report["kind"] == "LayoutUpdate"
    # Then, with nobody asking, the app makes its engine and hands it to the screen.
    assert report["attached"] and report["same"]
    assert report["after"] == list(HEAVY[:3])


async def test_listen_flag_opens_once_the_engine_exists_and_the_screen_sees_it() -> None:
    app = make_app(listen=[ListenSpec("echo", "127.0.0.1", 0)])
    async with app.run_test(size=(120, 35)) as pilot:
        screen = app.screen
        table = screen.query_one(ListenersTable)
        # Nothing here reads app.manager (that would make the engine): the app must do it.
        await until(pilot, lambda: table.row_count == 1, what="--listen row")
        assert screen.engine is not NO_ENGINE_YET and screen.engine is app.manager
        (listener,) = app.manager.listeners.values()
        assert listener.port > 0 and str(listener.id) in table.rows


async def test_an_engine_made_early_is_handed_to_the_screen_at_once() -> None:
    # A test (or a key pressed at once) may read app.manager before the first frame's
    # callback: the screen must be subscribed before anything can happen on it.
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        screen = app.screen
        manager = app.manager
        assert screen.engine is manager
        listener = await manager.start_listener(build_service("echo"), "127.0.0.1", 0)
        table = screen.query_one(ListenersTable)
        await until(pilot, lambda: str(listener.id) in table.rows, what="listener row")
        await pilot.pause()
        assert app.manager is manager  # made once
