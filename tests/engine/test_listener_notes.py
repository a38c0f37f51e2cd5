"""A listener keeps the notes that belong to no live session: the operator's chat lines,
the fuzz seed. Real sockets on 127.0.0.1."""

from __future__ import annotations

import asyncio

from tcpbench.engine.bytestore import EVENT
from tcpbench.engine.events import ServiceNoted
from tcpbench.engine.manager import SessionManager
from tcpbench.engine.registry import build_service
from tests.conftest import wait_until


def notes(listener) -> list[str]:
    return [r.event.text for r in listener.notes if r.direction == EVENT and isinstance(r.event, ServiceNoted)]


async def test_operator_lines_are_kept_by_the_chat_listener_and_leaves_by_their_session(manager):
    listener = await manager.start_listener(build_service("chat"), "127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    await asyncio.wait_for(reader.readline(), 5)
    manager.operator_input(listener.id, b"hello from the operator\n")
    assert await asyncio.wait_for(reader.readline(), 5) == b"<operator> hello from the operator\n"
    assert notes(listener) == ["<operator> hello from the operator"]
    assert all(r.session == 0 for r in listener.notes)
    writer.close()
    await writer.wait_closed()
    await wait_until(lambda: not listener.sessions, 5, "session ended")
    # The leave is told while the session still lives: it is in the session's own store.
    (session,) = manager.history.values()
    assert any(r.event is not None and "left" in getattr(r.event, "text", "") for r in session.store)
    assert notes(listener) == ["<operator> hello from the operator"]


async def test_the_fuzz_seed_is_kept_and_nothing_when_the_store_is_off():
    async with SessionManager(linger=1.0) as manager:
        listener = await manager.start_listener(build_service("fuzz", {"seed": 7}), "127.0.0.1", 0)
        await wait_until(lambda: notes(listener), 5, "seed noted")
        assert notes(listener)[0].startswith("listener seed 7")
    async with SessionManager(linger=1.0, store_cap=0) as headless:
        listener = await headless.start_listener(build_service("fuzz", {"seed": 7}), "127.0.0.1", 0)
        seen: list[ServiceNoted] = []
        headless.subscribe(lambda e: seen.append(e) if isinstance(e, ServiceNoted) else None)
        await wait_until(lambda: seen, 5, "seed emitted")
        assert len(listener.notes) == 0  # serve keeps nothing for display
