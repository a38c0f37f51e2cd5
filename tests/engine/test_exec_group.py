"""exec stops a connection's whole process group: a pipeline's grandchildren never outlive it."""

from __future__ import annotations

import asyncio
import os

import pytest

from tcpbench.engine import SessionManager
from tcpbench.engine.exec_handler import ExecService
from tests.conftest import wait_until
from tests.procutil import process_group

pytestmark = pytest.mark.timeout(30)


_group = process_group


@pytest.mark.parametrize("how", ["peer closes", "peer resets", "manager shuts down"])
async def test_a_pipelines_grandchildren_are_stopped_and_reaped(how: str) -> None:
    async with asyncio.timeout(20):
        async with SessionManager(linger=0.5) as manager:
            service = ExecService(allow_exec=True, shell="tail -f /dev/null | cat", grace=0.2)
            listener = await manager.start_listener(service)
            reader, writer = await asyncio.open_connection(*listener.address)
            await wait_until(lambda: service.children, 5, "program started")
            pgid = next(iter(service.children.values()))
            # sh, tail and cat: all in the connection's own group (sh may exec the last one).
            await wait_until(lambda: len(_group(pgid)[0]) >= 2, 5, "the pipeline running")
            assert os.getpgid(pgid) == pgid != os.getpgrp()
            if how == "peer closes":
                writer.close()
                await wait_until(lambda: not service.children, 10, "program stopped")
            elif how == "peer resets":
                writer.transport.abort()
                await wait_until(lambda: not service.children, 10, "program stopped")
        # Every member is gone: none alive, and none left as a zombie.
        await wait_until(lambda: _group(pgid) == ([], []), 5, f"group {pgid} empty: {_group(pgid)}")
        writer.close()
