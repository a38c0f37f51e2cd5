"""Starting a checked scenario on a `SessionManager`: listeners, then ports, then sessions.

A piece that fails (a port in use, a refused connect) does not stop the rest: a
teacher whose port 8080 is taken still gets the other five listeners, and the
failure is reported as one line in `ScenarioRun.problems`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Union

from tcpbench.engine.blackhole import DroppingPort, RefusingPort
from tcpbench.engine.errors import ConnectError, ListenError
from tcpbench.engine.events import format_address
from tcpbench.engine.registry import build_service
from tcpbench.scenarios.model import PLACEHOLDER, Scenario
from tcpbench.services.base import OptionError

if TYPE_CHECKING:
    from tcpbench.engine.listener import Listener
    from tcpbench.engine.manager import SessionManager
    from tcpbench.engine.session import Session

SpecialPort = Union[RefusingPort, DroppingPort]
LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass
class ScenarioRun:
    """What a started scenario opened, by name, and what could not be opened.

    Resource handling: listeners and sessions belong to the manager (its
    `aclose` ends them); the refusing and dropping ports belong to this run:
    call `close()` when the workbench ends.
    """

    scenario: Scenario
    listeners: dict[str, Listener] = field(default_factory=dict)
    ports: dict[str, SpecialPort] = field(default_factory=dict)
    sessions: list[Session] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Things that opened but deserve a word (a listener reachable from the network)."""

    def address(self, name: str) -> tuple[str, int] | None:
        if name in self.listeners:
            return self.listeners[name].address
        if name in self.ports:
            return self.ports[name].address
        return None

    def connect_address(self, name: str) -> tuple[str, int] | None:
        """Where a client on this machine reaches `name` (wildcard hosts become loopback)."""
        address = self.address(name)
        if address is None:
            return None
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(address[0], address[0])
        return host, address[1]

    def notes(self, address_formatter: Callable[[tuple[str, int]], str] = format_address) -> str:
        """The notes with `{name.port}`, `{name.host}` and `{name.addr}` (HOST:PORT) filled in
        (`?` for what did not open), addresses written by `address_formatter` (snapshots
        mask the ports). `nc` wants `{name.host} {name.port}`: it takes no HOST:PORT."""
        def fill(match) -> str:
            address = self.connect_address(match.group(1))
            if address is None:
                return "?"
            text = address_formatter(address)
            host, _, port = text.rpartition(":")
            part = match.group(2)
            if part == "port":
                return port
            if part == "host":
                return host[1:-1] if host.startswith("[") else host  # nc ::1 7000, no brackets
            return text

        return PLACEHOLDER.sub(fill, self.scenario.notes)

    def probe_target(self) -> tuple[str, str]:
        """(host, "port,port,...") for the probe dialog, from the scenario's `probe` names."""
        host, ports = "127.0.0.1", []
        for name in self.scenario.probe:
            address = self.connect_address(name)
            if address is not None:
                host = address[0]
                ports.append(str(address[1]))
        return host, ",".join(ports)

    def close(self) -> None:
        for port in self.ports.values():
            port.close()
        self.ports.clear()


async def start_scenario(manager: SessionManager, scenario: Scenario, *,
                         connect_timeout: float = 10.0) -> ScenarioRun:
    """Open everything the scenario names. Never raises for a piece that fails: see `problems`."""
    run = ScenarioRun(scenario)
    for plan in scenario.listeners:
        try:
            service = build_service(plan.service, plan.options)
            listener = run.listeners[plan.name] = await manager.start_listener(
                service, plan.host, plan.port, idle_timeout=plan.idle_timeout)
            if plan.host not in LOOPBACK:
                run.warnings.append(f"listener {plan.name} ({plan.service}) on "
                                    f"{format_address(listener.address)} is reachable from the "
                                    "network, not just this machine")
        except (ListenError, OptionError) as exc:
            run.problems.append(f"listener {plan.name}: {exc}")
    for port_plan in scenario.ports:
        cls = RefusingPort if port_plan.behaviour == "refuse" else DroppingPort
        try:
            run.ports[port_plan.name] = cls(port_plan.host, port_plan.port)
        except OSError as exc:
            run.problems.append(f"port {port_plan.name} ({port_plan.behaviour}) on "
                                f"{port_plan.host}:{port_plan.port}: {exc.strerror or exc}")
    for session_plan in scenario.sessions:
        if session_plan.to is not None:
            address = run.connect_address(session_plan.to)
            if address is None:
                run.problems.append(f"session to {session_plan.to}: it did not open")
                continue
        else:
            address = (session_plan.host or "", session_plan.port or 0)
        try:
            session = await manager.open_session(*address, timeout=connect_timeout)
        except ConnectError as exc:
            run.problems.append(f"session to {format_address(address)}: {exc}")
            continue
        if session_plan.send:
            session.send(session_plan.send)
        run.sessions.append(session)
    return run
