"""Addresses as the engine reports them, and how they are written (`host:port`, `[v6]:port`).

Its own module, re-exported by `events`, so that the workbench can format addresses
before its first frame without importing the event classes.
"""

from __future__ import annotations

Address = tuple[str, int]


def format_address(address: Address | None) -> str:
    """`host:port`, with IPv6 hosts in brackets; `-` when unknown."""
    if not address:
        return "-"
    host, port = address[0], address[1]
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"
