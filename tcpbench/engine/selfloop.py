"""Would a listener's service connect back to the listener itself? (relay --to its own port)

A relay told to forward to its own listening address accepts the connection it
just opened, which opens another, and so on until file descriptors run out.
`points_at_itself` answers before the listener accepts anything: the target
resolves to the listener's port on an address the listener answers on (its
own address, or any address of this machine when it listens on 0.0.0.0 or ::).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any


async def points_at_itself(loop: asyncio.AbstractEventLoop, target: tuple[str, int],
                           bound: Any) -> bool:
    """True if `target` (host, port) reaches the listening socket whose sockname is `bound`.

    Errors: none; a target that does not resolve is not a loop (the relay's own
    connect will report it, per connection).
    """
    host, port = target
    bound_host, bound_port = str(bound[0]), int(bound[1])
    if port != bound_port:
        return False
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, socket.gaierror):
        return False
    listening = _plain(bound_host)
    for family, _, _, _, sockaddr in infos:
        address = _plain(str(sockaddr[0]))
        if address is None or listening is None:
            continue
        if listening.is_unspecified:
            if address.is_loopback or address.is_unspecified or _is_local(family, str(sockaddr[0])):
                return True
        elif address == listening or (address.is_unspecified and listening.is_loopback):
            return True
    return False


def _plain(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_local(family: int, host: str) -> bool:
    # An address this machine owns can be bound (port 0: nothing is taken).
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind((host, 0))
        return True
    except OSError:
        return False
