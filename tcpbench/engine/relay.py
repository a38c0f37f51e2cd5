"""relay: stand between two programs and watch their traffic (socat / `ncat` as a proxy).

`tcpbench serve relay --to HOST:PORT`: every accepted connection (the client
leg) opens one connection to HOST:PORT (the upstream leg), and bytes flow both
ways. Both legs are ordinary sessions, so every byte, FIN and RST of each side
shows in the event log; `Session.linked` names the other leg and a `relay` note
announces the pair.

TCP semantics are kept per direction, because that is what one watches a relay
for:
- flow control: a direction's pump awaits `Conduit.write` (which waits on the
  receiver's drain) before it reads more, and an unread conduit pauses its
  socket, so a slow side throttles the fast one and memory stays bounded;
- a FIN is forwarded as a FIN (half-close), the other direction keeps flowing;
- an RST (or our abort) on one leg aborts the other at once;
- a failed upstream connect is reported with its class (refused, timed out,
  unreachable, ...) and the client is closed gracefully.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tcpbench.engine.errors import ConnectError
from tcpbench.engine.events import format_address
from tcpbench.engine.conduit import Conduit, SessionClosedError
from tcpbench.engine.session import ABORTED, RESET, Session
from tcpbench.services.base import Option, OptionError, Service, ServiceInfo


def parse_target(text: str | None) -> tuple[str, int]:
    """`HOST:PORT` or `[IPV6]:PORT` to (host, port). Errors: `OptionError`, one line."""
    if not text:
        raise OptionError("relay: say where to relay to: --to HOST:PORT")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise OptionError(f"relay: --to {text!r}: write an IPv6 target as [ADDRESS]:PORT")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise OptionError(f"relay: --to {text!r} is not HOST:PORT (IPv6 goes in brackets)")
    if not host:
        raise OptionError(f"relay: --to {text!r} has no host")
    try:
        port = int(port_text, 10)
    except ValueError:
        raise OptionError(f"relay: --to {text!r}: the port is not a number") from None
    if not 1 <= port <= 65535:
        raise OptionError(f"relay: --to {text!r}: port {port} is out of range (1-65535)")
    return host, port


class _UpstreamLeg(Service):
    """The service of the upstream session: the relay's client-side handler does
    the pumping; this leg's own task only keeps the session until it ends."""

    name = "relay-upstream"
    summary = "the upstream leg of a relay"

    async def handler(self, conduit: Conduit) -> None:
        await conduit.wait_closed()


class RelayService(Service):
    """Relays each accepted connection to `--to HOST:PORT`. See the module docstring.

    Resource handling: the client leg's handler owns the upstream session and
    both pump tasks; when it ends (or is cancelled) the upstream leg is closed
    (gracefully if both directions finished, by RST otherwise).

    Errors: `OptionError` for a bad target; a failed connect is a `relay` note
    with `reason` (ConnectError.reason), never an exception.
    """

    name = "relay"
    summary = "relay each connection to HOST:PORT and show both legs"
    options = (
        Option("to", str, None, "where to relay to", "HOST:PORT"),
        Option("connect_timeout", float, 10.0, "seconds to wait for the upstream connect", "S"),
    )

    def __init__(self, to: str | None = None, connect_timeout: float = 10.0) -> None:
        self.host, self.port = parse_target(to)
        if not 0 < connect_timeout <= 300:
            raise OptionError("relay: --connect-timeout must be between 0 and 300 seconds")
        self.connect_timeout = connect_timeout
        self._leg = _UpstreamLeg()
        self.pairs: dict[int, int] = {}
        """Live pairs: client session id -> upstream session id (for the UI and tests)."""

    @property
    def upstream(self) -> tuple[str, int]:
        """Where every connection is relayed to: the manager refuses to listen right there."""
        return self.host, self.port

    @property
    def target(self) -> str:
        return format_address((self.host, self.port))

    def describe(self) -> str:
        return f"relay to {self.target}"

    async def handler(self, conduit: Conduit) -> None:
        try:
            upstream = await conduit.owner.open_session(
                self.host, self.port, timeout=self.connect_timeout, service=self._leg)
        except ConnectError as exc:
            conduit.note(f"upstream {self.target} failed: {exc.reason.replace('_', ' ')} ({exc})",
                         topic="relay", reason=exc.reason)
            return  # the engine's wrapper closes the client gracefully
        client = conduit.session
        up = upstream.conduit
        assert up is not None
        client.linked, upstream.linked = upstream.id, client.id
        self.pairs[client.id] = upstream.id
        conduit.note(f"relay pair: #{client.id} {format_address(client.peer)} <-> "
                     f"#{upstream.id} {self.target}", topic="relay", pair=(client.id, upstream.id))
        unlink = [_propagate_reset(client, upstream), _propagate_reset(upstream, client)]
        pumps = [asyncio.create_task(_pump(conduit, up)), asyncio.create_task(_pump(up, conduit))]
        try:
            await asyncio.gather(*pumps)
        finally:
            for pump in pumps:
                pump.cancel()
            for callback_off in unlink:
                callback_off()
            if not upstream.is_finished:
                if all(p.done() and not p.cancelled() for p in pumps):
                    upstream.close()
                else:
                    upstream.abort("the relay stopped")
            self.pairs.pop(client.id, None)


async def _pump(src: Conduit, dst: Conduit) -> None:
    """One direction: src's bytes to dst, then src's FIN as dst's FIN."""
    while True:
        data = await src.read()
        if not data:
            break
        try:
            await dst.write(data)  # waits while dst's peer reads slowly: backpressure
        except SessionClosedError:
            return
    if src.session.state not in (RESET, ABORTED):
        dst.half_close()


def _propagate_reset(source: Session, other: Session) -> Any:
    """When `source` ends by RST (theirs or ours), abort `other`; returns an off switch."""

    def on_end(_: asyncio.Future[None]) -> None:
        if source.state in (RESET, ABORTED) and not other.is_finished:
            who = "reset by its peer" if source.state == RESET else "aborted"
            other.abort(f"relayed: the other leg (#{source.id}) was {who}")

    future = source.closed_future
    future.add_done_callback(on_end)
    return lambda: future.remove_done_callback(on_end)


RELAY_INFO = ServiceInfo(RelayService.name, RelayService.summary, RelayService.options, RelayService)
