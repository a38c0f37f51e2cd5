"""The teaching features in the workbench, with real sockets: a scenario's notes, N, w, F1, e, p."""

from __future__ import annotations

import asyncio

import pytest
from textual.widgets import Input, Static

from tcpbench.scenarios import load_scenario
from tcpbench.screens.export import ExportDialog
from tcpbench.screens.probe import ProbeScreen
from tcpbench.screens.tcp_help import TcpHelpScreen
from tcpbench.screens.timeline import TimelineScreen
from tcpbench.widgets.notes_panel import NotesPanel
from tcpbench.widgets.tables import ConnectionsTable
from tests.ui.helpers import make_app, until

pytestmark = pytest.mark.timeout(60)


def text(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def lesson_app(pilot_size=(160, 45)):
    return make_app(scenario=load_scenario("lesson").with_free_ports())


async def test_a_scenario_starts_and_its_notes_show_the_real_ports() -> None:
    app = await lesson_app()
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: app.scenario_run is not None and len(app.manager.listeners) == 6,
                    what="the lesson's six listeners")
        panel = app.screen.query_one(NotesPanel)
        await until(pilot, lambda: panel.display, what="the notes panel")
        echo_port = app.scenario_run.listeners["echo"].port
        assert "TCP/IP applications by example" in text(panel, "#notes-title")
        assert f"nc -N 127.0.0.1 {echo_port}" in text(panel, "#notes-text")
        await pilot.press("N")
        assert not panel.display
        await pilot.press("N")
        assert panel.display
        # A student with a plain socket: the row appears, and w tells its story.
        reader, writer = await asyncio.open_connection("127.0.0.1", echo_port)
        writer.write(b"is this on?\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(12), 10) == b"is this on?\n"
        table = app.screen.query_one(ConnectionsTable)
        await until(pilot, lambda: table.row_count == 1, what="the student's row")
        table.focus()
        await pilot.press("W")
        await until(pilot, lambda: isinstance(app.screen, TimelineScreen), what="the timeline")
        story = text(app.screen, "#timeline-text")
        assert "accepted: a peer completed the three-way handshake" in story
        assert "received 12 byte(s): is this on?\\n" in story and "sent 12 byte(s)" in story
        assert text(app.screen, "#timeline-kernel").startswith("kernel: ESTABLISHED, rtt ")
        writer.write_eof()
        await until(pilot, lambda: not app.manager.sessions, what="the orderly close")
        await pilot.press("r")
        story = text(app.screen, "#timeline-text")
        assert "peer sent FIN: it will send nothing more" in story
        assert "closed: the peer sent FIN first" in story
        writer.close()
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, TimelineScreen), what="closed")


async def test_f1_explains_the_lifecycle_with_the_kernel_state(tmp_path) -> None:
    app = make_app(scenario=load_scenario("half-close").with_free_ports())
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: app.scenario_run is not None and app.scenario_run.sessions,
                    what="the scenario's client session")
        session = app.scenario_run.sessions[0]
        await until(pilot, lambda: session.bytes_in == 12, what="the echo")
        table = app.screen.query_one(ConnectionsTable)
        await until(pilot, lambda: table.row_count == 2, what="both ends' rows")
        table.focus()
        for key in ("up", "down", "down"):  # pick it as a person would: the log then stays on it
            if table.selected_key == session.id:
                break
            await pilot.press(key)
        assert table.selected_key == session.id
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, TcpHelpScreen), what="the TCP help")
        live = text(app.screen, "#tcp-help-live")
        assert live.startswith(f"Connection #{session.id} is open; the kernel says ESTABLISHED")
        body = " ".join(str(s.render()) for s in app.screen.query(".stage"))
        for word in ("Handshake", "SYN-ACK", "Data and ACK", "CLOSE_WAIT", "FIN_WAIT2", "RST",
                     "TIME_WAIT"):
            assert word in body
        await pilot.press("escape")
        # f sends our FIN; the kernel now says FIN_WAIT (ours is out, theirs may follow).
        await pilot.press("f")
        await until(pilot, lambda: session.is_finished, what="both FINs")
        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, TcpHelpScreen), what="the TCP help again")
        # We closed first: our socket is gone for tcpbench but the kernel keeps it in
        # TIME_WAIT (F1 used to say "holds no socket" here, hiding the lesson).
        live = text(app.screen, "#tcp-help-live")
        assert "the kernel still keeps it in TIME_WAIT" in live, live
        kernel_view = text(app.screen, "#tcp-help-timewait")
        assert "TIME_WAIT" in kernel_view
        # The echo listener's SO_REUSEPORT queues count as one LISTEN per listener.
        listeners = len(app.manager.listeners)
        assert f"{listeners} LISTEN" in kernel_view, kernel_view
        await pilot.press("escape")
        # e: the record of the selected session, read back.
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ExportDialog), what="the export dialog")
        app.screen.query_one("#export-dir", Input).value = str(tmp_path / "rec")
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, ExportDialog), what="exported")
        assert (tmp_path / "rec" / f"session-{session.id}.tx.bin").read_bytes() == b"hello, echo\n"
        assert (tmp_path / "rec" / f"session-{session.id}.rx.bin").read_bytes() == b"hello, echo\n"
        transcript = (tmp_path / "rec" / f"session-{session.id}.txt").read_text()
        assert "> hello, echo\\n" in transcript and "< hello, echo\\n" in transcript
        assert "we sent FIN" in transcript


async def test_the_probe_is_prefilled_from_the_scenario() -> None:
    app = make_app(scenario=load_scenario("refused-vs-dropped").with_free_ports())
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.scenario_run is not None, what="the scenario")
        run = app.scenario_run
        await pilot.press("p")
        await until(pilot, lambda: isinstance(app.screen, ProbeScreen), what="the probe")
        ports = app.screen.query_one("#probe-ports", Input).value
        assert ports == ",".join(str(run.connect_address(n)[1]) for n in ("open", "closed", "dropped"))
    assert not run.ports  # the refusing and dropping sockets closed with the app


async def test_without_a_scenario_n_says_where_notes_come_from() -> None:
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("N")
        await until(pilot, lambda: any("tcpbench --scenario" in str(n.message)
                                       for n in app._notifications), what="the hint")
        assert not app.screen.query_one(NotesPanel).display


async def test_the_workbench_records_every_session_as_it_happens(tmp_path) -> None:
    from tcpbench.engine.recorder import Recorder, prepare_directory

    recorder = Recorder(prepare_directory(tmp_path / "lesson"))
    app = make_app(scenario=load_scenario("half-close").with_free_ports(), recorder=recorder)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.scenario_run is not None, what="the scenario")
        reader, writer = await asyncio.open_connection(*app.scenario_run.connect_address("echo"))
        writer.write(b"student bytes \x00\xff\n")
        assert await asyncio.wait_for(reader.readexactly(17), 10) == b"student bytes \x00\xff\n"
        writer.close()
        await until(pilot, lambda: len(app.manager.sessions) == 2, what="the student gone")
    # Sessions 1 and 2 are the scenario's own client and its echo; 3 is the student.
    assert (tmp_path / "lesson" / "session-3.rx.bin").read_bytes() == b"student bytes \x00\xff\n"
    assert (tmp_path / "lesson" / "session-3.tx.bin").read_bytes() == b"student bytes \x00\xff\n"
    assert (tmp_path / "lesson" / "session-1.tx.bin").read_bytes() == b"hello, echo\n"


async def test_on_a_narrow_screen_the_notes_take_the_whole_width_and_n_shows_the_workbench():
    app = await lesson_app()
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.screen.query_one(NotesPanel)
        await until(pilot, lambda: panel.display and panel.has_notes, what="the notes")
        await until(pilot, lambda: panel.region.width == 80, what="the notes across the width")
        # Unwrapped: every line of the lesson fits, so the class reads what to type.
        assert "nc -N 127.0.0.1" in text(app.screen, "#notes-text")
        await pilot.press("N")
        assert not panel.display
        table = app.screen.query_one(ConnectionsTable)
        await until(pilot, lambda: "state" in table.visible_columns, what="the state column")
        await pilot.resize_terminal(160, 45)  # a wide screen: beside the workbench again
        await pilot.press("N")
        await until(pilot, lambda: panel.display and panel.region.width == 50, what="beside it")
