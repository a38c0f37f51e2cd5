"""`tcpbench web` in a real headless Chromium: the page loads, the workbench renders, keys reach it.

The terminal is drawn on a canvas (xterm.js), so its text is not in the DOM. The
test reads what the page was sent instead: a script installed before the page
loads (DevTools `Page.addScriptToEvaluateOnNewDocument`) keeps every message
of the page's websocket, i.e. the terminal output xterm.js draws; its text,
escape sequences removed, must hold the workbench's first screen. A screenshot
must hold more than a blank background, and a key typed through DevTools
(`Input.dispatchKeyEvent`) must open the New listener dialog in the app.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import socket
import sys
import tempfile
import time

import pytest

from tests.interop.test_chromium import CHROMIUM

pytest.importorskip("textual_serve")
aiohttp = pytest.importorskip("aiohttp")
pytestmark = [pytest.mark.chromium, pytest.mark.timeout(120),
              pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"no Chromium at {CHROMIUM}")]

HOOK = """
(() => {
  const Native = window.WebSocket;
  window.__tcpbench = [];
  const decoder = new TextDecoder();
  function Hooked(url, protocols) {
    const ws = protocols === undefined ? new Native(url) : new Native(url, protocols);
    ws.addEventListener("message", (e) => {
      if (typeof e.data === "string") window.__tcpbench.push(e.data);
      else if (e.data instanceof ArrayBuffer) window.__tcpbench.push(decoder.decode(e.data, {stream: true}));
      else if (e.data instanceof Blob) e.data.text().then((t) => window.__tcpbench.push(t));
    });
    return ws;
  }
  Hooked.prototype = Native.prototype;
  for (const k of ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]) Hooked[k] = Native[k];
  window.WebSocket = Hooked;
})();
"""
ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[@-Z\\-_]")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_http(url: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while True:
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return await response.text()
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer within {timeout} s")
            await asyncio.sleep(0.1)


async def screen_text(browser) -> str:
    chunks = await browser.evaluate("window.__tcpbench ? window.__tcpbench.join('') : ''")
    return ESCAPES.sub("", chunks or "")


async def until_text(browser, *needles: str, timeout: float = 30) -> str:
    """The page's screen text once it holds every one of `needles` (frames arrive in parts)."""
    needle = needles[0]
    deadline = time.monotonic() + timeout
    while True:
        text = await screen_text(browser)
        missing = [n for n in needles if n not in text]
        if not missing:
            return text
        needle = missing[0]
        if time.monotonic() > deadline:
            raise AssertionError(f"{needle!r} never reached the page; it got {text[-2000:]!r}")
        await asyncio.sleep(0.2)


async def test_the_workbench_runs_in_a_browser_tab() -> None:
    from tests.interop.cdp import Browser, png_colours

    port = free_port()
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tcpbench", "web", "--port", str(port),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, start_new_session=True)
    with tempfile.TemporaryDirectory() as tmp:
        browser = Browser(tmp)
        try:
            page = await wait_http(f"http://127.0.0.1:{port}/")
            assert "textual-terminal" in page and f"ws://127.0.0.1:{port}/ws" in page
            await browser.start()
            await browser.send("Page.enable")
            await browser.send("Page.addScriptToEvaluateOnNewDocument", {"source": HOOK})
            await browser.send("Page.navigate", {"url": f"http://127.0.0.1:{port}/"})
            # The first screen arrives in several frames (header, panes, footer): wait for all.
            first = await until_text(browser, "connections open 0", "tcpbench", "Listeners",
                                     "Byte log", "no target: select a row")
            assert "New listener" not in first
            shot = await browser.send("Page.captureScreenshot", {
                "format": "png", "clip": {"x": 0, "y": 0, "width": 1280, "height": 800, "scale": 0.5}})
            assert png_colours(base64.b64decode(shot["data"])) > 4  # text in several colours
            # A key typed in the browser reaches the app: n opens the New listener dialog.
            await browser.evaluate("document.querySelector('.xterm-helper-textarea').focus(), true")
            for kind in ("keyDown", "keyUp"):
                await browser.send("Input.dispatchKeyEvent", {
                    "type": kind, "key": "n", "code": "KeyN", "text": "n" if kind == "keyDown" else "",
                    "windowsVirtualKeyCode": 78})
            after = await until_text(browser, "New listener")
            assert "Start" in after and "Cancel" in after
        finally:
            await browser.close()
            try:
                os.killpg(server.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(server.wait(), 15)
            except TimeoutError:
                os.killpg(server.pid, signal.SIGKILL)
                await server.wait()
