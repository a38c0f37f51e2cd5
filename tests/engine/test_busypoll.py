"""The busy-poll selector: when it spins, when it must not, and how it backs off.

Real socket pairs; the only thing faked is the clock in the test that counts polls.
(The rest of the engine suite runs on a busy-poll loop too: see conftest.py.)
"""

from __future__ import annotations

import asyncio
import selectors
import socket

import pytest

from tcpbench.engine import runtime
from tcpbench.engine.busypoll import MAX_SKIP, BusyPollEventLoop, BusyPollSelector

pytestmark = pytest.mark.timeout(20)


@pytest.fixture
def pair():
    mine, peer = socket.socketpair()
    mine.setblocking(False)
    yield mine, peer
    mine.close()
    peer.close()


@pytest.fixture
def selector(pair):
    sel = BusyPollSelector(budget_us=200)
    sel.register(pair[0], selectors.EVENT_READ)
    yield sel
    sel.close()


def traffic(sel: BusyPollSelector, pair) -> None:
    """A byte arrives, then a blocking wait returns it, as a loop sees a request."""
    mine, peer = pair
    peer.send(b"x")
    ready = sel.select(None)
    assert [key.fileobj for key, _ in ready] == [mine]
    assert mine.recv(16) == b"x"


def test_an_idle_selector_never_spins(selector, pair):
    assert selector.select(0.01) == []
    assert selector.select(0.01) == []
    traffic(selector, pair)  # the wait that saw this byte was idle before it: no spin either
    assert selector.spins == 0


def test_after_io_a_blocking_wait_spins_and_returns_what_arrives(selector, pair):
    traffic(selector, pair)
    traffic(selector, pair)  # the next request is already there when the loop looks again
    assert (selector.spins, selector.hits) == (1, 1)


def test_a_spin_that_finds_nothing_still_waits_out_the_timeout(selector, pair):
    traffic(selector, pair)
    assert selector.select(0.05) == []  # spun 200 us, then blocked for the rest
    assert (selector.spins, selector.hits) == (1, 0)
    assert selector.select(0.01) == []  # a timer woke it, not traffic: no spin
    assert selector.spins == 1


def test_misses_back_off_and_a_hit_resets(selector, pair):
    """After the k-th miss in a row the next min(2**(k-1), 64) waits after traffic block at once."""
    traffic(selector, pair)
    skipped = []
    for _ in range(8):
        before = selector.spins
        waits = 0
        while selector.spins == before:  # waits after traffic, until one spins (and misses)
            assert selector.select(0.002) == []
            waits += 1
            traffic(selector, pair)  # this wait follows an empty one: it never spins
        skipped.append(waits - 1)
    assert skipped == [0, 1, 2, 4, 8, 16, 32, MAX_SKIP]
    assert selector.hits == 0

    for _ in range(MAX_SKIP):  # sit out the back-off
        assert selector.select(0.001) == []
        traffic(selector, pair)
    spins = selector.spins
    traffic(selector, pair)  # spins, and the byte is there: a hit
    assert (selector.spins, selector.hits) == (spins + 1, 1)
    assert selector.select(0.002) == []  # a miss: back off by 1 again, not by 64
    traffic(selector, pair)
    assert selector.select(0.002) == []  # skipped
    traffic(selector, pair)
    assert selector.select(0.002) == []  # spins again
    assert selector.spins == spins + 3


def test_zero_timeouts_never_spin_and_keep_the_traffic_mark(selector, pair):
    traffic(selector, pair)
    assert selector.select(0) == [] and selector.select(-1) == []
    assert selector.spins == 0
    traffic(selector, pair)  # still counts as just after traffic
    assert selector.spins == 1


def test_a_spin_never_outlasts_a_shorter_timeout(pair):
    """A timer due in 1 ms bounds a 10 ms budget: the spin ends after ~1 ms of clock."""
    now = [0.0]

    def clock() -> float:
        now[0] += 0.0001
        return now[0]

    sel = BusyPollSelector(budget_us=10_000, clock=clock)
    sel.register(pair[0], selectors.EVENT_READ)
    try:
        traffic(sel, pair)
        assert sel.select(0.001) == []
        assert sel.spins == 1 and 8 <= now[0] / 0.0001 <= 14
    finally:
        sel.close()


def test_a_zero_budget_is_a_plain_selector(pair):
    sel = BusyPollSelector(budget_us=0)
    sel.register(pair[0], selectors.EVENT_READ)
    try:
        traffic(sel, pair)
        traffic(sel, pair)
        assert sel.spins == 0
    finally:
        sel.close()


def test_solo_polls_count_one_socket_served_alone(selector, pair):
    other_mine, other_peer = socket.socketpair()
    other_mine.setblocking(False)
    selector.register(other_mine, selectors.EVENT_READ)
    try:
        for expected in (1, 2, 3):
            traffic(selector, pair)
            assert selector.solo_polls == expected
        assert selector.select(0.001) == [] and selector.select(0) == []
        assert selector.solo_polls == 3  # an empty poll (a timer, a look between callbacks)
        pair[1].send(b"x")
        assert len(selector.select(0)) == 1 and pair[0].recv(16) == b"x"
        assert (selector.solo_polls, selector.solo_fd) == (4, pair[0].fileno())  # a look counts
        other_peer.send(b"y")
        assert len(selector.select(None)) == 1 and other_mine.recv(16) == b"y"
        assert selector.solo_polls == 1  # a different socket starts a new run
        assert selector.solo_fd == other_mine.fileno()
        traffic(selector, pair)
        assert selector.solo_polls == 1
        pair[1].send(b"x")
        other_peer.send(b"y")
        assert len(selector.select(None)) == 2
        assert (selector.solo_polls, selector.solo_fd) == (0, -1)  # two peers at once
        assert pair[0].recv(16) == b"x" and other_mine.recv(16) == b"y"
        traffic(selector, pair)
        traffic(selector, pair)
        assert selector.solo_polls == 2
    finally:
        selector.unregister(other_mine)
        other_mine.close()
        other_peer.close()


class Steps:
    """An idle step that records its calls (and may act on the n-th)."""

    def __init__(self, on_call=None) -> None:
        self.calls = 0
        self.on_call = on_call

    def __call__(self) -> None:
        self.calls += 1
        if self.on_call:
            self.on_call(self.calls)


def spin_after_traffic(sel: BusyPollSelector, pair, timeout: float = 0.02) -> list:
    """Traffic, then waits until one of them spins (past any back-off from earlier misses)."""
    for _ in range(2 * MAX_SKIP + 2):
        spins = sel.spins
        traffic(sel, pair)
        ready = sel.select(timeout)
        if sel.spins > spins:
            return ready
    raise AssertionError("the selector never spun")


def test_idle_steps_run_only_while_a_spin_finds_nothing(pair):
    sel = BusyPollSelector(budget_us=20_000)
    sel.register(pair[0], selectors.EVENT_READ)
    steps = Steps()
    sel.add_idle(steps)
    sel.add_idle(steps)  # once is enough
    try:
        assert sel.select(0.001) == [] and steps.calls == 0  # idle, blocking: no spin, no steps
        traffic(sel, pair)
        assert steps.calls == 0  # that wait blocked: it came after an idle one
        assert sel.select(0) == [] and steps.calls == 0  # a look between callbacks
        assert sel.select(0.05) == []  # spins: a step at every empty poll, for 20 ms
        assert sel.spins == 1 and steps.calls >= 5
        sel.remove_idle(steps)
        sel.remove_idle(steps)  # no error the second time
        calls, spins = steps.calls, sel.spins
        assert spin_after_traffic(sel, pair) == []
        assert sel.spins > spins and steps.calls == calls  # it spun, and called nothing
    finally:
        sel.close()


def test_io_that_comes_during_idle_work_is_returned_at_the_next_poll(pair):
    mine, peer = pair
    sel = BusyPollSelector(budget_us=20_000)
    sel.register(mine, selectors.EVENT_READ)
    steps = Steps(on_call=lambda n: n == 3 and peer.send(b"y"))
    try:
        traffic(sel, pair)
        sel.add_idle(steps)
        ready = sel.select(0.05)
        assert [key.fileobj for key, _ in ready] == [mine] and steps.calls == 3
        assert sel.hits == 1 and mine.recv(16) == b"y"
    finally:
        sel.close()


def test_an_idle_step_that_raises_is_dropped_and_logged(pair, caplog):
    sel = BusyPollSelector(budget_us=2_000)
    sel.register(pair[0], selectors.EVENT_READ)
    raised = []

    def broken() -> None:
        raised.append(1)
        sel.remove_idle(broken)  # even one that removed itself first
        raise OSError("stdout is gone")

    steps = Steps()
    sel.add_idle(broken)
    sel.add_idle(steps)
    try:
        traffic(sel, pair)
        assert sel.select(0.01) == []
        assert steps.calls >= 1  # the other step still runs
        assert "idle step" in caplog.text and "stdout is gone" in caplog.text
        calls, spins = steps.calls, sel.spins
        assert spin_after_traffic(sel, pair) == []
        assert sel.spins > spins and steps.calls > calls  # it spun: steps ran, broken did not
        assert len(raised) == 1 and len(caplog.records) == 1
    finally:
        sel.close()


def test_the_busy_poll_loop_runs_coroutines_on_its_poller():
    loop = BusyPollEventLoop(50)
    try:
        assert loop.poller.budget == 50e-6
        assert loop.run_until_complete(asyncio.sleep(0, "ran")) == "ran"
    finally:
        loop.close()


@pytest.fixture
def restore_busy_poll():
    saved = runtime._busy_poll_us
    yield
    runtime._busy_poll_us = saved


def test_the_loop_factory_follows_the_setting(restore_busy_poll, monkeypatch):
    monkeypatch.delenv("TCPBENCH_BUSY_POLL", raising=False)
    assert runtime.set_busy_poll() == 100
    loop = runtime.loop_factory()()
    try:
        assert isinstance(loop, BusyPollEventLoop) and loop.poller.budget == 100e-6
        assert loop._selector is loop.poller  # the selector the loop really polls
    finally:
        loop.close()
    monkeypatch.setenv("TCPBENCH_BUSY_POLL", "30")
    assert runtime.set_busy_poll() == 30
    assert runtime.set_busy_poll(0) == 0 and runtime.loop_factory() is None
    for bad in (-1, 10_001, float("nan")):
        with pytest.raises(ValueError, match="0 to 10000 microseconds"):
            runtime.set_busy_poll(bad)
    monkeypatch.setenv("TCPBENCH_BUSY_POLL", "fast")
    with pytest.raises(ValueError, match="TCPBENCH_BUSY_POLL must be microseconds, not 'fast'"):
        runtime.set_busy_poll()


def test_uvloop_is_left_alone(restore_busy_poll):
    uvloop = pytest.importorskip("uvloop")
    runtime.set_busy_poll(100)
    saved = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        assert runtime.loop_factory() is None
    finally:
        asyncio.set_event_loop_policy(saved)
