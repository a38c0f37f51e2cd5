"""How much fuzzing a run does: a small fast amount by default, a long run with TCPBENCH_FUZZ_LONG=1.

Every fuzz test takes its size from here (hypothesis `max_examples` and the
length of its seeded `random.Random(seed)` loops) and counts each input it
runs, so the long run can report how many inputs it really tried (the
conftest prints the total at the end of the session).
"""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, settings

LONG = os.environ.get("TCPBENCH_FUZZ_LONG", "") not in ("", "0")
INPUTS: Counter[str] = Counter()


def size(normal: int, long: int) -> int:
    """`normal` inputs in the ordinary suite, `long` in the opt-in long run."""
    return long if LONG else normal


def fuzz_settings(normal: int, long: int) -> settings:
    return settings(max_examples=size(normal, long), deadline=None, derandomize=not LONG,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


def count(name: str, n: int = 1) -> None:
    INPUTS[name] += n
