"""Checking a scenario's TOML against the format, with the line of each mistake.

`tomllib` reports syntax errors with their line and column but forgets where a
key was once the document is parsed, so schema errors find their line again by
scanning the text: the `[[listener]]` headers are counted, multi-line strings
skipped, and the key looked for inside its table (or its inline table).
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

from tcpbench.scenarios.model import (BEHAVIOURS, LISTENER_KEYS, NAME, PLACEHOLDER, PORT_KEYS, SESSION_KEYS,
                                      TOP_KEYS, ListenerPlan, PortPlan, Scenario, ScenarioError, SessionPlan)

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.-]+)\s*\]\]?")
_TOML_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)$")


class Checker:
    """Turns TOML text into a `Scenario`, raising `ScenarioError` at the first mistake."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self._sections = self._index_sections()

    # --- where is it? ---------------------------------------------------------------

    def _index_sections(self) -> list[tuple[int, tuple[Any, ...], str]]:
        """(line number, section, line text) for every line outside multi-line strings."""
        out: list[tuple[int, tuple[Any, ...], str]] = []
        section: tuple[Any, ...] = ()
        counts: dict[str, int] = {}
        quote: str | None = None
        for number, line in enumerate(self.text.splitlines(), 1):
            if quote is not None:
                if line.count(quote) % 2 == 1:
                    quote = None
                continue
            match = _HEADER.match(line)
            if match:
                parts = match.group(2).split(".")
                if match.group(1) == "[[":
                    counts[parts[0]] = counts.get(parts[0], 0) + 1
                    section = (parts[0], counts[parts[0]] - 1)
                elif parts[0] in counts:
                    section = (parts[0], counts[parts[0]] - 1, *parts[1:])
                else:
                    section = tuple(parts)
                out.append((number, section + ("<header>",), line))
                continue
            out.append((number, section, line))
            for delimiter in ('"""', "'''"):
                if line.count(delimiter) % 2 == 1:
                    quote = delimiter
        return out

    def line_of(self, *where: Any) -> int:
        """The line of the key at `where` (e.g. "listener", 0, "options", "body"); the nearest
        enclosing thing that can be found when the key itself cannot."""
        *section, key = where
        section_t = tuple(section)
        for number, sec, line in self._sections:
            if sec == section_t and _assigns(line, key):
                return number
        if len(section_t) >= 3:  # an inline table: `options = { key = ... }`
            parent, inline = section_t[:-1], section_t[-1]
            for number, sec, line in self._sections:
                if sec == parent and _assigns(line, inline) and re.search(
                        rf"[{{,]\s*[\"']?{re.escape(str(key))}[\"']?\s*=", line):
                    return number
            return self.line_of(*parent, inline)
        for number, sec, _line in self._sections:
            if sec == section_t + ("<header>",):
                return number
        if section_t:
            return self.line_of(*section_t[:-2], section_t[0]) if len(section_t) > 2 else 1
        return 1

    def fail(self, message: str, *where: Any) -> ScenarioError:
        line = self.line_of(*where) if where else 1
        return ScenarioError(f"scenario {self.source}: line {line}: {message}")

    # --- the checks ---------------------------------------------------------------------

    def scenario(self) -> Scenario:
        try:
            data = tomllib.loads(self.text)
        except tomllib.TOMLDecodeError as exc:
            message = str(exc)
            match = _TOML_AT.search(message)
            line = match.group(1) if match else "?"
            reason = _TOML_AT.sub("", message)
            raise ScenarioError(f"scenario {self.source}: line {line}: bad TOML: {reason}") from None
        self._unknown(data, TOP_KEYS, (), "at the top")
        title = data.get("title")
        if not isinstance(title, str) or not title.strip():
            raise self.fail("'title' is missing (a line like title = \"My lesson\")"
                            if title is None else "'title' must be a non-empty string", "title")
        scenario = Scenario(title.strip(), self.source,
                            description=self._string(data, "description", ()),
                            notes=self._string(data, "notes", ()))
        for index, table in enumerate(self._tables(data, "listener")):
            scenario.listeners.append(self._listener(index, table))
        for index, table in enumerate(self._tables(data, "port")):
            scenario.ports.append(self._port(index, table))
        seen: set[str] = set()
        for kind, plans in (("listener", scenario.listeners), ("port", scenario.ports)):
            for index, plan in enumerate(plans):
                if plan.name in seen:
                    raise self.fail(f"the name {plan.name!r} is used twice; give each [[listener]] "
                                    "and [[port]] its own name", kind, index, "name")
                seen.add(plan.name)
        for index, table in enumerate(self._tables(data, "session")):
            scenario.sessions.append(self._session(index, table, seen))
        probe = data.get("probe", [])
        if not isinstance(probe, list) or not all(isinstance(p, str) for p in probe):
            raise self.fail("'probe' must be a list of names, e.g. probe = [\"web\", \"closed\"]", "probe")
        for name in probe:
            if name not in seen:
                raise self.fail(f"'probe' names {name!r}, which is no [[listener]] or [[port]] "
                                f"(known: {', '.join(sorted(seen)) or 'none'})", "probe")
        scenario.probe = probe
        for match in PLACEHOLDER.finditer(scenario.notes):
            if match.group(1) not in seen:
                raise self.fail(f"the notes mention {{{match.group(1)}.{match.group(2)}}}, but "
                                f"nothing is named {match.group(1)!r}", "notes")
        return scenario

    def _tables(self, data: dict[str, Any], key: str) -> list[dict[str, Any]]:
        value = data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
            raise self.fail(f"'{key}' must be tables written [[{key}]]", key)
        return value

    def _unknown(self, table: dict[str, Any], allowed: set[str], where: tuple[Any, ...],
                 what: str) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail(f"unknown key {key!r} {what} (known: {', '.join(sorted(allowed))})",
                                *where, key)

    def _string(self, table: dict[str, Any], key: str, where: tuple[Any, ...],
                default: str = "") -> str:
        value = table.get(key, default)
        if not isinstance(value, str):
            raise self.fail(f"'{key}' must be a string", *where, key)
        return value

    def _port_number(self, table: dict[str, Any], where: tuple[Any, ...], default: int | None = 0) -> Any:
        port = table.get("port", default)
        if port is None:
            return None
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise self.fail(f"'port' must be a number from 0 to 65535 (0: any free port), not {port!r}",
                            *where, "port")
        return port

    def _name(self, table: dict[str, Any], where: tuple[Any, ...], default: str) -> str:
        name = self._string(table, "name", where, default)
        if not NAME.match(name):
            raise self.fail(f"'name' {name!r} may hold only letters, digits, '-' and '_'", *where, "name")
        return name

    def _listener(self, index: int, table: dict[str, Any]) -> ListenerPlan:
        from tcpbench.engine.registry import SERVICES, build_service
        from tcpbench.services.base import OptionError

        where = ("listener", index)
        self._unknown(table, LISTENER_KEYS, where, "in a [[listener]]")
        if "service" not in table:
            raise self.fail("this [[listener]] has no 'service' (e.g. service = \"echo\")", *where, "service")
        service = self._string(table, "service", where)
        info = SERVICES.get(service)
        if info is None:
            raise self.fail(f"unknown service {service!r} (known: {', '.join(sorted(SERVICES))})",
                            *where, "service")
        if info.dangerous:
            raise self.fail(f"the {service} service is not allowed in a scenario file (a file must "
                            "never run programs); start it from the New listener dialog", *where, "service")
        host = self._string(table, "host", where, "127.0.0.1")
        port = self._port_number(table, where)
        idle = table.get("idle_timeout")
        if idle is not None and (isinstance(idle, bool) or not isinstance(idle, (int, float)) or idle <= 0):
            raise self.fail("'idle_timeout' must be a number of seconds above 0", *where, "idle_timeout")
        options = table.get("options", {})
        if not isinstance(options, dict):
            raise self.fail("'options' must be a table, e.g. options = { message = \"hi\" }", *where, "options")
        known = {o.name: o for o in info.options}
        values: dict[str, Any] = {}
        for key, value in options.items():
            option = known.get(key.replace("-", "_"))
            if option is None:
                raise self.fail(f"the {service} service has no option {key!r} (its options: "
                                f"{', '.join(sorted(known)) or 'none'})", *where, "options", key)
            values[option.name] = self._option_value(option, value, (*where, "options", key))
        try:
            build_service(service, values)
        except OptionError as exc:
            raise self.fail(str(exc), *where, "options") from None
        return ListenerPlan(self._name(table, where, service), service, host, port, values,
                            None if idle is None else float(idle))

    def _option_value(self, option: Any, value: Any, where: tuple[Any, ...]) -> Any:
        wanted = option.type
        if wanted is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if wanted in (list, tuple):
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value if wanted is list else tuple(value)
            raise self.fail(f"option {option.name!r} must be a list of strings", *where)
        if type(value) is not wanted:
            raise self.fail(f"option {option.name!r} must be {_TYPE_WORDS.get(wanted, wanted.__name__)}, "
                            f"not {value!r}", *where)
        if option.choices and value not in option.choices:
            raise self.fail(f"option {option.name!r} must be one of {', '.join(option.choices)}", *where)
        return value

    def _port(self, index: int, table: dict[str, Any]) -> PortPlan:
        where = ("port", index)
        self._unknown(table, PORT_KEYS, where, "in a [[port]]")
        behaviour = self._string(table, "behaviour", where, "")
        if behaviour not in BEHAVIOURS:
            raise self.fail(f"'behaviour' must be \"refuse\" (answer RST) or \"drop\" (no answer), "
                            f"not {behaviour!r}", *where, "behaviour")
        return PortPlan(self._name(table, where, behaviour), behaviour,
                        self._string(table, "host", where, "127.0.0.1"), self._port_number(table, where))

    def _session(self, index: int, table: dict[str, Any], names: set[str]) -> SessionPlan:
        from tcpbench.safetext import EscapeError, unescape_bytes

        where = ("session", index)
        self._unknown(table, SESSION_KEYS, where, "in a [[session]]")
        to = table.get("to")
        if to is not None:
            if not isinstance(to, str) or to not in names:
                raise self.fail(f"'to' must name a [[listener]] or [[port]] above "
                                f"(known: {', '.join(sorted(names)) or 'none'})", *where, "to")
            if "host" in table or "port" in table:
                raise self.fail("give 'to' or 'host' and 'port', not both", *where, "to")
            host, port = None, None
        else:
            if "host" not in table or "port" not in table:
                raise self.fail("a [[session]] needs 'to' (a name above) or both 'host' and 'port'",
                                *where, "host" if "host" in table else "port")
            host = self._string(table, "host", where)
            port = self._port_number(table, where, None)
            if port == 0:
                raise self.fail("port 0 cannot be connected to (1-65535)", *where, "port")
        try:
            send = unescape_bytes(self._string(table, "send", where))
        except EscapeError as exc:
            raise self.fail(f"'send': {exc}", *where, "send") from None
        return SessionPlan(to, host, port, send)


_TYPE_WORDS = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}


def _assigns(line: str, key: Any) -> bool:
    return re.match(rf"^\s*[\"']?{re.escape(str(key))}[\"']?\s*=", line) is not None
