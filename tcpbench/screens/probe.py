"""The port probe dialog: the CLI's fields (host, ports, timeout, concurrency, banner, send)
and a table of results that explains each.

The probe itself is the engine's (`tcpbench.engine.probe`); this screen only
validates the form, runs the probe in a worker (the UI never waits on a socket)
and adds one row per result. Results are rare facts (one per port and
address), so a row per result is fine; byte streams are not shown here.

Banners come from the network: they are escaped to printable ASCII
(`tcpbench.safetext`) and put in cells as Rich `Text(text)` objects, never as
markup. Host names and resolver messages are escaped too. (Why `Text` and not
`Content`: in Textual 8.2.8 DataTable does not measure `Content` cells, so
auto-width columns stay as wide as their label and cut every value.)

Long values never run into the next column: the columns get fixed widths that
fit the dialog (`_plan`, redone on resize) and every cell wraps within its
column (rows are as tall as their longest cell); a word longer than its column
(a long host name) is folded, not cut.
"""

from __future__ import annotations

import ipaddress

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, DataTable, Input, Label, Static
from textual.worker import Worker, WorkerState

from tcpbench.engine.probe import (DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, MAX_CONCURRENCY, OPEN,
                                   ProbeResult, line_to_send, outcome_label, parse_ports, probe,
                                   summarize)
from tcpbench.safetext import EscapeError, escape_bytes, escape_text

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
NARROWEST_EXPLANATION = 16


def address_width(host: str) -> int:
    """Cells the address column needs for HOST: an address literal's own length, else an IPv4's."""
    try:
        return len(str(ipaddress.ip_address(host.strip().strip("[]"))))
    except ValueError:
        return 15


class SpaceToggles(Checkbox, inherit_bindings=False):
    """A checkbox that Space ticks; Enter goes on to the form, as the hint says ("Enter
    runs the probe"), instead of unticking the box just ticked."""

    BINDINGS = [Binding("space", "toggle_button", "Toggle", show=False)]


class ProbeScreen(ModalScreen[None]):
    """Probe TCP ports on a host and explain every outcome; Escape closes it."""

    BINDINGS = [
        Binding("escape", "close", "Close", id="probe.close",
                tooltip="Close the probe (a running probe is cancelled)"),
        # Reached only from a widget that does not take Enter itself (the banner box):
        # inputs submit, the Run button presses, the results table selects.
        Binding("enter", "run", "Run", show=False, id="probe.run"),
    ]

    DEFAULT_CSS = """
    ProbeScreen {
        align: center middle;
    }
    ProbeScreen #probe-dialog {
        width: 95%;
        max-width: 160;
        height: 90%;
        max-height: 90%;
    }
    ProbeScreen .probe-row {
        height: 1;
    }
    ProbeScreen .probe-label {
        width: auto;
        color: $text-muted;
        padding: 0 1 0 0;
    }
    ProbeScreen .probe-label.next {
        padding: 0 1 0 2;
    }
    ProbeScreen .probe-row Input {
        width: 1fr;
    }
    ProbeScreen .probe-row Input.number {
        width: 8;
    }
    ProbeScreen #probe-banner {
        margin-left: 2;
    }
    ProbeScreen #probe-status {
        width: 1fr;
        height: auto;
    }
    ProbeScreen #probe-status.error {
        color: $text-error;
    }
    ProbeScreen #probe-run {
        margin-left: 1;
    }
    ProbeScreen #probe-results {
        height: 1fr;
        margin-top: 1;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, host: str = "127.0.0.1", ports: str = "", *, name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.initial_host = host
        self.initial_ports = str(ports)
        self.results: list[ProbeResult] = []
        """Results of the last run, in table order."""
        self._widths: tuple[int, ...] = ()
        self._address_width = address_width(host)
        self._with_banner = False

    def compose(self) -> ComposeResult:
        with Vertical(id="probe-dialog", classes="dialog"):
            yield Label("Probe TCP ports", id="probe-title", classes="dialog-title")
            with Horizontal(classes="probe-row"):
                yield Label("host", classes="probe-label")
                yield Input(self.initial_host, placeholder="name or address", id="probe-host",
                            compact=True, tooltip="A name or an address; every address it has is probed")
                yield Label("ports", classes="probe-label next")
                yield Input(self.initial_ports, placeholder="22,80,8000-8010,ssh", id="probe-ports",
                            compact=True, tooltip="Numbers, ranges and service names, comma-separated")
            with Horizontal(classes="probe-row"):
                yield Label("timeout (s)", classes="probe-label")
                yield Input(f"{DEFAULT_TIMEOUT:g}", id="probe-timeout", classes="number", compact=True,
                            tooltip="Connect timeout per port, and banner wait, in seconds")
                yield Label("concurrency", classes="probe-label next")
                yield Input(str(DEFAULT_CONCURRENCY), id="probe-concurrency", classes="number",
                            compact=True, tooltip=f"Connects in flight at once (1-{MAX_CONCURRENCY})")
                yield SpaceToggles("read banner", id="probe-banner", compact=True,
                                   tooltip="After connecting, show what the service says first "
                                           "(Space ticks it)")
            with Horizontal(classes="probe-row"):
                yield Label("send", classes="probe-label")
                yield Input("", placeholder="text + CRLF, sent after the banner (\\r \\n \\xNN)",
                            id="probe-send", compact=True,
                            tooltip="Send this after the banner and show the answer, as --send does")
            with Horizontal(classes="probe-row"):
                yield Static("Enter runs the probe; Escape closes.", id="probe-status", markup=False)
                yield Button("Run", id="probe-run", variant="primary", compact=True)
            yield DataTable(id="probe-results", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        self._layout()
        self.query_one("#probe-ports" if self.initial_host else "#probe-host", Input).focus()

    def on_resize(self) -> None:
        self._layout()

    def _columns(self, banner: bool) -> tuple[tuple[str, str], ...]:
        # Without a banner asked for, its column would only take room from the explanation.
        return COLUMNS if banner else tuple(c for c in COLUMNS if c[1] != "banner")

    def _plan(self, available: int, banner: bool) -> tuple[int, ...]:
        """Column widths (padding excluded) for `available` cells: short fixed columns,
        the rest shared by address, banner and explanation, each of which wraps."""
        available -= 2 * len(self._columns(banner))  # a DataTable cell's padding
        port, ms = 5, 6
        outcome = 17 if available >= 90 else 11  # "name not resolved" whole, or wrapped
        rest = max(0, available - port - ms - outcome)
        # An address literal is as wide as it is; a name may resolve to any IPv4 address.
        address = max(9, min(39, rest // 4, self._address_width))
        banner_width = max(8, rest // 3) if banner else 0
        explanation = max(NARROWEST_EXPLANATION, rest - address - banner_width)
        widths = (address, port, outcome, ms, banner_width, explanation)
        return widths if banner else widths[:4] + widths[5:]

    def _layout(self, force: bool = False) -> None:
        table = self.query_one("#probe-results", DataTable)
        width = table.size.width - table.styles.scrollbar_size_vertical
        if width <= 0:
            width = self.app.size.width - 8
        banner = any(result.banner is not None for result in self.results) or \
            self.query_one("#probe-banner", Checkbox).value
        widths = self._plan(width, banner)
        if widths == self._widths and not force:
            return
        self._widths = widths
        cursor = table.cursor_row
        table.clear(columns=True)
        for (label, key), column_width in zip(self._columns(banner), widths):
            table.add_column(label, key=key, width=column_width)
        self._with_banner = banner
        for result in self.results:
            self._add_row(table, result)
        if table.row_count:
            table.move_cursor(row=min(cursor, table.row_count - 1))

    def _add_row(self, table: DataTable, result: ProbeResult) -> None:
        # height=None: the row is as tall as its longest wrapped cell.
        cells = self._cells(result)
        if not self._with_banner:
            cells = cells[:4] + cells[5:]
        table.add_row(*cells, key=f"{result.address}|{result.port}", height=None)

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
        concurrency_text = self.query_one("#probe-concurrency", Input).value.strip()
        try:
            concurrency = int(concurrency_text, 10)
            if not 1 <= concurrency <= MAX_CONCURRENCY:
                raise ValueError
        except ValueError:
            self._status(f"concurrency {escape_text(concurrency_text)!r} must be a whole number "
                         f"from 1 to {MAX_CONCURRENCY}", error=True)
            return
        send_text = self.query_one("#probe-send", Input).value
        send: bytes | None = None
        if send_text:
            try:
                send = line_to_send(send_text)
            except EscapeError as exc:
                self._status(f"send: {escape_text(str(exc))}", error=True)
                return
        banner = self.query_one("#probe-banner", Checkbox).value or send is not None
        self.query_one("#probe-banner", Checkbox).value = banner
        self.results = []
        self._address_width = address_width(host)
        self._layout(force=True)
        self._status(f"probing {len(ports)} port{'s' if len(ports) != 1 else ''} on "
                     f"{escape_text(host)} ...")
        self.run_worker(self._probe(host, ports, timeout, banner, concurrency, send), name="probe",
                        group="probe", exclusive=True, exit_on_error=False)

    async def _probe(self, host: str, ports: list[int], timeout: float, banner: bool,
                     concurrency: int = DEFAULT_CONCURRENCY, send: bytes | None = None) -> None:
        table = self.query_one("#probe-results", DataTable)
        async for result in probe(host, ports, timeout=timeout, banner=banner,
                                  concurrency=concurrency, send=send):
            self.results.append(result)
            self._add_row(table, result)
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
        if result.answer is not None:
            banner += "\nanswer: " + (escape_bytes(result.answer[:BANNER_CELL]) or "(nothing)")
        explanation = result.explanation
        if result.error:
            explanation = f"{escape_text(result.error)}: {explanation}"
        return (Text(escape_text(result.address or result.host), overflow="fold"),
                Text("-" if result.port is None else str(result.port), justify="right"),
                Text(outcome, style=style),
                Text("-" if result.port is None else f"{result.ms:.1f}", justify="right"),
                Text(banner, overflow="fold"),
                Text(explanation, overflow="fold"))

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
