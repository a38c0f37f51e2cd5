"""Which table columns fit a width, and how wide each is: pure, so it is tested with plain calls.

A table declares its columns in display order, which is also their priority:
the first is the most important. `plan_columns` keeps the longest prefix of
columns whose minimum widths fit (so the least important columns fold away
first, from the right, and a column never shows while a more important one is
hidden), then hands the space left over to the flexible columns (addresses,
sparklines) in priority order, each up to the width its widest value needs.

A flexible column narrower than a value shows it shortened in the middle
(`shorten_middle`): an address keeps its start and its port, which are what a
reader tells connections apart by (`127.0…0.1:54321`, `[2001:db8…:1]:443`).
Every other column is as wide as its widest possible value, so nothing is ever
cut at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

ELLIPSIS = "\u2026"


@dataclass(frozen=True)
class ColumnSpec:
    """One column: its key, label, and the widths (in cells, padding excluded) it may take."""

    key: str
    label: str
    width: int
    """The minimum width; for a fixed column the only one (as wide as its widest value)."""
    max_width: int | None = None
    """A flexible column grows up to this (None: fixed at `width`)."""

    @property
    def flexible(self) -> bool:
        return self.max_width is not None and self.max_width > self.width


def plan_columns(columns: tuple[ColumnSpec, ...], available: int, padding: int,
                 widest: dict[str, int] | None = None) -> list[tuple[str, int]]:
    """The columns to show in `available` cells and the width of each: `[(key, width), ...]`.

    `padding` is what each column costs besides its width (a DataTable's
    `2 * cell_padding`). `widest` holds the widest value seen per flexible
    column, so it grows only as far as its values need. The first column is
    always shown, even when it does not fit.
    """
    widest = widest or {}
    chosen: list[list] = []
    used = 0
    for column in columns:
        need = column.width + padding
        if chosen and used + need > available:
            break
        chosen.append([column, column.width])
        used += need
    spare = available - used
    for entry in chosen:
        column = entry[0]
        if spare <= 0:
            break
        if not column.flexible:
            continue
        wanted = min(column.max_width, max(column.width, len(column.label), widest.get(column.key, 0)))
        grow = min(spare, wanted - entry[1])
        if grow > 0:
            entry[1] += grow
            spare -= grow
    return [(entry[0].key, entry[1]) for entry in chosen]


def shorten_middle(text: str, width: int) -> str:
    """`text` in at most `width` cells, the middle replaced by an ellipsis when it is longer.

    For an address (`host:port`) the port is kept whole when there is room for
    it and a few characters of the host, since it tells connections apart.
    """
    if len(text) <= width:
        return text
    if width <= 1:
        return ELLIPSIS[:width]
    keep = width - 1
    tail = keep - keep // 2
    colon = text.rfind(":")
    if colon > 0:
        port_part = len(text) - colon  # ":443" or "]:443"
        if text[colon - 1:colon] == "]":
            port_part += 1
        if port_part + 3 <= keep:
            tail = max(tail, port_part + 1)
    head = keep - tail
    return text[:head] + ELLIPSIS + text[len(text) - tail:]
