"""The port probe dialog: host, ports, timeout, banner; a table of results that explains each.

The probe itself is the engine's (`tcpbench.engine.probe`); this screen only
validates the form, runs the probe in a worker (the UI never waits on a socket)
and adds one row per result. Results are rare facts (one per port and
address), so a row per result is fine; byte streams are not shown here.

Banners come from the network: they are escaped to printable ASCII
(`tcpbench.safetext`) and put in cells as Rich `Text(text)` objects, never as
markup. Host names and resolver messages are escaped too. (Why `Text` and not
`Content`: in Textual 8.2.8 DataTable does not measure `Content` cells, so
auto-width columns stay as wide as their label and cut every value.)
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, DataTable, Input, Label, Static
from textual.worker import Worker, WorkerState

from tcpbench.engine.probe import (DEFAULT_TIMEOUT, OPEN, ProbeResult, outcome_label, parse_ports,
                                   probe, summarize)
from tcpbench.safetext import escape_bytes, escape_text

BANNER_CELL = 60  # bytes of a banner shown in a cell

OUTCOME_STYLES = {
    OPEN: "bold green",
    "refused": "bold red",
    "timed_out": "bold yellow",
    "host_unreachable": "bold magenta",
    "network_unreachable": "bold magenta",
    "name_not_resolved": "bold red",
}
# The banner before the explanation: it is short and what people look for; the
# explanation is long and the same for every port with the same outcome.
COLUMNS = (("Address", "address"), ("Port", "port"), ("Outcome", "outcome"), ("ms", "ms"),
           ("Banner", "banner"), ("Explanation", "explanation"))


class ProbeScreen(ModalScreen[None]):
    """Probe TCP ports on a host and explain every outcome; Escape closes it."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="probe.close",
                tooltip="Close the probe (a running probe is cancelled)"),
    ]

    DEFAULT_CSS = """
    ProbeScreen {
        align: center middle;
    }
    ProbeScreen #probe-dialog {
        width: 95%;
        height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    ProbeScreen #probe-form {
        height: auto;
    }
    ProbeScreen #probe-form Input {
        width: 1fr;
    }
    ProbeScreen #probe-host { width: 2fr; }
    ProbeScreen #probe-timeout { max-width: 14; }
    ProbeScreen #probe-actions {
        height: auto;
    }
    ProbeScreen #probe-status {
        height: auto;
        margin: 0 1;
    }
    ProbeScreen #probe-status.error {
        color: $error;
    }
    ProbeScreen #probe-results {
        height: 1fr;
    }
    """

    def __init__(self, host: str = "127.0.0.1", ports: str = "", *, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.initial_host = host
        self.initial_ports = str(ports)
        self.results: list[ProbeResult] = []
        """Results of the last run, in table order."""

    def compose(self) -> ComposeResult:
        with Vertical(id="probe-dialog"):
            yield Label("Probe TCP ports", id="probe-title")
            with Horizontal(id="probe-form"):
                yield Input(self.initial_host, placeholder="host", id="probe-host",
                            tooltip="A name or an address; every address it has is probed")
                yield Input(self.initial_ports, placeholder="ports: 22,80,8000-8010,ssh",
                            id="probe-ports")
                yield Input(f"{DEFAULT_TIMEOUT:g}", placeholder="timeout s", id="probe-timeout",
                            tooltip="Connect timeout per port, in seconds")
            with Horizontal(id="probe-actions"):
                yield Checkbox("Read banner", id="probe-banner",
                               tooltip="After connecting, show what the service says first")
                yield Button("Run", id="probe-run", variant="primary")
            yield Static("Enter runs the probe; Escape closes.", id="probe-status", markup=False)
            yield DataTable(id="probe-results", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#probe-results", DataTable)
        for label, key in COLUMNS:
            table.add_column(label, key=key)
        self.query_one("#probe-ports" if self.initial_host else "#probe-host", Input).focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#probe-run")
    def _run_requested(self) -> None:
        self.action_run()

    def action_run(self) -> None:
        """Validate the form; on success start the probe (a running one is replaced)."""
        host = self.query_one("#probe-host", Input).value.strip()
        ports_text = self.query_one("#probe-ports", Input).value
        timeout_text = self.query_one("#probe-timeout", Input).value.strip()
        if not host:
            self._status("Give a host name or an address.", error=True)
            return
        try:
            ports = parse_ports(ports_text)
        except ValueError as exc:
            self._status(str(exc), error=True)
            return
        try:
            timeout = float(timeout_text)
            if not 0 < timeout <= 300:
                raise ValueError
        except ValueError:
            self._status(f"timeout {escape_text(timeout_text)!r} must be a number of seconds "
                         "between 0 and 300", error=True)
            return
        banner = self.query_one("#probe-banner", Checkbox).value
        self.query_one("#probe-results", DataTable).clear()
        self.results = []
        self._status(f"probing {len(ports)} port{'s' if len(ports) != 1 else ''} on "
                     f"{escape_text(host)} ...")
        self.run_worker(self._probe(host, ports, timeout, banner), name="probe", group="probe",
                        exclusive=True, exit_on_error=False)

    async def _probe(self, host: str, ports: list[int], timeout: float, banner: bool) -> None:
        table = self.query_one("#probe-results", DataTable)
        async for result in probe(host, ports, timeout=timeout, banner=banner):
            self.results.append(result)
            table.add_row(*self._cells(result), key=f"{result.address}|{result.port}")
        counts = ", ".join(f"{n} {outcome_label(k)}" for k, n in summarize(self.results).items())
        self._status(f"done: {counts}")

    @staticmethod
    def _cells(result: ProbeResult) -> tuple[Text, ...]:
        """One row; every text a peer or the resolver controls is escaped, and nothing is markup."""
        outcome = outcome_label(result.outcome)
        style = OUTCOME_STYLES.get(result.outcome, "bold")
        if result.service_refused:
            outcome, style = "open, refused", "bold red"
        banner = ""
        if result.banner is not None:
            banner = escape_bytes(result.banner[:BANNER_CELL]) or "(nothing)"
        explanation = result.explanation
        if result.error:
            explanation = f"{escape_text(result.error)}: {explanation}"
        return (Text(escape_text(result.address or result.host)),
                Text("-" if result.port is None else str(result.port), justify="right"),
                Text(outcome, style=style),
                Text("-" if result.port is None else f"{result.ms:.1f}", justify="right"),
                Text(banner),
                Text(explanation))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "probe" and event.state == WorkerState.ERROR:
            error = event.worker.error
            self._status(f"the probe failed: {escape_text(str(error) or type(error).__name__)}",
                         error=True)

    def _status(self, text: str, *, error: bool = False) -> None:
        status = self.query_one("#probe-status", Static)
        status.update(Content(text))
        status.set_class(error, "error")

    def action_close(self) -> None:
        """Cancel a running probe (its sockets close) and close the dialog."""
        self.workers.cancel_group(self, "probe")
        self.dismiss(None)
