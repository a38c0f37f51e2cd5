"""Rates and 60-second sparklines from exact byte counters, sampled on the UI timer: pure.

The engine counts every byte in `Session.bytes_in/bytes_out` and does no UI
work. The tables' sync (about 4 Hz) hands the counters of the sessions it
redraws to a `Throughput`, so the cost is O(sessions on screen) per tick and
nothing per chunk.

- The rate is bytes over the last second of samples; a connection younger
  than that is measured from the sync before it first appeared (when it had
  sent nothing), so a figure shows at the first sync after bytes flow instead
  of after a whole second.
- The history is 60 one-second buckets per direction; the current, partial
  second is the last bucket, so a bar appears as soon as bytes flow.

Times come from the app's injectable clock: with a fixed clock (snapshots)
no time passes, the rate stays unknown and the sparkline stays flat.
"""

from __future__ import annotations

from collections import deque

HISTORY_SECONDS = 60
RATE_WINDOW = 1.0
"""Seconds of samples a rate is measured over (once there are that many)."""
BLOCKS = "\u2581\u2582\u2583\u2584\u2585\u2586\u2587\u2588"
"""Eight bar heights; a bucket with no bytes at all is a space, so silence is visible."""


class Throughput:
    """The recent history of one pair of byte counters (in, out)."""

    __slots__ = ("_samples", "_buckets_in", "_buckets_out", "_second", "_last_in", "_last_out",
                 "_both")

    def __init__(self, now: float, bytes_in: int = 0, bytes_out: int = 0) -> None:
        """Start from a baseline: the counters' values at time `now`."""
        self._samples: deque[tuple[float, int, int]] = deque([(now, bytes_in, bytes_out)])
        self._buckets_in: deque[int] = deque([0] * HISTORY_SECONDS, maxlen=HISTORY_SECONDS)
        self._buckets_out: deque[int] = deque([0] * HISTORY_SECONDS, maxlen=HISTORY_SECONDS)
        self._second = int(now)
        self._last_in = bytes_in
        self._last_out = bytes_out
        self._both: tuple[int, ...] | None = None

    def sample(self, now: float, bytes_in: int, bytes_out: int) -> None:
        """Record the counters at `now` (O(1) amortised; a clock that goes back is ignored)."""
        samples = self._samples
        if now < samples[-1][0]:
            return
        second = int(now)
        if second > self._second:
            # Seconds with no sample had no bytes: the counters did not move in between.
            for _ in range(min(second - self._second, HISTORY_SECONDS)):
                self._buckets_in.append(0)
                self._buckets_out.append(0)
            self._second = second
            self._both = None
        if bytes_in != self._last_in or bytes_out != self._last_out:
            self._both = None
        self._buckets_in[-1] += bytes_in - self._last_in
        self._buckets_out[-1] += bytes_out - self._last_out
        self._last_in, self._last_out = bytes_in, bytes_out
        if now == samples[-1][0] and len(samples) > 1:
            samples[-1] = (now, bytes_in, bytes_out)
            return
        samples.append((now, bytes_in, bytes_out))
        # Keep one sample at least RATE_WINDOW old, so the window is never shorter than that.
        while len(samples) > 2 and samples[1][0] <= now - RATE_WINDOW:
            samples.popleft()

    def rates(self) -> tuple[float, float] | None:
        """(in, out) bytes per second over the last second of samples, or None if no time passed."""
        first, last = self._samples[0], self._samples[-1]
        elapsed = last[0] - first[0]
        if elapsed <= 0:
            return None
        return (last[1] - first[1]) / elapsed, (last[2] - first[2]) / elapsed

    def rate(self) -> float | None:
        """Both directions together, bytes per second, or None if no time passed."""
        both = self.rates()
        return None if both is None else both[0] + both[1]

    def history(self, direction: str = "both") -> list[int]:
        """Bytes per second over the last 60 s, oldest first; direction `in`, `out` or `both`."""
        if direction == "in":
            return list(self._buckets_in)
        if direction == "out":
            return list(self._buckets_out)
        return list(self.both())

    def both(self) -> tuple[int, ...]:
        """`history("both")` as a tuple, rebuilt only when a bucket changed (at most once a
        second for an idle connection), so a table sync costs O(1) per quiet row."""
        if self._both is None:
            self._both = tuple(a + b for a, b in zip(self._buckets_in, self._buckets_out))
        return self._both


def sparkline(values: list[int], width: int) -> str:
    """`values` (oldest first) as `width` block characters, the newest at the right.

    Values are summed into `width` groups; bars are scaled to the largest group,
    and a group with nothing in it is a space.
    """
    if width <= 0:
        return ""
    if not any(values):  # most rows most of the time (idle, ended, a storm's resets)
        return " " * width
    count = len(values)
    groups = []
    for i in range(width):
        start, end = i * count // width, (i + 1) * count // width
        groups.append(sum(values[start:end]) if end > start else 0)
    top = max(groups, default=0)
    if top <= 0:
        return " " * width
    steps = len(BLOCKS)
    return "".join(" " if value <= 0 else BLOCKS[(value * steps + top - 1) // top - 1]
                   for value in groups)
