"""fuzz: stream random bytes to whoever connects (the seed's `head -c N /dev/urandom`).

`--mode raw` sends N random bytes; `--mode http` first reads the request head,
then sends a valid HTTP/1.0 response head and N random bytes as the body (the
seed's `cat response1.txt -`), so a browser gets past its HTTP parser and feeds
gibberish to its HTML engine. Either way the close is graceful (FIN, then the
peer's input is drained): the browser sees the end of the body, never a reset.

Replay: the listener has one seed S (given with `--seed` or chosen at start, and
announced by a Note at the first timer tick). Sessions are numbered in accept order k = 0, 1, 2, ...; session k
streams the bytes of seed S + k, and its Note says so. To replay what crashed a
client, start `tcpbench serve fuzz --seed S+k` and connect once: the first
session of that listener gets exactly those bytes again.

This module is pure: generation only (`random.Random(seed).randbytes` in chunks).
The streaming, with flow control and the rate limit, is the engine's
(`tcpbench.engine.fuzz_handler`).
"""

from __future__ import annotations

import random
from typing import Iterator

from tcpbench.services.base import Note, Option, OptionError, Service

CHUNK = 256 * 1024
MAX_HEAD = 64 * 1024
"""Read at most this much of a request head in http mode before answering anyway."""
HEAD_TIMEOUT = 30.0
"""http mode: answer after this many seconds even if the request head is incomplete
(or close without answering if nothing at all arrived)."""


def random_chunks(seed: int, size: int, chunk: int = CHUNK) -> Iterator[bytes]:
    """`size` bytes from `random.Random(seed)`, in chunks of at most `chunk` bytes.

    `randbytes` draws whole 32-bit words, so with chunks a multiple of 4 bytes the
    concatenated stream depends only on the seed, not on how it is cut (the rate
    limit uses smaller chunks than the unlimited stream; the bytes stay the same).
    """
    if chunk <= 0 or chunk % 4:
        raise ValueError("chunk must be a positive multiple of 4")
    rng = random.Random(seed)
    left = size
    while left > 0:
        n = min(chunk, left)
        yield rng.randbytes(n)
        left -= n


def http_head(content_type: str) -> bytes:
    """The HTTP/1.0 head of the seed's response1.txt: the body ends at our FIN."""
    return (f"HTTP/1.0 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n"
            ).encode("latin-1")


def head_complete(received: bytes) -> bool:
    """Has a request head ended (blank line), or is it too long to wait for?"""
    return b"\r\n\r\n" in received or b"\n\n" in received or len(received) >= MAX_HEAD


class FuzzService(Service):
    """Per-listener state: the seed and the accept-order counter. The engine
    (`tcpbench.engine.fuzz_handler`) sets `handler`."""

    name = "fuzz"
    summary = "send random bytes (raw, or after a valid HTTP head) to fuzz a client"
    options = (
        Option("mode", str, "raw", "raw: random bytes only; http: an HTTP/1.0 200 head, then random body",
               "MODE", ("raw", "http")),
        Option("bytes", int, 1_000_000, "how many random bytes per session", "N"),
        Option("rate", float, 0.0, "bytes per second per session (0 = as fast as the peer reads)",
               "BYTES_PER_S"),
        Option("seed", int, None, "seed of the first session (session k uses seed+k); "
                                  "chosen and announced when absent", "S"),
        Option("content_type", str, "text/html; charset=utf-8", "http mode: the Content-Type", "TYPE"),
    )

    def __init__(self, mode: str = "raw", bytes: int = 1_000_000, rate: float = 0.0,
                 seed: int | None = None, content_type: str = "text/html; charset=utf-8") -> None:
        if mode not in ("raw", "http"):
            raise OptionError(f"--mode {mode!r}: use raw or http")
        if bytes < 0:
            raise OptionError("--bytes must be 0 or more")
        if rate < 0:
            raise OptionError("--rate must be 0 (unlimited) or more")
        if seed is None:
            raise OptionError("fuzz needs a seed (the engine chooses one when none is given)")
        if any(c in content_type for c in "\r\n") or not content_type.isascii():
            raise OptionError("--content-type must be one line of ASCII")
        self.mode = mode
        self.size = bytes
        self.rate = rate
        self.seed = seed
        self.content_type = content_type
        self.sessions_started = 0
        self.announced = False

    tick_interval = 0.25
    """Only to announce the listener's seed once, at the first tick after it started."""

    def tick(self, now: float) -> list:
        if self.announced:
            return []
        self.announced = True
        return [Note(f"listener seed {self.seed}: session k (0, 1, 2, ... in accept order) streams "
                     f"seed {self.seed}+k", None, "fuzz", (("seed", self.seed),))]

    def next_session_seed(self) -> tuple[int, int]:
        """(order k, seed S + k) for the next session, in accept order."""
        order = self.sessions_started
        self.sessions_started += 1
        return order, self.seed + order

    def stream(self, session_seed: int, chunk: int = CHUNK) -> Iterator[bytes]:
        """Everything one session sends: the head (http mode) then the random bytes."""
        if self.mode == "http":
            yield http_head(self.content_type)
        yield from random_chunks(session_seed, self.size, chunk)

    def describe(self) -> str:
        rate = f", {self.rate:g} B/s" if self.rate else ""
        return f"fuzz {self.mode} {self.size} bytes, seed {self.seed}{rate}"
