"""A total budget for display memory across all sessions: oldest and ended give way first, counted."""

from __future__ import annotations

import asyncio

import pytest

from tcpbench.engine import SessionManager
from tcpbench.engine.bytestore import RECEIVED, RECORD_COST, ByteStore, StoreBudget
from tcpbench.engine.registry import build_service
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(60)


def _store(budget: StoreBudget) -> ByteStore:
    store = ByteStore(1 << 20)
    budget.attach(store)
    return store


def test_ended_sessions_give_way_first_then_the_oldest_live_ones() -> None:
    cost = 100 + RECORD_COST
    budget = StoreBudget(limit=10 * cost)
    old, ended, young = _store(budget), _store(budget), _store(budget)
    for store in (old, ended, young):
        for i in range(3):
            store.add_data(0.0, 1, RECEIVED, i * 100, b"x" * 100)
    assert budget.total == 9 * cost and budget.dropped_records == 0
    budget.ended(ended)
    old.add_data(0.0, 1, RECEIVED, 300, b"y" * 100)  # 10: at the limit, nothing dropped
    assert budget.dropped_records == 0
    young.add_data(0.0, 1, RECEIVED, 300, b"z" * 100)  # 11: the ended store's oldest goes
    assert (len(ended), ended.dropped_bytes, budget.dropped_bytes) == (2, 100, 100)
    for i in range(2):
        young.add_data(0.0, 1, RECEIVED, 400 + i * 100, b"z" * 100)
    assert len(ended) == 0  # all of the ended one first
    young.add_data(0.0, 1, RECEIVED, 600, b"z" * 100)
    assert (len(old), old.dropped_records) == (3, 1)  # then the oldest live one, oldest record
    assert [r.offset for r in old] == [100, 200, 300]
    assert budget.total == 10 * cost == sum(s.kept_cost for s in (old, ended, young))
    assert budget.dropped_records == 4 and budget.dropped_bytes == 400
    budget.forget(young)
    assert budget.total == old.kept_cost and young.budget is None


def test_a_record_bigger_than_the_budget_leaves_nothing_behind() -> None:
    budget = StoreBudget(limit=1000)
    store = _store(budget)
    store.add_data(0.0, 1, RECEIVED, 0, b"x" * 5000)
    assert budget.total == 0 and len(store) == 0 and budget.dropped_bytes == 5000


async def test_many_chatty_sessions_stay_within_the_budget_counted_exactly() -> None:
    limit = 300 * 1024
    async with asyncio.timeout(40):
        async with SessionManager(store_cap=1 << 20, store_budget=limit, linger=0.5) as manager:
            listener = await manager.start_listener(build_service("echo"))

            async def chatty(i: int) -> None:
                reader, writer = await asyncio.open_connection(*listener.address)
                for n in range(10):
                    line = b"%04d:%02d:" % (i, n) + b"x" * 991 + b"\n"
                    writer.write(line)
                    assert await reader.readexactly(len(line)) == line
                if i % 2:  # half of them end, half stay open
                    writer.close()
                    await writer.wait_closed()
                else:
                    clients.append(writer)

            clients: list[asyncio.StreamWriter] = []
            try:
                await asyncio.gather(*(chatty(i) for i in range(200)))
            except BaseException:
                for writer in clients:
                    writer.close()
                raise
            await wait_until(lambda: len(manager.sessions) == 100, 10, "half ended")
            sessions = [s for s in manager.history.values() if s.listener_id == listener.id]
            assert len(sessions) == 200
            budget = manager.budget
            kept = sum(s.store.kept_cost for s in manager.history.values())
            assert budget.total == kept <= limit
            # Every byte either kept or counted as dropped, exactly.
            moved = sum(s.bytes_in + s.bytes_out for s in manager.history.values())
            assert moved == 200 * 10 * 1000 * 2
            stores = [s.store for s in manager.history.values()]
            assert sum(st.kept_bytes for st in stores) + sum(st.dropped_bytes for st in stores) == moved
            assert budget.dropped_bytes == sum(st.dropped_bytes for st in stores) > 0
            # No per-store cap was reached: every drop was the budget's, record for record.
            assert budget.dropped_records == sum(st.dropped_records for st in stores) > 0
            for writer in clients:
                writer.close()
