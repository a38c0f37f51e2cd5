"""discard: count and drop what arrives (RFC 863); a sink for throughput tests."""

from __future__ import annotations

from tcpbench.services.base import Service


class DiscardService(Service):
    name = "discard"
    summary = "count and drop every byte received"
