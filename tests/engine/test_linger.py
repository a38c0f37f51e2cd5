"""Linger deadlines: one queue, one timer, deadlines kept exactly; and the graceful close that
uses them, on real loopback sockets."""

from __future__ import annotations

import asyncio
import time

from tcpbench.engine import SessionManager, events as ev
from tcpbench.engine.linger import LingerQueue
from tcpbench.engine.registry import build_service
from tests.conftest import wait_until


class Sleeper:
    """Stands in for a session: records when its linger ran out."""

    def __init__(self, name: str, fired: list[tuple[str, float]], done: asyncio.Event | None = None) -> None:
        self.name = name
        self.fired = fired
        self.done = done

    def linger_expired(self) -> None:
        self.fired.append((self.name, time.monotonic()))
        if self.done is not None:
            self.done.set()


async def test_deadlines_come_due_in_order_each_once() -> None:
    loop = asyncio.get_running_loop()
    queue = LingerQueue(loop)
    fired: list[tuple[str, float]] = []
    last = asyncio.Event()
    start = time.monotonic()
    queue.arm(Sleeper("b", fired), 0.10)
    queue.arm(Sleeper("a", fired), 0.05)  # a shorter linger armed later still comes first
    queue.arm(Sleeper("c", fired, last), 0.15)
    assert len(queue) == 3
    await asyncio.wait_for(last.wait(), 5)
    assert [name for name, _ in fired] == ["a", "b", "c"]
    for (_, at), delay in zip(fired, (0.05, 0.10, 0.15)):
        assert at - start >= delay - 0.002
    assert len(queue) == 0


async def test_a_cancelled_deadline_never_fires() -> None:
    loop = asyncio.get_running_loop()
    queue = LingerQueue(loop)
    fired: list[tuple[str, float]] = []
    last = asyncio.Event()
    cancelled = Sleeper("cancelled", fired)
    queue.arm(cancelled, 0.02)
    queue.arm(Sleeper("kept", fired, last), 0.08)
    queue.cancel(cancelled)
    queue.cancel(cancelled)  # twice, and a session never armed: both harmless
    queue.cancel(Sleeper("never armed", fired))
    assert len(queue) == 1
    await asyncio.wait_for(last.wait(), 5)
    assert [name for name, _ in fired] == ["kept"]


async def test_arming_again_keeps_only_the_new_deadline() -> None:
    loop = asyncio.get_running_loop()
    queue = LingerQueue(loop)
    fired: list[tuple[str, float]] = []
    last = asyncio.Event()
    start = time.monotonic()
    sooner = Sleeper("sooner", fired)
    queue.arm(sooner, 5.0)
    queue.arm(sooner, 0.03)  # shutdown shortens a close already lingering
    later = Sleeper("later", fired)
    queue.arm(later, 0.01)
    queue.arm(later, 0.12)
    queue.arm(Sleeper("sentinel", fired, last), 0.2)
    assert len(queue) == 3
    await asyncio.wait_for(last.wait(), 5)
    assert [name for name, _ in fired] == ["sooner", "later", "sentinel"]
    assert fired[0][1] - start < 1.0
    assert fired[1][1] - start >= 0.12 - 0.002


async def test_close_forgets_every_deadline() -> None:
    loop = asyncio.get_running_loop()
    queue = LingerQueue(loop)
    fired: list[tuple[str, float]] = []
    for n in range(3):
        queue.arm(Sleeper(f"forgotten {n}", fired), 0.01 * (n + 1))
    queue.close()
    assert len(queue) == 0
    last = asyncio.Event()
    queue.arm(Sleeper("after close", fired, last), 0.06)  # the queue works on after close
    await asyncio.wait_for(last.wait(), 5)
    assert [name for name, _ in fired] == ["after close"]


async def test_many_deadlines_share_one_timer() -> None:
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    real_call_at = loop.call_at

    def counting_call_at(when, callback, *args, **kwargs):
        armed.append(when)
        return real_call_at(when, callback, *args, **kwargs)

    queue = LingerQueue(loop)
    queue.loop = type("CountingLoop", (), {"time": staticmethod(loop.time),
                                          "call_at": staticmethod(counting_call_at)})()
    fired: list[tuple[str, float]] = []
    last = asyncio.Event()
    sessions = [Sleeper(str(n), fired) for n in range(1000)]
    for session in sessions:
        queue.arm(session, 0.05)
    for session in sessions[:-1]:
        queue.cancel(session)  # the peers' FINs: nearly every linger ends this way
    queue.arm(Sleeper("sentinel", fired, last), 0.1)
    assert len(armed) == 1
    await asyncio.wait_for(last.wait(), 5)
    assert [name for name, _ in fired] == ["999", "sentinel"]
    assert len(armed) <= 3  # the first deadline, then each one found pending when it woke


async def test_a_peer_that_never_sends_fin_is_closed_when_the_linger_runs_out() -> None:
    async with SessionManager(linger=0.3) as manager:
        seen: list[ev.Event] = []
        manager.subscribe(seen.append)
        listener = await manager.start_listener(build_service("motd", {"message": "bye\\n"}))
        reader, writer = await asyncio.open_connection(*listener.address)
        assert await asyncio.wait_for(reader.read(), 5) == b"bye\n"  # our FIN came
        fin_at = time.monotonic()
        # We keep our side open: the session lingers, then closes without RST.
        await wait_until(lambda: any(isinstance(e, ev.SessionClosed) for e in seen), 5)
        closed = next(e for e in seen if isinstance(e, ev.SessionClosed))
        assert time.monotonic() - fin_at >= 0.3 - 0.05
        assert closed.closed_by == "us"
        assert not any(isinstance(e, (ev.SessionReset, ev.SessionAborted)) for e in seen)
        assert len(manager.lingers) == 0
        writer.close()


async def test_a_peer_fin_ends_the_linger_at_once_and_leaves_nothing_pending() -> None:
    async with SessionManager(linger=30.0) as manager:
        seen: list[ev.Event] = []
        manager.subscribe(seen.append)
        listener = await manager.start_listener(build_service("motd", {"message": "bye\\n"}))
        for _ in range(20):
            reader, writer = await asyncio.open_connection(*listener.address)
            assert await asyncio.wait_for(reader.read(), 5) == b"bye\n"
            writer.close()
            await writer.wait_closed()
        await wait_until(lambda: sum(isinstance(e, ev.SessionClosed) for e in seen) == 20, 5)
        assert len(manager.lingers) == 0

