"""Idle timeouts per connection: each session closes about S after ITS own last activity."""

from __future__ import annotations

import asyncio

import pytest

from tcpbench.engine import SessionManager, events as ev
from tcpbench.engine.registry import build_service
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(30)

IDLE = 0.5


async def test_each_connection_times_out_by_its_own_deadline_and_an_active_one_stays(
        manager: SessionManager) -> None:
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    listener = await manager.start_listener(build_service("discard"), idle_timeout=IDLE)
    async with asyncio.timeout(15):
        clients = [await asyncio.open_connection(*listener.address) for _ in range(4)]
        await wait_until(lambda: len(listener.sessions) == 4, 5, "four sessions")
        ids = sorted(listener.sessions)

        async def activity(index: int, at: list[float]) -> None:
            # Staggered: connection i sends at the offsets in `at`, then stays silent.
            start = asyncio.get_running_loop().time()
            for offset in at:
                await asyncio.sleep(max(0.0, start + offset - asyncio.get_running_loop().time()))
                clients[index][1].write(b"x")

        active = [i * 0.1 for i in range(1, 16)]  # every 0.1 s for 1.5 s: never idle for 0.5 s
        await asyncio.gather(activity(1, [0.15]), activity(2, [0.15, 0.35]), activity(3, active))
        for index in range(3):
            assert await clients[index][0].read() == b""  # FIN: a graceful close
        assert not clients[3][0].at_eof() and ids[3] in manager.sessions  # the active one stays
        for _, writer in clients:
            writer.close()
    timed_out = {e.session: e.at for e in seen if isinstance(e, ev.SessionTimedOut)}
    assert set(timed_out) == set(ids[:3])
    for session_id in ids[:3]:
        last = max([e.at for e in seen if isinstance(e, (ev.BytesReceived, ev.SessionOpened))
                    and e.session == session_id])
        late = timed_out[session_id] - (last + IDLE)
        assert -0.002 <= late <= 0.1, (session_id, late)
    # They did not all close at the first deadline (ncat -i's behaviour, nmap issue 2638).
    first, second, third = (timed_out[i] for i in ids[:3])
    assert second - first > 0.1 and third - second > 0.1


async def test_idle_timers_are_released_when_sessions_end(manager: SessionManager) -> None:
    listener = await manager.start_listener(build_service("echo"), idle_timeout=30)
    async with asyncio.timeout(10):
        clients = [await asyncio.open_connection(*listener.address) for _ in range(5)]
        await wait_until(lambda: len(listener.sessions) == 5, 5, "five sessions")
        assert listener.idle is not None and len(listener.idle) == 5
        for _, writer in clients:
            writer.close()
        await wait_until(lambda: not listener.sessions, 5, "all ended")
    assert len(listener.idle) == 0
