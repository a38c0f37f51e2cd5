"""The port probe against real loopback sockets: open, refused, timed out, banners, TCP wrappers."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from tcpbench.engine import events as ev
from tcpbench.engine.errors import NAME_NOT_RESOLVED, REFUSED, TIMED_OUT, explain_reason
from tcpbench.engine.probe import (CLOSE_LINGER_MAX, CLOSE_LINGER_MIN, EXPLAIN_OPEN, OPEN,
                                   ProbeResult, close_linger, line_to_send, parse_ports, probe,
                                   probe_list, resolve_addresses, summarize)
from tcpbench.engine.registry import build_service
from tests.netutil import closed_port, silent_port


async def motd(manager, message: str, keep_open: bool = False) -> int:
    service = build_service("motd", {"message": message, "keep_open": keep_open})
    listener = await manager.start_listener(service, "127.0.0.1", 0)
    return listener.port


def test_parse_ports_forms():
    assert parse_ports("22") == [22]
    assert parse_ports("22,80,443") == [22, 80, 443]
    assert parse_ports("8000-8003") == [8000, 8001, 8002, 8003]
    assert parse_ports("ssh,http") == [socket.getservbyname("ssh"), socket.getservbyname("http")]
    # mixed, with spaces, duplicates dropped and the first order kept
    assert parse_ports("443, ssh ,20-23,22") == [443, 22, 20, 21, 23]
    assert parse_ports("1-65535")[-1] == 65535


@pytest.mark.parametrize("text, words", [
    ("", "empty item"), ("1,,2", "empty item"), ("0", "out of range"), ("65536", "out of range"),
    ("10-5", "backwards"), ("nosuchservice", "unknown service"), ("1-", "bad port"),
    ("-5", "bad port"), ("a b", "bad port"), ("[x]", "bad port"), ("1-99999", "out of range"),
])
def test_parse_ports_rejects_with_one_line(text, words):
    with pytest.raises(ValueError) as info:
        parse_ports(text)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


async def test_open_port(manager):
    port = await motd(manager, "hello")
    [result] = await probe_list("127.0.0.1", [port], timeout=5)
    assert result == ProbeResult("127.0.0.1", "127.0.0.1", port, OPEN, result.ms, "", EXPLAIN_OPEN)
    assert result.ok and result.ms >= 0


async def test_refused_port():
    port = closed_port()
    [result] = await probe_list("127.0.0.1", [port], timeout=5)
    assert result.outcome == REFUSED
    assert result.error == "Connection refused"
    assert result.explanation == explain_reason(REFUSED)
    assert "RST" in result.explanation and not result.ok


async def test_timed_out_port():
    with silent_port() as port:
        started = time.monotonic()
        [result] = await probe_list("127.0.0.1", [port], timeout=0.3)
        elapsed = time.monotonic() - started
    assert result.outcome == TIMED_OUT, result
    assert result.error == "no answer within 0.3 s"
    assert "DROP" in result.explanation
    assert result.ms >= 290 and elapsed < 5


async def test_unresolvable_name_is_one_result():
    results = await probe_list("no-such-host.invalid", [22, 80], timeout=2)
    assert len(results) == 1
    assert results[0].outcome == NAME_NOT_RESOLVED and results[0].port is None
    assert results[0].error and "resolve" in results[0].explanation


async def test_results_in_port_then_address_order(manager):
    open_port = await motd(manager, "x")
    closed = closed_port()
    ports = [closed, open_port, closed + 0]  # a repeat is the caller's business: kept
    results = await probe_list("127.0.0.1", ports, timeout=5, concurrency=3)
    assert [(r.port, r.outcome) for r in results] == [(closed, REFUSED), (open_port, OPEN),
                                                      (closed, REFUSED)]
    assert summarize(results) == {OPEN: 1, REFUSED: 2}


async def test_every_address_is_tried():
    ipv6 = socket.has_ipv6
    try:
        with socket.socket(socket.AF_INET6) as probe_sock:
            probe_sock.bind(("::1", 0))
    except OSError:
        ipv6 = False
    if not ipv6:
        pytest.skip("no IPv6 loopback on this machine")
    port = closed_port()
    results = await probe_list("localhost", [port, port + 0], timeout=5,
                               addresses=["127.0.0.1", "::1"])
    assert [(r.address, r.port) for r in results] == [("127.0.0.1", port), ("::1", port)] * 2
    assert await resolve_addresses("::1") == ["::1"]
    assert await resolve_addresses("127.0.0.1") == ["127.0.0.1"]


async def test_thousand_closed_ports_finish_fast():
    started = time.monotonic()
    results = await probe_list("127.0.0.1", parse_ports("1-1000"), timeout=2, concurrency=100)
    assert len(results) == 1000
    assert [r.port for r in results] == list(range(1, 1001))
    assert time.monotonic() - started < 20  # measured ~0.1 s; loose bound for a loaded box


async def test_banner_grab_and_graceful_close(manager):
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    port = await motd(manager, "SSH-2.0-tcpbench_test", keep_open=True)
    [result] = await probe_list("127.0.0.1", [port], timeout=3, banner=True)
    assert result.outcome == OPEN and result.banner == b"SSH-2.0-tcpbench_test\n"
    assert not result.service_refused and result.ok
    # Our FIN made the motd session close; never a reset.
    from tests.conftest import wait_until
    await wait_until(lambda: any(isinstance(e, ev.SessionClosed) for e in seen), 5, "closed")
    assert not any(isinstance(e, (ev.SessionReset, ev.SessionAborted)) for e in seen)
    assert result.to_dict()["banner"] == "SSH-2.0-tcpbench_test\\n"


async def test_plain_probe_with_unread_greeting_sends_no_rst(manager):
    seen: list[ev.Event] = []
    manager.subscribe(seen.append)
    port = await motd(manager, "220 greeting we never read", keep_open=True)
    [result] = await probe_list("127.0.0.1", [port], timeout=3)
    assert result.outcome == OPEN and result.banner is None
    from tests.conftest import wait_until
    await wait_until(lambda: any(isinstance(e, ev.SessionClosed) for e in seen), 5, "closed")
    assert not any(isinstance(e, ev.SessionReset) for e in seen)


async def test_send_and_answer(manager):
    listener = await manager.start_listener(build_service("echo"), "127.0.0.1", 0)
    [result] = await probe_list("127.0.0.1", [listener.port], timeout=3, send=b"PING \x1b[31m\r\n")
    assert result.banner == b""
    assert result.answer == b"PING \x1b[31m\r\n"
    assert result.to_dict()["answer"] == "PING \\e[31m\\r\\n"
    assert result.ok


async def test_silent_service_is_explained(manager):
    listener = await manager.start_listener(build_service("echo"), "127.0.0.1", 0)
    [result] = await probe_list("127.0.0.1", [listener.port], timeout=0.3, banner=True)
    assert result.ok and result.banner == b""
    assert "sent nothing first" in result.explanation


async def test_421_greeting_is_a_tcp_wrappers_refusal(manager):
    port = await motd(manager, "421 Service not available.\\r\\n")
    [result] = await probe_list("127.0.0.1", [port], timeout=3, banner=True)
    assert result.outcome == OPEN and result.service_refused and not result.ok
    assert "TCP wrappers" in result.explanation and "421 Service not available." in result.explanation
    assert result.banner == b"421 Service not available.\r\n"


async def test_immediate_close_without_data_is_a_refusal(manager):
    port = await motd(manager, "")  # empty message: the server closes at once
    [result] = await probe_list("127.0.0.1", [port], timeout=3, banner=True)
    assert result.outcome == OPEN and result.service_refused
    assert "closed at once, with no data" in result.explanation


async def test_closing_the_generator_early_cancels_pending_probes():
    with silent_port() as silent:
        started = time.monotonic()
        stream = probe("127.0.0.1", [closed_port(), silent], timeout=30, concurrency=2)
        first = await anext(stream)
        await stream.aclose()
        assert first.outcome == REFUSED
        assert time.monotonic() - started < 5


async def test_bad_arguments():
    with pytest.raises(ValueError):
        await probe_list("127.0.0.1", [1], timeout=0)
    with pytest.raises(ValueError):
        await probe_list("127.0.0.1", [1], concurrency=0)


async def test_result_order_is_stable_with_a_slow_first_port():
    with silent_port() as silent:
        ports = [silent, *[closed_port() for _ in range(3)]]
        results = await asyncio.wait_for(probe_list("127.0.0.1", ports, timeout=0.3), 10)
    assert [r.port for r in results] == ports
    assert [r.outcome for r in results] == [TIMED_OUT, REFUSED, REFUSED, REFUSED]


def test_close_linger_is_ten_round_trips_within_bounds():
    assert close_linger(0.00005) == CLOSE_LINGER_MIN  # loopback: 50 us connect
    assert close_linger(0.02) == pytest.approx(0.2)  # a 20 ms path
    assert close_linger(2.0) == CLOSE_LINGER_MAX  # a slow path never waits more than the cap


@pytest.mark.parametrize("text, sent", [
    ("EHLO x", b"EHLO x\r\n"),
    ("PING", b"PING\r\n"),
    ("HEAD / HTTP/1.0", b"HEAD / HTTP/1.0\r\n\r\n"),
    ("GET /index.html HTTP/1.1\\r\\nHost: a", b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n"),
    ("GET / HTTP/1.0\\r\\n", b"GET / HTTP/1.0\r\n\r\n"),  # the blank line is there
    ("get / http/1.0", b"get / http/1.0\r\n"),  # not a request line as a server reads it
])
def test_line_to_send_ends_an_http_request_with_its_blank_line(text, sent):
    assert line_to_send(text) == sent


async def test_http10_answer_then_close_is_an_answer_not_a_refusal(manager):
    listener = await manager.start_listener(build_service("http"), "127.0.0.1", 0)
    [result] = await probe_list("127.0.0.1", [listener.port], timeout=3,
                                send=line_to_send("HEAD / HTTP/1.0"))
    assert result.answer is not None and result.answer.startswith(b"HTTP/1.1 200 ")
    assert not result.service_refused and result.ok
    assert "TCP wrappers" not in result.explanation
