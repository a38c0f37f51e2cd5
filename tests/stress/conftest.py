"""The stress tests time the app as a person runs it: in its own process, without the heap
the rest of the test suite has built up. So they start with that heap collected and frozen
out of the collector's way (full collections would otherwise walk every earlier test's
leftovers and count as our stall), and give it back afterwards."""

from __future__ import annotations

import gc

import pytest


@pytest.fixture(autouse=True)
def fresh_heap():
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
