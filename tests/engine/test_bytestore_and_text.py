"""The display store stays bounded and exact; escaping is lossless and printable."""

from __future__ import annotations

from hypothesis import example, given, strategies as st

from tcpbench.engine.bytestore import RECEIVED, SENT, ByteStore
from tcpbench.safetext import escape_bytes, hexdump_row, text_lines, unescape_bytes


@given(st.lists(st.binary(max_size=300), max_size=60), st.integers(min_value=1, max_value=1000))
def test_store_keeps_at_most_cap_and_counts_every_drop(chunks: list[bytes], cap: int) -> None:
    store = ByteStore(cap)
    offset = 0
    for i, chunk in enumerate(chunks):
        store.add_data(float(i), 1, RECEIVED if i % 2 else SENT, offset, chunk)
        offset += len(chunk)
        assert store.kept_bytes <= cap
    assert store.kept_bytes + store.dropped_bytes == sum(map(len, chunks))
    kept = b"".join(r.data for r in store)
    assert kept == b"".join(chunks)[len(b"".join(chunks)) - len(kept):]


def test_since_returns_the_newest_records_only() -> None:
    store = ByteStore(10)
    for i in range(20):
        store.add_data(float(i), 1, RECEIVED, i, b"x")
    assert store.first_seq == 10
    assert [r.seq for r in store.since(15)] == [15, 16, 17, 18, 19]
    assert [r.seq for r in store.since(0)] == list(range(10, 20))
    assert list(store.since(25)) == []


@given(st.binary(max_size=2000))
def test_escape_is_printable_ascii_and_lossless(data: bytes) -> None:
    text = escape_bytes(data)
    assert text.isascii() and (text == "" or text.isprintable())
    assert unescape_bytes(text) == data
    assert "".join(text_lines(data, max_line=37)) == text


TEXT_PROTOCOL_BYTES = st.binary(max_size=300).map(
    lambda raw: bytes(b"GET /\\ x\r\n\t:\x00\xff"[b % 14] for b in raw))


@given(TEXT_PROTOCOL_BYTES)
def test_text_protocol_bytes_escape_as_the_table_says(data: bytes) -> None:
    """CR, LF, tab and backslash take a faster path than the other bytes: same text."""
    from tcpbench.safetext import BYTE_TO_TEXT

    assert escape_bytes(data) == "".join(BYTE_TO_TEXT[b] for b in data)
    assert unescape_bytes(escape_bytes(data)) == data


# The bytes that steer the repr path's fix-ups (quotes, backslash, NUL, ESC, the letters of
# an escape), mixed with printable, high and control bytes.
REPR_TRAP_BYTES = st.binary(max_size=200).map(
    lambda raw: bytes(b"\\'\"\x00\x1bx0b1e\x7f\x80\xff a\n\t\x07"[b % 18] for b in raw))


@given(REPR_TRAP_BYTES | st.binary(max_size=200))
# A backslash then the letters of an escape, where a fix-up is due: repr writes `\\x00`
# (backslash, x, 0, 0), in which a plain replace would find an `\x00` that is not one.
@example(b"\\x00\x00\x80")
@example(b"\\x1b\x1b\x80")
@example(b"\\'\"'\x80")
def test_binary_bytes_escape_as_the_table_says(data: bytes) -> None:
    """Binary previews go through repr and three fix-ups: the text is still the table's."""
    from tcpbench.safetext import BYTE_TO_TEXT

    assert escape_bytes(data) == "".join(BYTE_TO_TEXT[b] for b in data)


def test_all_256_bytes_and_hexdump_width() -> None:
    data = bytes(range(256))
    assert escape_bytes(data).isprintable()
    for offset in range(0, 256, 16):
        row = hexdump_row(offset, data[offset:offset + 16])
        assert len(row) == 77 and row.isprintable()
    assert escape_bytes(b"\x1b]52;c;SGVsbG8=\x07[@click=app.quit]") == "\\e]52;c;SGVsbG8=\\x07[@click=app.quit]"


def test_a_store_with_no_cap_keeps_nothing_but_counts_the_bytes() -> None:
    from tcpbench.engine import events as ev
    from tcpbench.engine.bytestore import ByteStore, RECEIVED

    store = ByteStore(0)
    store.add_data(1.0, 1, RECEIVED, 0, b"x" * 1000)
    store.add_event(ev.PeerHalfClosed(2.0, 1), 1)
    assert list(store) == [] and store.kept_bytes == 0
    assert store.dropped_bytes == 1000


def test_tiny_chunks_are_bounded_by_what_their_records_cost() -> None:
    """Chat lines and one-byte chunks: the cap bounds the records, not only the payload."""
    from tcpbench.engine import events as ev
    from tcpbench.engine.bytestore import EVENT_COST, MIN_RECORDS, RECORD_COST

    cap = 100 * RECORD_COST
    store = ByteStore(cap)
    for i in range(10_000):
        store.add_data(float(i), 1, RECEIVED, i, b"x")
    assert len(store) == store.max_records == 100
    assert store.kept_bytes == 100 and store.dropped_bytes == 9_900
    assert store.kept_cost == 100 * (1 + RECORD_COST)
    store.add_event(ev.PeerHalfClosed(1e4, 1), 1)
    assert len(store) == 100 and store.kept_cost == 99 * (1 + RECORD_COST) + EVENT_COST
    assert [r.seq for r in store][-1] == 10_000  # the newest records stay
    small = ByteStore(10)
    for i in range(200):
        small.add_event(ev.PeerHalfClosed(float(i), 1), 1)
    assert len(small) == MIN_RECORDS and small.kept_cost == MIN_RECORDS * EVENT_COST


def test_a_notes_text_and_fields_count_toward_what_it_costs() -> None:
    from tcpbench.engine import events as ev
    from tcpbench.engine.bytestore import EVENT_COST, event_cost

    bare = ev.PeerHalfClosed(0.0, 1)
    access = ev.ServiceNoted(0.0, 1, 1, "access", "GET / -> 200, 1 byte, 0.1 ms")
    chat = ev.ServiceNoted(0.0, 1, 1, "chat", "<alice> hello", (("nick", "alice"), ("text", "hello")))
    assert event_cost(bare) == EVENT_COST
    assert event_cost(access) == EVENT_COST + len(access.text)
    assert event_cost(chat) > event_cost(ev.ServiceNoted(0.0, 1, 1, "chat", "<alice> hello"))
    store = ByteStore(1 << 20)
    for event in (bare, access, chat):
        store.add_event(event, 1)
    assert store.kept_cost == sum(map(event_cost, (bare, access, chat)))
    store.clear()
    assert store.kept_cost == 0
