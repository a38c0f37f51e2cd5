"""ProbeScreen standalone: a tiny app pushes it; real listeners on 127.0.0.1 answer the probe."""

from __future__ import annotations

import time

from textual.app import App
from textual.widgets import Checkbox, DataTable, Input, Static

from tcpbench.engine import SessionManager
from tcpbench.engine.registry import build_service
from tcpbench.screens.probe import ProbeScreen
from tests.netutil import closed_port


class ProbeApp(App):
    """Pushes one ProbeScreen on mount; `pwned` turns true if peer text ever ran an action."""

    def __init__(self, host: str, ports: str) -> None:
        super().__init__()
        self.host = host
        self.ports = ports
        self.pwned = False

    def on_mount(self) -> None:
        self.push_screen(ProbeScreen(self.host, self.ports))

    def action_pwn(self) -> None:
        self.pwned = True


async def wait_for(predicate, pilot, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await pilot.pause(0.02)


def rows(table: DataTable) -> list[dict[str, str]]:
    """Each row as {column key: plain text}."""
    keys = [column.key.value for column in table.ordered_columns]
    return [{key: str(getattr(cell, "plain", cell)) for key, cell in zip(keys, table.get_row_at(i))}
            for i in range(table.row_count)]


def head(row: dict[str, str]) -> list[str]:
    return [row["address"], row["port"], row["outcome"]]


async def test_probe_open_and_closed_ports():
    closed = closed_port()
    async with SessionManager(linger=1.0) as manager:
        listener = await manager.start_listener(build_service("motd"), "127.0.0.1", 0)
        app = ProbeApp("127.0.0.1", f"{listener.port},{closed}")
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_for(lambda: isinstance(app.screen, ProbeScreen), pilot, what="screen pushed")
            await pilot.click("#probe-run")
            table = app.screen.query_one("#probe-results", DataTable)
            await wait_for(lambda: table.row_count == 2, pilot, what="two rows")
            await wait_for(lambda: "done" in str(app.screen.query_one("#probe-status", Static).render()),
                           pilot, what="probe finished")
            first, second = rows(table)
            assert head(first) == ["127.0.0.1", str(listener.port), "open"]
            assert "accepts connections" in first["explanation"] and "banner" not in first
            assert float(first["ms"]) >= 0
            assert head(second) == ["127.0.0.1", str(closed), "refused"]
            assert second["explanation"].startswith("Connection refused: ")
            assert "REJECT" in second["explanation"]
            assert "done: 1 open, 1 refused" in str(app.screen.query_one("#probe-status").render())
            await pilot.press("escape")
            await wait_for(lambda: not isinstance(app.screen, ProbeScreen), pilot, what="dismissed")


async def test_banner_from_the_network_is_escaped_and_inert():
    hostile = "220 \\x1b]0;owned\\x07 [@click=app.pwn]click[/] [bold]x \\x9b"
    async with SessionManager(linger=1.0) as manager:
        listener = await manager.start_listener(build_service("motd", {"message": hostile}),
                                                "127.0.0.1", 0)
        app = ProbeApp("127.0.0.1", str(listener.port))
        async with app.run_test(size=(200, 40)) as pilot:
            await wait_for(lambda: isinstance(app.screen, ProbeScreen), pilot, what="screen pushed")
            app.screen.query_one("#probe-banner", Checkbox).value = True
            app.screen.query_one("#probe-ports", Input).focus()
            await pilot.press("enter")  # Enter in a field runs the probe
            table = app.screen.query_one("#probe-results", DataTable)
            await wait_for(lambda: table.row_count == 1, pilot, what="one row")
            [row] = rows(table)
            assert row["outcome"] == "open"
            assert row["banner"] == "220 \\e]0;owned\\x07 [@click=app.pwn]click[/] [bold]x \\x9b\\n"
            table.focus()
            await pilot.click("#probe-results", offset=(40, 1))  # on the banner cell
            await pilot.pause()
            assert not app.pwned
            screen_text = "".join(seg.text for strip in app.screen._compositor.render_strips()
                                  for seg in strip)
            assert "\x1b" not in screen_text and "\x9b" not in screen_text


async def test_tcp_wrappers_refusal_row():
    async with SessionManager(linger=1.0) as manager:
        service = build_service("motd", {"message": "421 Service not available."})
        listener = await manager.start_listener(service, "127.0.0.1", 0)
        app = ProbeApp("127.0.0.1", str(listener.port))
        async with app.run_test(size=(200, 40)) as pilot:
            await wait_for(lambda: isinstance(app.screen, ProbeScreen), pilot, what="screen pushed")
            app.screen.query_one("#probe-banner", Checkbox).value = True
            await pilot.click("#probe-run")
            table = app.screen.query_one("#probe-results", DataTable)
            await wait_for(lambda: table.row_count == 1, pilot, what="one row")
            [row] = rows(table)
            assert row["outcome"] == "open, refused" and "TCP wrappers" in row["explanation"]


async def test_bad_input_is_shown_not_raised():
    app = ProbeApp("127.0.0.1", "10-5")
    async with app.run_test(size=(160, 40)) as pilot:
        await wait_for(lambda: isinstance(app.screen, ProbeScreen), pilot, what="screen pushed")
        status = app.screen.query_one("#probe-status", Static)
        await pilot.click("#probe-run")
        await wait_for(lambda: "backwards" in str(status.render()), pilot, what="range error")
        assert status.has_class("error")
        # Further attempts with Enter in a field (a second click this soon would be a double click)
        app.screen.query_one("#probe-ports", Input).value = "22"
        app.screen.query_one("#probe-timeout", Input).value = "soon"
        app.screen.query_one("#probe-timeout", Input).focus()
        await pilot.press("enter")
        await wait_for(lambda: "timeout 'soon'" in str(status.render()), pilot, what="timeout error")
        app.screen.query_one("#probe-timeout", Input).value = "1"
        app.screen.query_one("#probe-host", Input).value = " "
        await pilot.press("enter")
        await wait_for(lambda: "Give a host" in str(status.render()), pilot, what="host error")
        assert app.screen.query_one("#probe-results", DataTable).row_count == 0
        assert isinstance(app.screen, ProbeScreen)  # still open, nothing crashed


async def test_escape_cancels_a_running_probe():
    from tests.netutil import silent_port

    with silent_port() as silent:
        app = ProbeApp("127.0.0.1", str(silent))
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_for(lambda: isinstance(app.screen, ProbeScreen), pilot, what="screen pushed")
            screen = app.screen
            screen.query_one("#probe-timeout", Input).value = "30"
            await pilot.click("#probe-run")
            await wait_for(lambda: any(w.group == "probe" for w in screen.workers), pilot,
                           what="probe running")
            worker = next(w for w in screen.workers if w.group == "probe")
            await pilot.press("escape")
            await wait_for(lambda: worker.is_finished, pilot, timeout=5, what="probe cancelled")
            assert not isinstance(app.screen, ProbeScreen)


def _column_text(app, table: DataTable, row_index: int, key: str) -> str:
    """The rendered text of one cell, every wrapped line of it joined, read off the screen."""
    from textual.coordinate import Coordinate

    lines = ["".join(segment.text for segment in strip)
             for strip in app.screen._compositor.render_strips()]
    x = table.region.x - int(table.scroll_x)
    for column in table.ordered_columns:
        if column.key.value == key:
            start, width = x + table.cell_padding, column.width
            break
        x += column.get_render_width(table)
    y = table.region.y + 1  # below the header
    for index in range(row_index):
        y += table.ordered_rows[index].height
    height = table.ordered_rows[row_index].height
    assert table.get_cell_at(Coordinate(row_index, 0)) is not None
    return "\n".join(lines[line][start:start + width] for line in range(y, y + height))


def _squeezed(text: str) -> str:
    return "".join(text.split())


async def test_long_values_wrap_inside_their_columns_at_80_columns():
    from tcpbench.app import TcpBenchApp

    closed = closed_port()
    app = TcpBenchApp(cursor_blink=False)
    async with app.run_test(size=(80, 24)) as pilot:
        for host, ports in (("nonexistent.invalid", "80"), ("127.0.0.1", str(closed))):
            app.open_probe(host, ports)
            await wait_for(lambda: isinstance(app.screen, ProbeScreen) and app.screen.query("#probe-run"),
                           pilot, what="probe open")
            screen = app.screen
            await pilot.click("#probe-run")
            status = screen.query_one("#probe-status", Static)
            await wait_for(lambda: "done" in str(status.render()), pilot, timeout=20, what="done")
            await pilot.pause(0.3)
            table = screen.query_one("#probe-results", DataTable)
            assert table.row_count == 1
            # Every column fits the table: nothing runs off its right edge.
            total = sum(column.get_render_width(table) for column in table.ordered_columns)
            assert total <= table.scrollable_content_region.width
            [row] = rows(table)
            for key, value in row.items():
                drawn = _column_text(app, table, 0, key)
                # Wrapped, maybe over several lines, but whole and inside its own column.
                assert _squeezed(drawn) == _squeezed(value), (key, value, drawn)
            result = screen.results[0]
            if host == "nonexistent.invalid":
                assert result.outcome == "name_not_resolved" and result.error
                assert _squeezed(result.error) in _squeezed(_column_text(app, table, 0, "explanation"))
            else:
                assert row["outcome"] == "refused" and row["port"] == str(closed)
            await pilot.press("escape")
            await wait_for(lambda: not isinstance(app.screen, ProbeScreen), pilot, what="closed")


async def test_send_and_concurrency_fields_like_the_cli():
    async with SessionManager(linger=1.0) as manager:
        listener = await manager.start_listener(build_service("echo"), "127.0.0.1", 0)
        app = ProbeApp("127.0.0.1", str(listener.port))
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_for(lambda: isinstance(app.screen, ProbeScreen), pilot, what="screen pushed")
            screen = app.screen
            status = screen.query_one("#probe-status", Static)
            screen.query_one("#probe-concurrency", Input).value = "0"
            await pilot.click("#probe-run")
            await wait_for(lambda: "concurrency '0'" in str(status.render()), pilot, what="error")
            assert status.has_class("error")
            screen.query_one("#probe-concurrency", Input).value = "2"
            screen.query_one("#probe-send", Input).value = "hello\\x21"
            screen.query_one("#probe-send", Input).focus()
            await pilot.press("enter")
            table = screen.query_one("#probe-results", DataTable)
            await wait_for(lambda: table.row_count == 1, pilot, what="one row")
            [row] = rows(table)
            # --send implies --banner: the echo service says nothing first, then echoes us.
            assert screen.query_one("#probe-banner", Checkbox).value
            assert row["banner"] == "(nothing)\nanswer: hello!\\r\\n"
            assert screen.results[0].answer == b"hello!\r\n"


async def test_enter_on_the_banner_box_runs_the_probe_as_the_hint_says():
    async with SessionManager(linger=1.0) as manager:
        listener = await manager.start_listener(build_service("motd", {"message": "220 hi"}),
                                                "127.0.0.1", 0)
        app = ProbeApp("127.0.0.1", str(listener.port))
        async with app.run_test(size=(160, 40)) as pilot:
            await wait_for(lambda: isinstance(app.screen, ProbeScreen), pilot, what="screen pushed")
            box = app.screen.query_one("#probe-banner", Checkbox)
            box.focus()
            await pilot.press("space")
            assert box.value
            await pilot.press("enter")
            table = app.screen.query_one("#probe-results", DataTable)
            await wait_for(lambda: table.row_count == 1, pilot, what="the probe ran")
            assert box.value  # still ticked: Enter ran the form, it did not untick the box
            await wait_for(lambda: rows(table)[0].get("banner", "").startswith("220 hi"), pilot,
                           what="the banner read")
