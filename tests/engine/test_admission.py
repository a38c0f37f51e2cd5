"""Admission rules on real loopback sockets: --allow/--deny, --max-conns, and how refusals look."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tcpbench.engine import SessionManager, events as ev
from tcpbench.engine.admission import (AdmissionError, AdmissionPolicy, build_policy, parse_cidr,
                                       parse_refusal, read_cidr_file)
from tcpbench.engine.registry import build_service
from tests.conftest import wait_until

pytestmark = pytest.mark.timeout(30)


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


async def _start(manager: SessionManager, host: str = "127.0.0.1", **rules):
    refusals: list[ev.ConnectionRefusedByRule] = []
    manager.subscribe(lambda e: refusals.append(e) if isinstance(e, ev.ConnectionRefusedByRule) else None)
    refusal = rules.pop("refusal", None)
    policy = build_policy(refusal=parse_refusal(refusal) if refusal else None, **rules)
    listener = await manager.start_listener(build_service("echo"), host, 0, admission=policy)
    return listener, refusals


async def _connect(port: int, host: str = "127.0.0.1", source: str | None = None):
    return await asyncio.open_connection(host, port, local_addr=(source, 0) if source else None)


async def _echoes(reader, writer) -> bool:
    writer.write(b"ping\n")
    return await asyncio.wait_for(reader.readline(), 5) == b"ping\n"


async def _close(writer) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except ConnectionError:
        pass


# --- the rules themselves ---------------------------------------------------------------


def test_deny_wins_and_allow_restricts_and_mapped_ipv4_matches() -> None:
    policy = build_policy(allow=["127.0.0.0/8", "::1"], deny=["127.0.0.2"])
    assert policy.decide("127.0.0.1", 0) is None
    assert policy.decide("127.0.0.2", 0) == ("denied", "denied by 127.0.0.2/32")
    assert policy.decide("10.1.2.3", 0)[0] == "not-allowed"
    assert policy.decide("::1", 0) is None
    assert policy.decide("::ffff:127.0.0.2", 0)[0] == "denied"  # an IPv4 peer on a dual-stack socket
    assert policy.decide("::ffff:127.0.0.9", 0) is None
    assert build_policy(deny=["::ffff:0:0/96"]).decide("::ffff:10.0.0.1", 0)[0] == "denied"
    assert build_policy(deny=["fe80::/10"]).decide("fe80::1%lo", 0)[0] == "denied"
    assert AdmissionPolicy(max_conns=2).decide("1.2.3.4", 1) is None
    assert AdmissionPolicy(max_conns=2).decide("1.2.3.4", 2)[0] == "max-conns"


@pytest.mark.parametrize("text", ["10.0.0.0/33", "300.1.1.1", "nonsense", "", "::1/129", "10.0.0.0/8/8"])
def test_an_invalid_cidr_is_refused_with_one_line(text: str) -> None:
    with pytest.raises(AdmissionError) as info:
        parse_cidr(text)
    assert "\n" not in str(info.value) and repr(text) in str(info.value)


def test_cidr_files_have_comments_and_name_the_bad_line(tmp_path) -> None:
    good = tmp_path / "allow.txt"
    good.write_text("# the lab\n10.0.0.0/8  # trailing comment\n\n  ::1\n")
    assert [str(n) for n in read_cidr_file(str(good))] == ["10.0.0.0/8", "::1/128"]
    bad = tmp_path / "bad.txt"
    bad.write_text("10.0.0.0/8\nnot-an-address\n")
    with pytest.raises(AdmissionError, match=r"bad.txt line 2: 'not-an-address' is not"):
        read_cidr_file(str(bad))
    with pytest.raises(AdmissionError, match="cannot read"):
        read_cidr_file(str(tmp_path / "missing.txt"))


@pytest.mark.parametrize("text", ["banner:", "banner:a\x1bb", "drop", "close:x", "banner:" + "x" * 600])
def test_bad_refusal_modes(text: str) -> None:
    with pytest.raises(AdmissionError):
        parse_refusal(text)


# --- what a refused client sees ----------------------------------------------------------


async def test_close_refusal_is_a_clean_eof_counted_and_evented(manager: SessionManager) -> None:
    listener, refusals = await _start(manager, deny=["127.0.0.0/8"])
    async with asyncio.timeout(10):
        reader, writer = await _connect(listener.port)
        assert await reader.read() == b""  # FIN, no data, no RST
        await _close(writer)
        await wait_until(lambda: refusals, 5, "refusal event")
    assert listener.refused == 1 and listener.accepted == 0 and not manager.sessions
    refusal = refusals[0]
    assert (refusal.reason, refusal.how, refusal.listener) == ("denied", "close", listener.id)
    assert refusal.peer == writer.get_extra_info("sockname")[:2]
    assert "denied by 127.0.0.0/8" == refusal.detail


async def test_reset_refusal_is_an_rst(manager: SessionManager) -> None:
    listener, refusals = await _start(manager, deny=["127.0.0.1"], refusal="reset")
    async with asyncio.timeout(10):
        # On loopback the RST can beat the client's own look at its connect, so the
        # reset shows up there or at the first read: either way, ECONNRESET.
        with pytest.raises(ConnectionResetError):
            reader, writer = await _connect(listener.port)
            try:
                await reader.read()
            finally:
                await _close(writer)
    assert [r.how for r in refusals] == ["reset"] and listener.refused == 1


async def test_banner_refusal_sends_the_line_then_eof(manager: SessionManager) -> None:
    listener, refusals = await _start(manager, allow=["10.0.0.0/8"],
                                      refusal="banner:421 Service not available")
    async with asyncio.timeout(10):
        reader, writer = await _connect(listener.port)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")  # sent before it read the banner: still no RST
        assert await reader.read() == b"421 Service not available\r\n"
        await _close(writer)
    assert refusals[0].reason == "not-allowed" and refusals[0].how == "banner"


async def test_deny_wins_over_allow_per_source_address(manager: SessionManager) -> None:
    listener, refusals = await _start(manager, allow=["127.0.0.0/8"], deny=["127.0.0.2/32"])
    async with asyncio.timeout(10):
        reader, writer = await _connect(listener.port, source="127.0.0.1")
        assert await _echoes(reader, writer)
        denied_reader, denied_writer = await _connect(listener.port, source="127.0.0.2")
        assert await denied_reader.read() == b""
        await _close(denied_writer)
        assert await _echoes(reader, writer)  # the admitted one is untouched
        await _close(writer)
    assert [(r.reason, r.peer[0]) for r in refusals] == [("denied", "127.0.0.2")]
    assert listener.accepted == 1 and listener.refused == 1


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
async def test_ipv6_rules_on_loopback(manager: SessionManager) -> None:
    denied, refusals = await _start(manager, "::1", deny=["::1/128"])
    allowed = await manager.start_listener(build_service("echo"), "::1", 0,
                                           admission=build_policy(allow=["::1"], deny=["10.0.0.0/8"]))
    async with asyncio.timeout(10):
        reader, writer = await _connect(denied.port, "::1")
        assert await reader.read() == b""
        await _close(writer)
        reader, writer = await _connect(allowed.port, "::1")
        assert await _echoes(reader, writer)
        await _close(writer)
    assert [(r.reason, r.peer[0]) for r in refusals] == [("denied", "::1")]
    assert allowed.refused == 0


@pytest.mark.skipif(not _has_ipv6(), reason="no IPv6 loopback")
async def test_dual_stack_matches_ipv4_peers_as_ipv4(manager: SessionManager) -> None:
    listener, refusals = await _start(manager, "::", deny=["127.0.0.1/32"])
    async with asyncio.timeout(10):
        reader, writer = await _connect(listener.port, "127.0.0.1")
        assert await reader.read() == b""
        await _close(writer)
        reader, writer = await _connect(listener.port, "::1")
        assert await _echoes(reader, writer)
        await _close(writer)
    assert [(r.reason, r.peer[0]) for r in refusals] == [("denied", "127.0.0.1")]


async def test_max_conns_refuses_the_next_and_admits_again_once_one_leaves(manager: SessionManager) -> None:
    listener, refusals = await _start(manager, max_conns=3, refusal="banner:421 too many connections")
    async with asyncio.timeout(15):
        held = [await _connect(listener.port) for _ in range(3)]
        for reader, writer in held:
            assert await _echoes(reader, writer)
        reader, writer = await _connect(listener.port)
        assert await reader.read() == b"421 too many connections\r\n"
        await _close(writer)
        assert [r.reason for r in refusals] == ["max-conns"]
        await _close(held[0][1])
        await wait_until(lambda: len(listener.sessions) == 2, 5, "one left")
        reader, writer = await _connect(listener.port)
        assert await _echoes(reader, writer)
        held[0] = (reader, writer)
        for reader, writer in held:
            await _close(writer)
    assert listener.refused == 1 and listener.accepted == 4


async def test_max_conns_holds_under_a_burst(manager: SessionManager) -> None:
    # Fifty connects at once: the batch admits exactly the limit, the rest are turned away.
    listener, refusals = await _start(manager, max_conns=5)
    async with asyncio.timeout(15):
        clients = await asyncio.gather(*(_connect(listener.port) for _ in range(50)))
        await wait_until(lambda: listener.refused + listener.accepted == 50, 10, "all 50 decided")
        assert listener.accepted == 5 and listener.refused == 45 == len(refusals)
        for reader, writer in clients:
            await _close(writer)
