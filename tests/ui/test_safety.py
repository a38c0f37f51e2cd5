"""A hostile peer cannot reach the terminal or the app through the byte log.

The peer sends every byte value, markup that would run app actions, and
terminal escape payloads. The rendered screen must hold only printable
characters (no C0, DEL, C1, bidi or zero-width), show the payload literally
(escaped), and clicking it must run no action.
"""

from __future__ import annotations

import asyncio
import unicodedata

import pytest

from tcpbench.engine.manager import SessionManager
from tcpbench.engine.registry import build_service
from tests.conftest import wait_until
from tests.ui.bytelog_app import LogApp, screen_text

HOSTILE = [
    b"[@click=app.pwned]CLICK ME[/]",
    b"[bold]bold?[/bold]",
    b"[ @click=app.pwned]SPACED[/]",
    b"abc [/bold] def [link=https://e]x",
    b"\x1b]52;c;SGVsbG8=\x07",
    b"\x1b[2J\x1b[31mred",
    b"over\rwrite",
    b"\x9b31mC1",
    b"\x1bc",
    "\u202eevil\u200b".encode(),
]
PAYLOAD = bytes(range(256)) + b"\n" + b"\n".join(HOSTILE) + b"\n"
EXPECTED_LITERALS = [
    "[@click=app.pwned]CLICK ME[/]",
    "[ @click=app.pwned]SPACED[/]",
    "abc [/bold] def [link=https://e]x",
    "\\e]52;c;SGVsbG8=\\x07",
    "\\e[2J\\e[31mred",
    "over\\rwrite",
    "\\x9b31mC1",
    "\\xe2\\x80\\xaeevil\\xe2\\x80\\x8b",
]


def _unsafe_chars(text: str) -> set[str]:
    bad = set()
    for ch in text:
        if ch == "\n":
            continue
        if not ch.isprintable() or unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            bad.add(ch)
    return bad


@pytest.mark.parametrize("mode", ["text", "hex"])
async def test_hostile_peer_bytes_are_inert(mode):
    async with SessionManager(linger=0.5) as manager:
        listener = await manager.start_listener(build_service("echo"), "127.0.0.1", 0)
        app = LogApp(manager)
        async with app.run_test(size=(220, 50)) as pilot:
            view = app.log_view
            view.mode = mode
            reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
            writer.write(PAYLOAD)
            await writer.drain()
            assert await reader.readexactly(len(PAYLOAD)) == PAYLOAD
            session = next(iter(manager.history.values()))
            await wait_until(lambda: session.bytes_out == len(PAYLOAD))
            await wait_until(lambda: view.row_count > 10 and view.at_tail)
            view.session_id = session.id
            view.show_timestamps = False
            await pilot.pause()
            view.scroll_to(y=0, animate=False, immediate=True)
            await pilot.pause()

            # Every drawn row, on or off screen, and the screen itself.
            all_rows = "\n".join(view.row_text(i) for i in range(view.row_count))
            assert _unsafe_chars(all_rows) == set()
            assert all_rows.isascii()
            screen = screen_text(app)
            assert _unsafe_chars(screen) == set()
            if mode == "text":
                for literal in EXPECTED_LITERALS:
                    assert literal in all_rows, literal
                assert "[@click=app.pwned]CLICK ME[/]" in screen
                assert "\\e]52;c;SGVsbG8=\\x07" in screen
            else:
                assert "|[@click=app.pwn|" in all_rows or "[@click=app.pwn" in all_rows
                assert "1b 5d 35 32 3b 63 3b" in all_rows

            # Click along the rows holding markup: live markup would run app.pwned there.
            targets = [y for y in range(min(view.row_count, 45)) if "click" in view.row_text(y)]
            targets = targets or [y for y in range(min(view.row_count, 45)) if "[" in view.row_text(y)]
            assert targets
            for y in targets[:6]:
                for x in (4, 12, 20, 28, 60):
                    await pilot.click("#log", offset=(x, y))
            await pilot.pause()
            assert app.pwned is False
            assert app.is_running
            writer.close()
            await writer.wait_closed()
