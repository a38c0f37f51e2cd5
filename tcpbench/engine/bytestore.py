"""A bounded store of what crossed a connection, kept for display.

The session counters count every byte exactly; this store only keeps the most
recent `cap` bytes of payload, with lifecycle events interleaved, so a viewer can
replay the conversation. Appending is O(1) amortised and does no formatting:
it runs on the hot path of every received chunk.

When the cap is exceeded, whole records are dropped from the front (a record
larger than the whole cap keeps only its tail). Dropped bytes are counted so a
viewer can say "N bytes no longer kept".
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Iterator, NamedTuple

from tcpbench.engine.events import Event

RECEIVED = "rx"
SENT = "tx"
EVENT = "ev"

DEFAULT_CAP = 4 * 1024 * 1024
SMALL_RECORDS = 32
"""Up to this many records live in a list; beyond, in a deque. An empty deque costs
760 bytes, which was a fifth of an idle session (10,000 connections held)."""


class Record(NamedTuple):
    """One entry of the store. `data` is empty for lifecycle events.

    A named tuple rather than a frozen dataclass: one is made per chunk on the
    hot path, and a tuple is built about three times faster (measured).
    """

    seq: int
    """Position of this record among all records ever appended to this store."""
    at: float
    session: int
    direction: str
    """RECEIVED, SENT or EVENT."""
    offset: int
    """Stream offset of data[0] in its direction (0 for events)."""
    data: bytes
    event: Event | None = None


class ByteStore:
    """Bounded, append-only log of records. Not thread-safe (one event loop).

    `cap=0` keeps nothing: for the headless commands, which print as they go
    and have no viewer. Keeping 4 MiB of recent chunks
    alive per session costs a bulk echo about a tenth of its speed (the
    allocator then hands out cache-cold memory for every read; measured with
    `perf stat` task-clock), a price worth paying only where someone can scroll back.
    """

    __slots__ = ("cap", "_records", "_kept_bytes", "dropped_bytes", "dropped_records", "next_seq")

    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        if cap < 0:
            raise ValueError("cap must not be negative")
        self.cap = cap
        self._records: list[Record] | deque[Record] = []
        self._kept_bytes = 0
        self.dropped_bytes = 0
        self.dropped_records = 0
        self.next_seq = 0

    def __len__(self) -> int:
        return len(self._records)

    @property
    def kept_bytes(self) -> int:
        return self._kept_bytes

    @property
    def first_seq(self) -> int:
        """Sequence number of the oldest record still kept (== next_seq when empty)."""
        return self._records[0].seq if self._records else self.next_seq

    def add_data(self, at: float, session: int, direction: str, offset: int, data: bytes) -> None:
        if not self.cap:
            self.dropped_bytes += len(data)
            return
        if len(data) > self.cap:
            cut = len(data) - self.cap
            self.dropped_bytes += cut
            offset += cut
            data = data[cut:]
        records = self._records
        records.append(Record(self.next_seq, at, session, direction, offset, data))
        self.next_seq += 1
        self._kept_bytes += len(data)
        if len(records) > SMALL_RECORDS and type(records) is list:
            self._records = deque(records)
        if self._kept_bytes > self.cap:
            self._trim()

    def add_event(self, event: Event, session: int) -> None:
        if not self.cap:
            return
        records = self._records
        records.append(Record(self.next_seq, event.at, session, EVENT, 0, b"", event))
        self.next_seq += 1
        if len(records) > SMALL_RECORDS and type(records) is list:
            self._records = deque(records)
        # Events cost no payload bytes but must not grow without bound either.
        if len(self._records) > self.cap // 16 + 1024:
            self._drop_oldest()

    def _trim(self) -> None:
        while self._kept_bytes > self.cap and self._records:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        records = self._records
        record = records.popleft() if type(records) is deque else records.pop(0)
        self._kept_bytes -= len(record.data)
        self.dropped_bytes += len(record.data)
        self.dropped_records += 1

    def since(self, seq: int) -> Iterator[Record]:
        """Records with `record.seq >= seq`, oldest first."""
        records = self._records
        if not records:
            return iter(())
        start = max(0, seq - records[0].seq)
        tail = len(records) - start
        if tail <= 0:
            return iter(())
        if tail < start:
            # A viewer usually wants the few newest records: walk from the right end.
            return iter(list(islice(reversed(records), tail))[::-1])
        return islice(records, start, None)

    def __iter__(self) -> Iterator[Record]:
        return iter(self._records)

    def clear(self) -> None:
        """Forget what is kept (counted as dropped); sequence numbers keep growing."""
        while self._records:
            self._drop_oldest()
