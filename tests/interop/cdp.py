"""A small DevTools-protocol client for the browser tests (aiohttp's websocket, no other library).

`Browser.start()` runs a headless Chromium that can reach loopback only (the
flags of `test_chromium.py`), reads the DevTools URL it prints, and opens one
page target; `send()` calls a method on that page and waits for its answer.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import struct
import zlib
from typing import Any

import aiohttp

from tests.interop.test_chromium import CHROMIUM, stop_browser

LOOPBACK_ONLY = ("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, "
                 "EXCLUDE ::1")


class Browser:
    def __init__(self, profile: str) -> None:
        self.profile = profile
        self.proc: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.session_id: str | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", f"--user-data-dir={os.path.join(self.profile, 'profile')}",
            LOOPBACK_ONLY, "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
            "--window-size=1280,800", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True)
        assert self.proc.stderr is not None
        async with asyncio.timeout(30):
            while True:
                line = (await self.proc.stderr.readline()).decode()
                assert line, "Chromium ended before it printed its DevTools URL"
                match = re.search(r"DevTools listening on (ws://\S+)", line)
                if match:
                    break
        # Keep draining stderr so Chromium never blocks on a full pipe.
        asyncio.get_running_loop().create_task(self._drain(self.proc.stderr))
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(match.group(1), max_msg_size=0)
        self._reader = asyncio.get_running_loop().create_task(self._read())
        target = await self.send("Target.createTarget", {"url": "about:blank"}, browser=True)
        attached = await self.send("Target.attachToTarget",
                                   {"targetId": target["targetId"], "flatten": True}, browser=True)
        self.session_id = attached["sessionId"]

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        while await stream.read(65536):
            pass

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            data = message.json()
            future = self._waiting.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                if "error" in data:
                    future.set_exception(RuntimeError(str(data["error"])))
                else:
                    future.set_result(data.get("result", {}))

    async def send(self, method: str, params: dict[str, Any] | None = None, *,
                   browser: bool = False) -> Any:
        assert self._ws is not None
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if not browser:
            message["sessionId"] = self.session_id
        future = self._waiting[ident] = asyncio.get_running_loop().create_future()
        await self._ws.send_json(message)
        async with asyncio.timeout(30):
            return await future

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                      "awaitPromise": True})
        return result.get("result", {}).get("value")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        if self.proc is not None:
            await stop_browser(self.proc)


def png_colours(png: bytes, limit: int = 64) -> int:
    """How many distinct colours a PNG holds (up to `limit`): 1 means a blank page."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height, kind = 8, b"", 0, 0, 0
    while pos < len(png):
        length, tag = struct.unpack(">I4s", png[pos:pos + 8])
        body = png[pos + 8:pos + 8 + length]
        if tag == b"IHDR":
            width, height, depth, kind = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and kind in (2, 6), (depth, kind)
        elif tag == b"IDAT":
            idat += body
        pos += 12 + length
    channels = 3 if kind == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * channels
    previous = bytearray(stride)
    colours: set[bytes] = set()
    for y in range(height):
        start = y * (stride + 1)
        filter_type, row = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = row[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if filter_type == 1:
                row[i] = (row[i] + left) & 255
            elif filter_type == 2:
                row[i] = (row[i] + up) & 255
            elif filter_type == 3:
                row[i] = (row[i] + (left + up) // 2) & 255
            elif filter_type == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                row[i] = (row[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
        previous = row
        if y % 8 == 0:
            for x in range(0, stride, channels * 4):
                colours.add(bytes(row[x:x + 3]))
                if len(colours) >= limit:
                    return len(colours)
    return len(colours)
