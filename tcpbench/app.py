"""The interactive workbench: `TcpBenchApp` and `run_app` (called by `tcpbench` with no command).

The app owns one `SessionManager`, closed on unmount, so every socket is closed
on every way out. Screens read the engine's state on a timer; see
`tcpbench.screens.main`.

The manager is made right after the first frame is painted (or sooner, at the
first read of `app.manager`): importing the engine costs ~20 ms, and a bare
start has nothing for it to show yet. The main screen draws its first frame
from an empty stand-in and is handed the manager, through `when_engine_ready`,
the moment it exists; `--listen`, `--connect` and `--scenario` open then.

For tests and screenshots the clock and the address formatter are injectable:
`TcpBenchApp(clock=lambda: 0.0, address_formatter=lambda a: f"{a[0]}:<port>")`.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.worker import Worker, WorkerState

from tcpbench.engine.address import format_address
from tcpbench.heap import TRIM_SECONDS, can_release, release_free_memory
from tcpbench.usage import UsageError

if TYPE_CHECKING:
    from textual.screen import Screen

    from tcpbench.engine.manager import SessionManager
    from tcpbench.engine.recorder import Recorder
    from tcpbench.scenarios import Scenario
    from tcpbench.scenarios.start import ScenarioRun
    from tcpbench.ui_spec import ConnectSpec, ListenSpec


class TcpBenchApp(App[int]):
    """A terminal workbench for TCP: listeners, client sessions and every byte between them."""

    CSS_PATH = Path(__file__).with_name("app.tcss")
    TITLE = "tcpbench"
    BINDINGS = [Binding("ctrl+q", "quit", "Quit", show=False, priority=True, id="app.quit",
                        tooltip="Close every connection and listener, then leave")]

    def __init__(self, *, listen: Sequence[ListenSpec] = (), connect: Sequence[ConnectSpec] = (),
                 clock: Callable[[], float] = time.time,
                 address_formatter: Callable[[tuple[str, int]], str] = format_address,
                 cursor_blink: bool = True, connect_timeout: float = 10.0, utc: bool = False,
                 scenario: Scenario | None = None, recorder: Recorder | None = None) -> None:
        super().__init__()
        self.recorder = recorder
        """Writes every session's record as it happens (`tcpbench --record DIR`), if any."""
        self.scenario = scenario
        """The lesson to start on mount (`tcpbench --scenario`), if any."""
        self.scenario_run: ScenarioRun | None = None
        """What the scenario opened, once started; it owns the refusing/dropping ports."""
        self.initial_listen = list(listen)
        self.initial_connect = list(connect)
        self.clock = clock
        """Wall-clock seconds for timestamps and ages (fixed in snapshot tests)."""
        self.address_formatter = address_formatter
        """How addresses are shown (snapshot tests mask the ephemeral ports)."""
        self.cursor_blink = cursor_blink
        self.utc = utc
        """Byte log timestamps start in UTC (else local time, as `serve` prints); `u` toggles."""
        self.connect_timeout = connect_timeout
        self._manager: SessionManager | None = None
        self._engine_waiters: list[Callable[[SessionManager], object]] = []

    @property
    def manager(self) -> SessionManager:
        """The engine: every listener, session and task. Made after the first frame, or
        here at the first read if that comes sooner (a key pressed at once, a test).
        None before the app runs: the manager lives on the app's running loop."""
        manager = self._manager
        if manager is None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                return None  # type: ignore[return-value]
            manager = self._start_engine()
        return manager

    def when_engine_ready(self, callback: Callable[[SessionManager], object]) -> None:
        """Call `callback(manager)` once the manager exists: now, or the moment it is made.

        Synchronous, within the making: a subscriber added there misses no event."""
        if self._manager is not None:
            callback(self._manager)
        else:
            self._engine_waiters.append(callback)

    def _start_engine(self) -> SessionManager:
        from tcpbench.engine.manager import SessionManager

        manager = self._manager = SessionManager()
        if self.recorder is not None:
            manager.subscribe(self.recorder)
        waiters, self._engine_waiters = self._engine_waiters, []
        for callback in waiters:
            callback(manager)
        return manager

    async def on_mount(self) -> None:
        from tcpbench.screens.main import MainScreen

        await self.push_screen(MainScreen())
        if can_release():
            # A workbench runs for hours: without this its heap keeps every high-water mark.
            self.set_interval(TRIM_SECONDS, release_free_memory, name="heap trim")
        # After the screen's next refresh, i.e. once the first frame is written.
        self.call_after_refresh(self._after_first_frame)

    def _after_first_frame(self) -> None:
        self.manager  # noqa: B018  (makes the engine, unless something already asked for it)
        if self.initial_listen or self.initial_connect or self.scenario is not None:
            self.run_worker(self._open_initial(), name="start-up listeners", group="startup",
                            exit_on_error=False)

    async def on_unmount(self) -> None:
        if self._manager is not None:
            await self._manager.aclose()
        if self.scenario_run is not None:
            self.scenario_run.close()
        if self.recorder is not None:
            self.recorder.close()

    async def _open_initial(self) -> None:
        from tcpbench.engine.errors import ConnectError, ListenError
        from tcpbench.engine.registry import UnknownServiceError, build_service
        from tcpbench.services.base import OptionError

        for spec in self.initial_listen:
            try:
                listener = await self.manager.start_listener(build_service(spec.service), spec.host, spec.port)
            except (ListenError, OptionError, UnknownServiceError) as exc:
                self.notify(str(exc), title="--listen failed", severity="error", markup=False)
            else:
                self.notify(f"{spec.service} listening on {self.address_formatter(listener.address)}",
                            markup=False)
        from tcpbench.engine.address import format_address

        for spec in self.initial_connect:
            try:
                await self.manager.open_session(spec.host, spec.port, timeout=self.connect_timeout)
            except ConnectError as exc:
                self.notify(str(exc), title="--connect failed", severity="error", markup=False)
            else:
                self._remember_connect(format_address((spec.host, spec.port)))
        if self.scenario is not None:
            await self._start_scenario(self.scenario)
            if self.scenario_run is not None and self.scenario_run.sessions:
                self._remember_connect(format_address(self.scenario_run.sessions[-1].peer))

    def _remember_connect(self, address: str) -> None:
        """Where the connect dialog starts: an address that connected, however it was opened."""
        from tcpbench.screens.main import MainScreen

        for screen in self.screen_stack:
            if isinstance(screen, MainScreen):
                screen.last_connect_address = address

    async def _start_scenario(self, scenario: Scenario) -> None:
        from tcpbench.scenarios.start import start_scenario
        from tcpbench.widgets.notes_panel import NotesPanel

        run = self.scenario_run = await start_scenario(self.manager, scenario,
                                                       connect_timeout=self.connect_timeout)
        for problem in run.problems:
            self.notify(problem, title="scenario", severity="error", markup=False)
        for warning in run.warnings:
            self.notify(warning, title="scenario", severity="warning", markup=False)
        for screen in self.screen_stack:
            for panel in screen.query(NotesPanel):
                panel.show_notes(scenario.title, run.notes(self.address_formatter), run.problems)
        self.notify(f"{scenario.title}: {len(run.listeners)} listener(s) open", markup=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place where a failed background task becomes a notification (never a crash)."""
        if event.state == WorkerState.ERROR:
            error = event.worker.error
            self.notify(f"{event.worker.name or 'a task'} failed: {type(error).__name__}: {error}",
                        title="error", severity="error", markup=False)

    def open_probe(self, host: str = "127.0.0.1", ports: str = "") -> None:
        """Push the port probe (imported lazily: most sessions never open it); a scenario
        with a `probe` list fills in its ports."""
        from tcpbench.screens.probe import ProbeScreen

        if not ports and self.scenario_run is not None and self.scenario_run.scenario.probe:
            host, ports = self.scenario_run.probe_target()

        self.push_screen(ProbeScreen(host, ports))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        from tcpbench.screens.commands import COMMANDS
        from tcpbench.screens.main import MainScreen

        if isinstance(screen, MainScreen):
            for command in COMMANDS:
                if command.action == "quit":
                    continue
                yield SystemCommand(command.title, command.help,
                                    lambda action=command.action: screen.run_action(action))
        yield from super().get_system_commands(screen)


def run_app(listen: list[str], connect: list[str], scenario: str | None = None,
            record: str | None = None, utc: bool = False) -> int:
    """Parse `--listen`/`--connect`/`--scenario`/`--record` (errors: `UsageError`, one line; a
    scenario file's names its line) and run the workbench."""
    # Each module is imported only when its flag is given: the registry (every service,
    # h11), scenarios (tomllib), the recorder and the flag parsers cost ~20 ms that a
    # bare start would pay before its first frame.
    listen_specs: list[ListenSpec] = []
    if listen:
        from tcpbench.engine.registry import SERVICES
        from tcpbench.ui_spec import parse_listen

        listen_specs = [parse_listen(text, SERVICES) for text in listen]
    connect_specs: list[ConnectSpec] = []
    if connect:
        from tcpbench.ui_spec import parse_connect

        connect_specs = [parse_connect(text) for text in connect]
    plan = None
    if scenario:
        from tcpbench.scenarios import load_scenario

        plan = load_scenario(scenario)
    recorder = None
    if record:
        from tcpbench.engine.recorder import Recorder, RecordError, prepare_directory

        try:
            recorder = Recorder(prepare_directory(record))
        except RecordError as exc:
            raise UsageError(f"--record: {exc}") from None
    # What the imports made (Textual, Rich, asyncio, our modules: ~35k tracked objects)
    # lives as long as the process. Left in the collector's generations, it drew the
    # collector into a full collection during start-up (13-14 ms before the first frame,
    # timed with gc.callbacks) and makes every later full collection scan it again.
    # Frozen, the collector only looks at what the app makes from here on.
    gc.freeze()
    app = TcpBenchApp(listen=listen_specs, connect=connect_specs, scenario=plan, recorder=recorder,
                      utc=utc)
    app.run()
    if recorder is not None and recorder.error is not None:
        print(f"tcpbench: {recorder.error}", file=sys.stderr)
    return app.return_code or 0
