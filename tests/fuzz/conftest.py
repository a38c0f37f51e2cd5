"""Prints how many fuzz inputs the session ran (see budget.py)."""

from __future__ import annotations

from tests.fuzz.budget import INPUTS, LONG


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not INPUTS:
        return
    total = sum(INPUTS.values())
    terminalreporter.write_line(f"fuzz inputs run ({'long' if LONG else 'normal'} run): {total}")
    for name, n in sorted(INPUTS.items()):
        terminalreporter.write_line(f"  {name}: {n}")
