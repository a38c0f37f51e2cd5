"""Processes the tests started, seen through /proc (Linux)."""

from __future__ import annotations

import os


def process_group(pgid: int) -> tuple[list[int], list[int]]:
    """(live pids, zombie pids) whose process group is `pgid`."""
    live, zombies = [], []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone while we looked
        if int(fields[2]) == pgid:
            (zombies if fields[0] == b"Z" else live).append(int(entry))
    return live, zombies
