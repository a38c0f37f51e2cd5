"""How a scenario's notes panel looks beside the workbench (deterministic: masked ports, fixed clock)."""

from __future__ import annotations

from tcpbench.scenarios import parse_scenario
from tests.snapshots.test_snapshots import FIXED_CLOCK, _until, masked, settle

SCENARIO = '''
title = "Half-close and reset"
notes = """
Students:  nc -N {raw.host} {raw.port}
  Ctrl-D in nc -N sends FIN ("peer sent FIN").
Teacher: f on a row sends our FIN, A an RST.
Echo on port {echo.port}; a control char \\u001b stays escaped.
"""

[[listener]]
name = "echo"
service = "echo"

[[listener]]
name = "raw"
service = "raw"
'''


def make_app():
    from tcpbench.app import TcpBenchApp

    app = TcpBenchApp(clock=lambda: FIXED_CLOCK, address_formatter=masked, cursor_blink=False,
                      scenario=parse_scenario(SCENARIO, "snapshot.toml"))
    app.animation_level = "none"
    return app


async def scenario_started(pilot) -> None:
    from tcpbench.widgets.notes_panel import NotesPanel

    app = pilot.app
    await _until(pilot, lambda: app.scenario_run is not None and app.screen.query_one(NotesPanel).display)
    await _until(pilot, lambda: app.screen.query_one("#listeners").row_count == 2)
    app.clear_notifications()  # toasts come and go on their own clock
    await settle(pilot)


def test_notes_panel_beside_the_workbench(snap_compare):
    assert snap_compare(make_app(), terminal_size=(120, 35), run_before=scenario_started)
