"""The fuzz service's streaming: flow control, the rate limit and the seed Notes.

The bytes come from the pure `tcpbench.services.fuzz`; this module only paces
them. `conduit.write` waits while the peer reads slowly (flow control), and with
`--rate` we sleep until the bytes sent so far are due, so the rate holds on
average without bursts larger than one small chunk.

Seed: when `--seed` is absent the builder picks one (`secrets`) so every
listener has a known seed; each session announces its own (see the service).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from tcpbench.engine.conduit import Conduit
from tcpbench.services.base import ServiceInfo
from tcpbench.services.fuzz import CHUNK, HEAD_TIMEOUT, FuzzService, head_complete


async def _read_request_head(conduit: Conduit) -> bytes:
    """http mode: wait for the request head (bounded in size and time); return what came.

    Empty means the peer asked nothing: it sent FIN, or stayed silent for
    HEAD_TIMEOUT (a browser's speculative preconnect, closed unused later).
    """
    received = b""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout_at(loop.time() + HEAD_TIMEOUT):
            while not head_complete(received):
                data = await conduit.read()
                if not data:
                    break
                received = (received + data)[-4 - 65536:]
    except TimeoutError:
        pass
    return received


async def fuzz_session(service: FuzzService, conduit: Conduit) -> None:
    """Stream one session's bytes, then close gracefully (the engine drains the peer)."""
    order, seed = service.next_session_seed()
    conduit.note(f"fuzz session {order} of this listener: seed {seed} (listener seed {service.seed}); "
                 f"replay with --seed {seed}", topic="fuzz", seed=seed, listener_seed=service.seed,
                 order=order, mode=service.mode)
    if service.mode == "http" and not await _read_request_head(conduit):
        # Answering a connection that asked nothing would stream into a socket
        # the peer may close unread (then it resets): close quietly instead.
        conduit.note("no request arrived: closing without an answer", topic="fuzz")
        conduit.close()
        return
    rate = service.rate
    chunk = CHUNK
    if rate:
        # Small chunks keep a paced stream smooth (about 20 writes a second).
        chunk = max(4, min(CHUNK, int(rate / 20) // 4 * 4))
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    for data in service.stream(seed, chunk):
        if conduit.closed:
            return
        await conduit.write(data)
        sent += len(data)
        if rate:
            due = start + sent / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
    conduit.close()


def build_fuzz(**options: Any) -> FuzzService:
    """Build a fuzz service with its streaming handler; choose a seed if none was given."""
    if options.get("seed") is None:
        options["seed"] = secrets.randbits(32)
    service = FuzzService(**options)

    async def handler(conduit: Conduit) -> None:
        await fuzz_session(service, conduit)

    service.handler = handler
    return service


FUZZ_INFO = ServiceInfo(FuzzService.name, FuzzService.summary, FuzzService.options, build_fuzz)
