"""How the workbench looks: SVG snapshots with every source of nondeterminism removed.

Sync test functions (snap_compare runs its own event loop); `run_before` is async
and runs inside the app. The clock is fixed (ages 0s, no rates), ports are masked,
the cursor does not blink, animations are off, timestamps are hidden and the
bytes are fixed. The traffic is between the app's own client session and its own
echo listener, so every socket belongs to the app and closes with it.
Update with: pytest tests/snapshots --snapshot-update (then look at the SVGs).
"""

from __future__ import annotations

import time

from tcpbench.app import TcpBenchApp

FIXED_CLOCK = 1_700_000_000.0
PAYLOAD = b"GET /[bold]not-bold[/bold] HTTP/1.0\r\nHost: x\r\n\r\n" + bytes(range(0, 40))


def masked(address: tuple[str, int]) -> str:
    host = address[0]
    return f"[{host}]:<port>" if ":" in host else f"{host}:<port>"


def make_app() -> TcpBenchApp:
    app = TcpBenchApp(clock=lambda: FIXED_CLOCK, utc=True,
                      address_formatter=masked, cursor_blink=False)
    app.animation_level = "none"
    return app


async def _until(pilot, predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(0.02)


async def started(pilot) -> None:
    """Start the echo listener straight on the engine: no toast (its timing is not fixed)."""
    from tcpbench.engine.registry import build_service

    app = pilot.app
    await app.manager.start_listener(build_service("echo"), "127.0.0.1", 0)
    await _until(pilot, lambda: app.screen.query_one("#listeners").row_count == 1)


async def with_traffic(pilot) -> None:
    app = pilot.app
    await started(pilot)
    listener = next(iter(app.manager.listeners.values()))
    session = await app.manager.open_session("127.0.0.1", listener.port)
    session.send(PAYLOAD)
    await _until(pilot, lambda: session.bytes_in == len(PAYLOAD))
    await pilot.press("t")  # timestamps off: they are wall-clock readings
    await settle(pilot)


async def settle(pilot) -> None:
    """Wait until the byte log and the tables stop changing (two syncs in a row alike)."""
    app = pilot.app
    from tcpbench.widgets.bytelog import ByteLogView
    from tcpbench.widgets.tables import ConnectionsTable

    log = app.screen.query_one(ByteLogView)
    table = app.screen.query_one(ConnectionsTable)
    last = None
    for _ in range(100):
        app.screen.sync()
        await pilot.pause(0.05)
        state = (log.row_count, log.at_tail, log.scroll_y, table.row_count, dict(table._cells))
        if state == last:
            break
        last = state
    if log.at_tail:
        # The follow-the-tail scroll may still be pending after a refresh; make it explicit.
        log.scroll_end(animate=False, immediate=True)
    await pilot.pause(0.1)


def test_main_screen_with_traffic(snap_compare):
    assert snap_compare(make_app(), terminal_size=(120, 35), run_before=with_traffic)


def test_hex_view(snap_compare):
    async def run_before(pilot) -> None:
        await with_traffic(pilot)
        await pilot.press("h")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(120, 35), run_before=run_before)


def test_layout_80x24(snap_compare):
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=with_traffic)


def test_layout_200x50_side_by_side(snap_compare):
    assert snap_compare(make_app(), terminal_size=(200, 50), run_before=with_traffic)


def test_new_listener_dialog(snap_compare):
    async def run_before(pilot) -> None:
        await started(pilot)
        await pilot.press("n")
        await _until(pilot, lambda: pilot.app.screen.query("#options > *"))
        dialog = pilot.app.screen
        dialog.query_one("#host").value = "0.0.0.0"  # shows the open-to-the-network warning
        await _until(pilot, lambda: dialog.query_one("#warning").display)
        await pilot.pause(0.2)

    assert snap_compare(make_app(), terminal_size=(100, 40), run_before=run_before)


def test_listener_view(snap_compare):
    """A chat listener selected: its two connections' bytes, joins and the operator's line,
    merged by time and tagged with their connection (timestamps hidden: wall-clock readings)."""

    async def run_before(pilot) -> None:
        from tcpbench.engine.registry import build_service
        from tcpbench.widgets.bytelog import ByteLogView

        app = pilot.app
        listener = await app.manager.start_listener(build_service("chat"), "127.0.0.1", 0)
        await _until(pilot, lambda: app.screen.query_one("#listeners").row_count == 1)
        first = await app.manager.open_session("127.0.0.1", listener.port)
        await _until(pilot, lambda: len(listener.sessions) == 1 and first.bytes_in > 0)
        second = await app.manager.open_session("127.0.0.1", listener.port)
        await _until(pilot, lambda: len(listener.sessions) == 2 and second.bytes_in > 0
                     and b"joined" in b"".join(r.data for r in first.store))
        first.send(b"hello, room\n")
        await _until(pilot, lambda: b"hello, room" in b"".join(r.data for r in second.store))
        second.send(b"hi \x1b[31mthere[/]\n")
        await _until(pilot, lambda: b"there" in b"".join(r.data for r in first.store))
        app.manager.operator_input(listener.id, b"operator: welcome both\n")
        await _until(pilot, lambda: b"operator" in b"".join(r.data for r in second.store))
        app.screen.query_one("#listeners").focus()
        await _until(pilot, lambda: app.screen.query_one(ByteLogView).listener_id == listener.id)
        await pilot.press("t")
        await settle(pilot)

    assert snap_compare(make_app(), terminal_size=(120, 35), run_before=run_before)


def test_connection_detail(snap_compare):
    """The detail view of the client session: every field, fixed clock (age 0s, no rate)."""

    async def run_before(pilot) -> None:
        from tcpbench.screens.detail import ConnectionDetail

        await with_traffic(pilot)
        pilot.app.screen.query_one("#connections").focus()
        await pilot.press("d")
        await _until(pilot, lambda: isinstance(pilot.app.screen, ConnectionDetail))
        await pilot.pause(0.4)

    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)
