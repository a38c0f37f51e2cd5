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


def _queue() -> tuple[LingerQueue, list[tuple[str, float]], asyncio.Event]:
    """A queue on the running loop, the list its sessions record into, and an event for the last."""
    return LingerQueue(asyncio.get_running_loop()), [], asyncio.Event()


async def test_deadlines_come_due_in_order_each_once() -> None:
    queue, fired, last = _queue()
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
    queue, fired, last = _queue()
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
    queue, fired, last = _queue()
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


async def test_close_ends_every_pending_linger_at_once() -> None:
    loop = asyncio.get_running_loop()
    queue = LingerQueue(loop)
    fired: list[tuple[str, float]] = []
    cancelled = Sleeper("cancelled", fired)
    queue.arm(Sleeper("later", fired), 20.0)
    queue.arm(Sleeper("sooner", fired), 10.0)
    queue.arm(cancelled, 5.0)
    queue.cancel(cancelled)
    queue.close()  # the owner shuts down: nobody is left waiting 10 or 20 s
    assert [name for name, _ in fired] == ["sooner", "later"]
    assert len(queue) == 0
    last = asyncio.Event()
    queue.arm(Sleeper("after close", fired, last), 0.03)  # the queue works on after close
    await asyncio.wait_for(last.wait(), 5)
    assert [name for name, _ in fired] == ["sooner", "later", "after close"]


async def test_a_late_wakeup_still_ends_lingers_earliest_first() -> None:
    queue, fired, last = _queue()
    queue.arm(Sleeper("b", fired), 0.02)
    queue.arm(Sleeper("a", fired), 0.01)  # another linger time, armed later, due first
    queue.arm(Sleeper("c", fired, last), 0.03)
    time.sleep(0.05)  # a loop stalled past all three: one wakeup finds them all due
    await asyncio.wait_for(last.wait(), 5)
    assert [name for name, _ in fired] == ["a", "b", "c"]


async def test_a_failing_session_does_not_strand_the_others() -> None:
    loop = asyncio.get_running_loop()
    errors: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        queue = LingerQueue(loop)
        fired: list[tuple[str, float]] = []
        last = asyncio.Event()

        class Broken(Sleeper):
            def linger_expired(self) -> None:
                raise RuntimeError("a bug in one session")

        queue.arm(Broken("broken", fired), 0.01)
        queue.arm(Sleeper("next", fired, last), 0.01)
        await asyncio.wait_for(last.wait(), 5)
        assert [name for name, _ in fired] == ["next"]
        assert len(errors) == 1 and isinstance(errors[0]["exception"], RuntimeError)
        assert len(queue) == 0
    finally:
        loop.set_exception_handler(None)


async def test_a_session_armed_again_by_an_earlier_callback_waits_for_its_new_deadline() -> None:
    queue, fired, last = _queue()
    second = Sleeper("second", fired)

    class Rearming(Sleeper):
        def linger_expired(self) -> None:
            super().linger_expired()
            queue.arm(second, 0.15)  # as shutdown does when it closes a lingering session again

    queue.arm(Rearming("first", fired), 0.01)
    queue.arm(second, 0.01)
    queue.arm(Sleeper("sentinel", fired, last), 0.08)
    time.sleep(0.03)  # both first and second are due in the same wakeup
    await asyncio.wait_for(last.wait(), 5)
    assert [name for name, _ in fired] == ["first", "sentinel"]
    assert len(queue) == 1  # second waits for its new deadline
    queue.close()
    assert [name for name, _ in fired] == ["first", "sentinel", "second"]


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



async def test_shutdown_shortens_a_linger_already_running() -> None:
    seen: list[ev.Event] = []
    async with SessionManager(linger=30.0) as manager:
        manager.subscribe(seen.append)
        listener = await manager.start_listener(build_service("motd", {"message": "bye\\n"}))
        reader, writer = await asyncio.open_connection(*listener.address)
        assert await asyncio.wait_for(reader.read(), 5) == b"bye\n"
        await wait_until(lambda: len(manager.lingers) == 1, 5)  # lingering, for up to 30 s
        started = time.monotonic()
    # Leaving the block shut the manager down: the linger was cut to 1 s, not waited out.
    assert time.monotonic() - started < 5
    closed = [e for e in seen if isinstance(e, ev.SessionClosed)]
    assert len(closed) == 1 and closed[0].closed_by == "us"
    assert not any(isinstance(e, (ev.SessionReset, ev.SessionAborted)) for e in seen)
    assert len(manager.lingers) == 0
    writer.close()
