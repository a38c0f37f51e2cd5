"""Which services exist, their options, and how to build one.

The CLI turns `options` into flags and the UI into dialog fields, so a service
declares its options once. Services whose handler needs I/O (exec, relay, fuzz)
are assembled here, in the engine, from their pure parts in `services/`.
"""

from __future__ import annotations

from typing import Any

from tcpbench.services.base import Option, OptionError, Service, ServiceInfo
from tcpbench.services.discard import DiscardService
from tcpbench.services.echo import EchoService
from tcpbench.services.motd import MotdService
from tcpbench.services.raw import RawService
from tcpbench.services.chat import ChatService

SERVICES: dict[str, ServiceInfo] = {}


class UnknownServiceError(KeyError):
    def __str__(self) -> str:
        return f"unknown service {self.args[0]!r} (known: {', '.join(sorted(SERVICES))})"


def register(info: ServiceInfo) -> None:
    SERVICES[info.name] = info


def service_info(name: str) -> ServiceInfo:
    """Errors: `UnknownServiceError`."""
    try:
        return SERVICES[name]
    except KeyError:
        raise UnknownServiceError(name) from None


def build_service(name: str, options: dict[str, Any] | None = None) -> Service:
    """Build a service from option values (missing ones take their defaults).

    Errors: `UnknownServiceError`, `OptionError` (one line, for a person).
    """
    info = service_info(name)
    values: dict[str, Any] = {}
    given = dict(options or {})
    for option in info.options:
        value = given.pop(option.name, None)
        values[option.name] = option.default if value is None else value
    if given:
        raise OptionError(f"{name} has no option {'/'.join('--' + k.replace('_', '-') for k in given)}")
    try:
        return info.build(**values)
    except OptionError:
        raise
    except (TypeError, ValueError) as exc:
        raise OptionError(f"{name}: {exc}") from None


def _plain(cls: type[Service], dangerous: bool = False) -> ServiceInfo:
    return ServiceInfo(cls.name, cls.summary, cls.options, cls, dangerous)


for _cls in (EchoService, MotdService, DiscardService, RawService):
    register(_plain(_cls))
register(_plain(ChatService))
from tcpbench.engine.exec_handler import EXEC_INFO  # noqa: E402  (engine-assembled: needs I/O)
register(EXEC_INFO)
from tcpbench.engine.relay import RELAY_INFO  # noqa: E402
register(RELAY_INFO)

from tcpbench.services.http import HttpService  # noqa: E402
register(_plain(HttpService))
from tcpbench.engine.fuzz_handler import FUZZ_INFO  # noqa: E402
register(FUZZ_INFO)

__all__ = ["SERVICES", "Option", "OptionError", "UnknownServiceError", "build_service", "register",
           "service_info"]
