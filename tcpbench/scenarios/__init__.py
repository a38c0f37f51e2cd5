"""Scenario files: a lesson in one TOML file (listeners, closed ports, client sessions, notes).

`tcpbench --scenario FILE|NAME` loads one before the UI starts, so every mistake
in it is one line naming the file, the line and what is wrong (exit status 2).
Built-in scenarios live beside this module as `builtin/NAME.toml` (package data);
`tcpbench scenarios` lists them and `tcpbench scenarios NAME` prints one, to copy
and edit.

The format (every key but `title` and each listener's `service` is optional):

    title = "Refused vs dropped"
    description = "one line for `tcpbench scenarios`"
    notes = '''text for the side panel; {web.port}, {web.host} and {web.addr} become
    the real port, host and HOST:PORT of the listener or port named "web" once it
    is open (nc takes `nc {web.host} {web.port}`; curl takes http://{web.addr}/)'''
    probe = ["web", "closed"]          # what the probe (p) is prefilled with

    [[listener]]                      # a server, as the New listener dialog starts it
    name = "web"                      # default: the service name
    service = "http"
    host = "127.0.0.1"                # default: this machine only
    port = 8080                       # default 0: any free port
    idle_timeout = 30.0
    options = { body = "hello\\n" }    # the service's options, as in `tcpbench serve`

    [[port]]                          # a port that refuses (RST) or drops (no answer)
    name = "closed"
    behaviour = "refuse"              # or "drop"

    [[session]]                       # a client session the workbench opens
    to = "web"                        # a listener or port above, or host + port
    send = "GET / HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n"   # escapes as in the send bar

Validation stops at the first problem, as a compiler's first error does: a
person fixes one line and runs it again.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tcpbench.scenarios.check import Checker
from tcpbench.scenarios.model import (ListenerPlan, PortPlan, Scenario, ScenarioError,
                                      SessionPlan)

__all__ = ["ListenerPlan", "PortPlan", "Scenario", "ScenarioError", "SessionPlan", "builtin_names",
           "builtin_text", "load_scenario", "parse_scenario"]


# --- built-ins ----------------------------------------------------------------------


def builtin_names() -> list[str]:
    folder = resources.files(__name__).joinpath("builtin")
    return sorted(entry.name[:-5] for entry in folder.iterdir() if entry.name.endswith(".toml"))


def builtin_text(name: str) -> str:
    """Errors: `ScenarioError` for an unknown name."""
    if name not in builtin_names():
        raise ScenarioError(f"no scenario file or built-in scenario {name!r} "
                            f"(built-in: {', '.join(builtin_names())})")
    return resources.files(__name__).joinpath("builtin", f"{name}.toml").read_text("utf-8")


def load_scenario(spec: str) -> Scenario:
    """A path to a TOML file, or the name of a built-in scenario.

    Errors: `ScenarioError`, one line: the file cannot be read, its TOML is
    broken (line and column from `tomllib`), or a key is unknown, missing or has
    a bad value (the line of that key, found by scanning the text).
    """
    path = Path(spec)
    if path.suffix == ".toml" or path.exists() or "/" in spec:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise ScenarioError(f"scenario {spec}: cannot read it: {reason}") from None
        return parse_scenario(text, spec)
    return parse_scenario(builtin_text(spec), f"builtin:{spec}")


def parse_scenario(text: str, source: str) -> Scenario:
    """Parse and check scenario TOML. Errors: `ScenarioError` (see `load_scenario`)."""
    return Checker(text, source).scenario()
