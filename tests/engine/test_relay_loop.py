"""relay never to itself: a target that is the listener's own address is refused when it starts.

Without the check, `serve relay --port P --to 127.0.0.1:P` accepts a client,
connects to itself, accepts that, connects again ... until file descriptors
run out.
"""

from __future__ import annotations

import socket

import pytest

from tcpbench.engine import ListenError
from tcpbench.engine.events import ListenerFailed
from tcpbench.engine.relay import RelayService, reaches_listener
from tests.netutil import closed_port


def has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize("target, bound, dual, loops", [
    ("127.0.0.1", "127.0.0.1", False, True),
    ("127.0.0.2", "127.0.0.1", False, False),     # another loopback address: another socket
    ("127.0.0.2", "0.0.0.0", False, True),        # 0.0.0.0 takes every address of this machine
    ("::1", "0.0.0.0", False, False),             # ... of IPv4 only
    ("127.0.0.1", "::", True, True),              # dual-stack :: takes IPv4 too
    ("127.0.0.1", "::", False, False),            # IPV6_V6ONLY does not
    ("::ffff:127.0.0.1", "127.0.0.1", False, True),
    ("0.0.0.0", "127.0.0.1", False, True),        # Linux connects 0.0.0.0 to loopback
    ("::", "::1", False, True),
    ("192.0.2.1", "0.0.0.0", False, False),       # TEST-NET: not this machine
    ("not an address", "127.0.0.1", False, False),
])
def test_what_reaches_a_listener(target, bound, dual, loops) -> None:
    assert reaches_listener(target, bound, dual) is loops


@pytest.mark.parametrize("host, to", [
    ("127.0.0.1", "127.0.0.1"),
    ("127.0.0.1", "localhost"),
    ("0.0.0.0", "127.0.0.1"),
    ("0.0.0.0", "0.0.0.0"),
    ("::", "127.0.0.1"),
    ("::1", "[::1]"),
])
async def test_a_relay_to_its_own_address_is_refused(manager, host, to) -> None:
    if ":" in host and not has_ipv6():
        pytest.skip("no IPv6 loopback")
    port = closed_port()
    failed: list[ListenerFailed] = []
    manager.subscribe(lambda e: failed.append(e) if isinstance(e, ListenerFailed) else None)
    with pytest.raises(ListenError) as caught:
        await manager.start_listener(RelayService(to=f"{to}:{port}"), host, port)
    message = str(caught.value)
    assert caught.value.reason == "loop" and "itself" in message and "\n" not in message
    assert "relay to another port or host" in message
    assert failed and failed[0].reason == "loop"
    assert not manager.listeners
    # The port was let go: a listener can take it now.
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, port))


async def test_a_relay_to_another_port_of_the_same_host_starts(manager) -> None:
    other = closed_port()
    listener = await manager.start_listener(RelayService(to=f"127.0.0.1:{other}"), "127.0.0.1", 0)
    assert listener.port != other and manager.listeners


async def test_port_zero_is_checked_with_the_port_it_got(manager) -> None:
    """With --port 0 the bound port is known only after bind: the check runs then."""
    service = RelayService(to="127.0.0.1:9")
    assert await service.listen_check(("127.0.0.1", 9), False, manager.loop.getaddrinfo)
    assert await service.listen_check(("127.0.0.1", 10), False, manager.loop.getaddrinfo) is None


async def test_a_target_that_does_not_resolve_is_not_a_loop(manager) -> None:
    service = RelayService(to="no-such-host.invalid:9")
    assert await service.listen_check(("127.0.0.1", 9), False, manager.loop.getaddrinfo) is None
