"""The scenario model: what a checked scenario file holds (see `tcpbench.scenarios`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from tcpbench.usage import UsageError

TOP_KEYS = {"title", "description", "notes", "probe", "listener", "port", "session"}
LISTENER_KEYS = {"name", "service", "host", "port", "idle_timeout", "options"}
PORT_KEYS = {"name", "behaviour", "host", "port"}
SESSION_KEYS = {"to", "host", "port", "send"}
BEHAVIOURS = ("refuse", "drop")
PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_-]+)\.(port|addr|host)\}")
NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class ScenarioError(UsageError):
    """A scenario file is wrong: `str()` is one line, `FILE: line N: what is wrong`."""


@dataclass(frozen=True)
class ListenerPlan:
    name: str
    service: str
    host: str
    port: int
    options: dict[str, Any]
    idle_timeout: float | None = None


@dataclass(frozen=True)
class PortPlan:
    name: str
    behaviour: str
    host: str
    port: int


@dataclass(frozen=True)
class SessionPlan:
    to: str | None
    host: str | None
    port: int | None
    send: bytes = b""


@dataclass
class Scenario:
    """A parsed, checked scenario; `source` names where it came from (a path or `builtin:NAME`)."""

    title: str
    source: str
    description: str = ""
    notes: str = ""
    probe: list[str] = field(default_factory=list)
    listeners: list[ListenerPlan] = field(default_factory=list)
    ports: list[PortPlan] = field(default_factory=list)
    sessions: list[SessionPlan] = field(default_factory=list)

    def names(self) -> set[str]:
        return {p.name for p in self.listeners} | {p.name for p in self.ports}

    def with_free_ports(self) -> Scenario:
        """The same scenario with every port 0 (tests, or a second copy on one machine)."""
        from dataclasses import replace

        return replace(self, listeners=[replace(p, port=0) for p in self.listeners],
                       ports=[replace(p, port=0) for p in self.ports])
