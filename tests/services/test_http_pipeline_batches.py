"""Pipelined requests are answered in batches as the peer reads (a Resume effect between)."""

from __future__ import annotations

import pytest

from tcpbench.services.base import Close, Resume, Send
from tcpbench.services.http import PIPELINE_BATCH, HttpService

GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("parser", ["httptools", "h11"])
@pytest.mark.parametrize("fin", [False, True])
def test_answers_wait_for_writable_and_come_out_the_same(parser, fin) -> None:
    body = "b" * (PIPELINE_BATCH // 2 + 1)
    service = HttpService(parser=parser, body=body)
    service.session_opened(1, ("127.0.0.1", 1), ("127.0.0.1", 2), 0.0)
    effects = service.data_received(1, GET * 5, 0.0)
    assert effects[-1] == Resume(1) and len([e for e in effects if isinstance(e, Send)]) == 2
    assert service.data_received(1, GET, 0.0) == []     # held: more requests just queue
    if fin:
        assert service.peer_half_closed(1, 0.0) == []  # held: the close waits for the answers
    assert service.tick(1000.0) == []                   # held: no 408, flow control decides
    while effects[-1] == Resume(1):
        effects += service.writable(1, 0.0)
    sends = [e for e in effects if isinstance(e, Send)]
    assert len(sends) == 6 and all(e.data.endswith(body.encode()) for e in sends)
    assert isinstance(effects[-1], Close) if fin else not any(isinstance(e, Close) for e in effects)
    whole = HttpService(parser=parser, body="x")
    whole.session_opened(1, ("127.0.0.1", 1), ("127.0.0.1", 2), 0.0)
    assert Resume(1) not in whole.data_received(1, GET * 100, 0.0)  # small answers: one batch
