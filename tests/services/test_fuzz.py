"""The fuzz generator: pure, seeded, cut-independent."""

from __future__ import annotations

import random

import pytest

from tcpbench.services.base import OptionError
from tcpbench.services.fuzz import FuzzService, head_complete, http_head, random_chunks


def test_the_same_seed_gives_the_same_bytes_and_another_seed_others() -> None:
    a = b"".join(random_chunks(42, 100_000))
    assert len(a) == 100_000
    assert a == b"".join(random_chunks(42, 100_000))
    assert a != b"".join(random_chunks(43, 100_000))
    assert a == random.Random(42).randbytes(100_000)  # documented: random.Random(seed).randbytes


@pytest.mark.parametrize("chunk", [4, 1000, 4096, 65536, 1 << 20])
def test_the_stream_does_not_depend_on_the_chunk_size(chunk) -> None:
    chunks = list(random_chunks(7, 50_001, chunk))
    assert all(len(c) <= chunk for c in chunks)
    assert b"".join(chunks) == b"".join(random_chunks(7, 50_001))


def test_zero_bytes_and_bad_chunks() -> None:
    assert list(random_chunks(1, 0)) == []
    with pytest.raises(ValueError):
        list(random_chunks(1, 10, 3))


def test_sessions_take_seed_plus_their_order() -> None:
    service = FuzzService(seed=100)
    assert [service.next_session_seed() for _ in range(3)] == [(0, 100), (1, 101), (2, 102)]


def test_the_listener_seed_is_announced_once() -> None:
    service = FuzzService(seed=77)
    [note] = service.tick(1.0)
    assert note.topic == "fuzz" and note.session is None and dict(note.fields)["seed"] == 77
    assert "77" in note.text
    assert service.tick(2.0) == []


def test_http_mode_puts_a_valid_head_first() -> None:
    service = FuzzService(mode="http", bytes=10, seed=5)
    parts = list(service.stream(5))
    assert parts[0] == b"HTTP/1.0 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nConnection: close\r\n\r\n"
    assert b"".join(parts[1:]) == random.Random(5).randbytes(10)
    assert http_head("a/b").endswith(b"a/b\r\nConnection: close\r\n\r\n")


def test_head_complete() -> None:
    assert not head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n")
    assert head_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head_complete(b"GET / HTTP/1.0\n\n")
    assert head_complete(b"x" * 65536)


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "tcp"}, "--mode"), ({"bytes": -1}, "--bytes"), ({"rate": -5}, "--rate"),
    ({"content_type": "a\r\nb"}, "--content-type"),
])
def test_bad_options(kwargs, message) -> None:
    with pytest.raises(OptionError, match=message):
        FuzzService(seed=1, **kwargs)
