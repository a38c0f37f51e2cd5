"""A bounded store of what crossed a connection, kept for display.

The session counters count every byte exactly; this store only keeps the most
recent `cap` bytes of payload, with lifecycle events interleaved, so a viewer can
replay the conversation. Appending is O(1) amortised and does no formatting:
it runs on the hot path of every received chunk.

When the cap is exceeded, whole records are dropped from the front (a record
larger than the whole cap keeps only its tail). The cap bounds the records too:
a store keeps at most `cap // RECORD_COST` of them, so a session of one-byte
chunks or of chat lines costs about as much memory as a bulk one. Dropped bytes
are counted so a viewer can say "N bytes no longer kept".

A per-session cap alone does not bound the process: 10,000 chatty connections
at 4 MiB each would be 40 GiB. A `StoreBudget` shared by all of a manager's
stores bounds their total, counted as the memory the records really hold
(payload plus `RECORD_COST` per data record, `event_cost` per event record):
over budget, ended sessions' stores give up their oldest records first (the
longest-ended first), then live ones (the oldest session first); each such
drop is counted in the budget and in the store that lost the record.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from itertools import islice
from typing import TYPE_CHECKING, Iterator, NamedTuple

if TYPE_CHECKING:
    # Annotations only: the byte log imports this module before the first frame,
    # without the event classes.
    from tcpbench.engine.events import Event

RECEIVED = "rx"
SENT = "tx"
EVENT = "ev"

DEFAULT_CAP = 4 * 1024 * 1024
DEFAULT_BUDGET = 64 * 1024 * 1024
"""All stores of one manager together (the UI's default). Small enough that a busy workbench
reaches it within minutes and then holds steady (a larger one kept the process growing for
the whole of a 10-minute soak), large enough for 16 bulk sessions at their full cap."""
RECORD_COST = 232
"""What one data record holds beside its payload: the Record tuple (104 bytes), the bytes
object's header (33), its float and two ints (80) and the container's slot (8); measured
with tracemalloc on CPython 3.11: 253 bytes for a record of a 20-byte chunk."""
EVENT_COST = 360
"""What one event record holds: the Record tuple and its slot, the event object and its text
(a `ServiceNoted` access line measured 220 bytes with tracemalloc on CPython 3.11)."""
FIELDS_COST = 56
"""The `fields` tuple of a note that has any (its pairs are counted by `FIELD_COST`)."""
FIELD_COST = 100
"""Each (name, value) pair of an event's `fields` beside its value's length: the pair tuple
and the value string's header (a chat line's two fields measured 290 bytes together)."""
MIN_RECORDS = 64
"""A store keeps at least this many records, however small its cap."""
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


def record_cost(record: Record) -> int:
    """What the budget counts for one record: payload plus `RECORD_COST`, or `event_cost`."""
    return len(record.data) + RECORD_COST if record.event is None else event_cost(record.event)


def event_cost(event: Event) -> int:
    """What an event record holds, as the budget counts it: `EVENT_COST`, plus the text and
    fields of a note (a chat line's note measured 666 bytes with tracemalloc, an access line 394)."""
    text = getattr(event, "text", None)
    if text is None:
        return EVENT_COST
    cost = EVENT_COST + len(text)
    fields = getattr(event, "fields", ())
    if fields:
        cost += FIELDS_COST
        for _, value in fields:
            cost += FIELD_COST + (len(value) if isinstance(value, str) else 0)
    return cost


class ByteStore:
    """Bounded, append-only log of records. Not thread-safe (one event loop).

    `cap=0` keeps nothing: for the headless commands, which print as they go
    and have no viewer. Keeping 4 MiB of recent chunks
    alive per session costs a bulk echo about a tenth of its speed (the
    allocator then hands out cache-cold memory for every read; measured with
    `perf stat` task-clock), a price worth paying only where someone can scroll back.
    """

    __slots__ = ("cap", "max_records", "_records", "_kept_bytes", "_kept_cost", "dropped_bytes",
                 "dropped_records", "next_seq", "budget")

    def __init__(self, cap: int = DEFAULT_CAP) -> None:
        if cap < 0:
            raise ValueError("cap must not be negative")
        self.cap = cap
        self.max_records = max(MIN_RECORDS, cap // RECORD_COST)
        self._records: list[Record] | deque[Record] = []
        self._kept_bytes = 0
        self._kept_cost = 0
        self.dropped_bytes = 0
        self.dropped_records = 0
        self.next_seq = 0
        self.budget: StoreBudget | None = None
        """The total this store shares with the others (set by `StoreBudget.attach`)."""

    def __len__(self) -> int:
        return len(self._records)

    @property
    def kept_bytes(self) -> int:
        return self._kept_bytes

    @property
    def kept_cost(self) -> int:
        """What the budget counts for this store: payload plus `RECORD_COST` per data record
        and `event_cost` per event record."""
        return self._kept_cost

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
        cost = len(data) + RECORD_COST
        self._kept_cost += cost
        if len(records) > SMALL_RECORDS and type(records) is list:
            self._records = deque(records)
        budget = self.budget
        if budget is not None:
            budget.total += cost
        if self._kept_bytes > self.cap or len(self._records) > self.max_records:
            self._trim()
        if budget is not None and budget.total > budget.limit:
            budget.evict()

    def add_event(self, event: Event, session: int) -> None:
        if not self.cap:
            return
        records = self._records
        records.append(Record(self.next_seq, event.at, session, EVENT, 0, b"", event))
        self.next_seq += 1
        if len(records) > SMALL_RECORDS and type(records) is list:
            self._records = deque(records)
        cost = event_cost(event)
        self._kept_cost += cost
        budget = self.budget
        if budget is not None:
            budget.total += cost
        if len(self._records) > self.max_records:
            self._drop_oldest()
        if budget is not None and budget.total > budget.limit:
            budget.evict()

    def _trim(self) -> None:
        records = self._records
        while records and (self._kept_bytes > self.cap or len(records) > self.max_records):
            self._drop_oldest()

    def _drop_oldest(self) -> Record:
        records = self._records
        record = records.popleft() if type(records) is deque else records.pop(0)
        size = len(record.data)
        cost = record_cost(record)
        self._kept_bytes -= size
        self._kept_cost -= cost
        self.dropped_bytes += size
        self.dropped_records += 1
        if self.budget is not None:
            self.budget.total -= cost
        return record

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


class StoreBudget:
    """A bound on what all of a manager's stores keep together (see the module docstring).

    Resource handling: holds a reference to each attached store until `forget`
    (the manager calls it when it forgets an ended session).

    Errors: `ValueError` for a negative limit.
    """

    __slots__ = ("limit", "total", "dropped_bytes", "dropped_records", "_live", "_ended")

    def __init__(self, limit: int = DEFAULT_BUDGET) -> None:
        if limit < 0:
            raise ValueError("the budget must not be negative")
        self.limit = limit
        self.total = 0
        """What the attached stores keep now, as `ByteStore.kept_cost` counts it."""
        self.dropped_bytes = 0
        """Payload bytes dropped to stay within the budget (beyond what per-store caps dropped)."""
        self.dropped_records = 0
        # Oldest first. Emptied live stores move to the end, so the next victim is found at
        # once; emptied ended stores leave (they will not grow again).
        self._live: OrderedDict[int, ByteStore] = OrderedDict()
        self._ended: OrderedDict[int, ByteStore] = OrderedDict()

    def __len__(self) -> int:
        return len(self._live) + len(self._ended)

    def attach(self, store: ByteStore) -> None:
        store.budget = self
        self._live[id(store)] = store
        self.total += store.kept_cost

    def ended(self, store: ByteStore) -> None:
        """The store's session ended: its records are now the first to go."""
        if self._live.pop(id(store), None) is not None and len(store):
            self._ended[id(store)] = store

    def forget(self, store: ByteStore) -> None:
        """The store's session is forgotten: what it kept no longer counts."""
        self._live.pop(id(store), None)
        self._ended.pop(id(store), None)
        if store.budget is self:  # an emptied ended store left the queues but still counts
            self.total -= store.kept_cost
            store.budget = None

    def evict(self) -> None:
        """Drop oldest records, ended sessions first, until the total is within the limit."""
        ended, live = self._ended, self._live
        empty_seen = 0
        while self.total > self.limit:
            if ended:
                key, store = next(iter(ended.items()))
                if not len(store):
                    del ended[key]
                    continue
            elif live:
                key, store = next(iter(live.items()))
                if not len(store):
                    live.move_to_end(key)
                    empty_seen += 1
                    if empty_seen > len(live):
                        return  # every store is empty: nothing left to drop
                    continue
            else:
                return
            empty_seen = 0
            record = store._drop_oldest()
            self.dropped_bytes += len(record.data)
            self.dropped_records += 1
