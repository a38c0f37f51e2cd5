"""Modal dialogs: new listener, connect, confirm.

Every failure (a bad value, port in use, permission denied, connection
refused) is shown inside the dialog as one line, and the dialog stays open so
the person can fix it. The new-listener form is generated from the service
registry, so services registered later get their options without UI changes.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Collapsible, Input, Label, Select, Static, TextArea

from tcpbench.engine.errors import ConnectError, ListenError
from tcpbench.screens.blink import apply_blink
from tcpbench.engine.registry import SERVICES, UnknownServiceError, build_service
from tcpbench.screens.limits import collect_limits, limits_fields
from tcpbench.engine.tls import client_tls, server_tls, service_alpn
from tcpbench.services.base import Option, OptionError, ServiceInfo

if TYPE_CHECKING:
    from tcpbench.engine.manager import SessionManager

LOOPBACK_NAMES = ("localhost", "::1", "ip6-localhost")
DANGER_ID = "danger-opt-in"
OPTIONS_MAX_ROWS = 20
"""Rows the service's options get at most before they scroll (fewer on a small terminal)."""
OPT_IN_OPTIONS = ("allow_exec",)
"""Service options that only confirm a danger; the dialog's opt-in tick sets them."""


def is_loopback(host: str) -> bool:
    host = host.strip().lower()
    return host in LOOPBACK_NAMES or host.startswith("127.")


def network_warning(host: str) -> str:
    """The warning for a listen address reachable from other machines ('' for loopback)."""
    host = host.strip()
    if not host or is_loopback(host):  # an empty field listens on 127.0.0.1 (see collect)
        return ""
    if host in ("0.0.0.0", "::"):
        return (f"Warning: {host} listens on every address: the port is open "
                "to the network, anyone who can reach this machine can connect.")
    return (f"Warning: {host} is not loopback: the port is open to the network "
            "(to everyone who can reach that address).")


def parse_port_text(text: str) -> int:
    """Errors: ValueError with a one-line message."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > 65535:
        raise ValueError(f"port {text!r} is not a number from 0 to 65535 (0 picks any free port)")
    return int(text)


def option_value(option: Option, widget: Any) -> Any:
    """The value of one generated option field, or None for 'use the default'.

    Errors: ValueError with a one-line message naming the option.
    """
    if option.type is bool:
        return bool(widget.value)
    if isinstance(widget, Select):
        return None if widget.value is Select.BLANK else widget.value
    if isinstance(widget, TextArea):
        # One value per line: a value may hold commas (an HTTP header "no-cache, no-store").
        values = [line.strip() for line in widget.text.splitlines() if line.strip()]
        return values or None
    text = widget.value.strip()
    if not text:
        return None
    label = option.flag
    if option.type is list:
        return [text]
    if option.type is tuple:
        try:
            return tuple(shlex.split(text))
        except ValueError as exc:
            raise ValueError(f"{label}: {exc}") from None
    if option.type in (int, float):
        try:
            return option.type(text)
        except ValueError:
            kind = "a whole number" if option.type is int else "a number"
            raise ValueError(f"{label}: {text!r} is not {kind}") from None
    return text


def _initial_text(option: Option) -> str:
    default = option.default
    if default is None:
        return ""
    if option.type is list:
        return "\n".join(str(item) for item in default)
    if option.type is tuple:
        return shlex.join(str(item) for item in default)
    return str(default)


class NewListenerDialog(ModalScreen["Listener | None"]):
    """Pick a service, an address and the service's options; start it; dismiss with the Listener."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Close without starting")]

    def __init__(self, manager: SessionManager, *, service: str = "echo", host: str = "127.0.0.1",
                 port: int = 0) -> None:
        super().__init__()
        self.manager = manager
        self.service_name = service if service in SERVICES else sorted(SERVICES)[0]
        self.initial_host = host
        self.initial_port = port

    def compose(self) -> ComposeResult:
        names = sorted(SERVICES)
        with Vertical(id="dialog", classes="dialog"):
            yield Static("New listener", classes="dialog-title", markup=False)
            with Horizontal(classes="row"):
                yield Label("service", classes="field-label")
                yield Select([(name, name) for name in names], value=self.service_name,
                             allow_blank=False, id="service", compact=True)
            yield Static("", id="summary", classes="option-help", markup=False)
            with Horizontal(classes="row"):
                yield Label("host", classes="field-label")
                yield Input(self.initial_host, id="host", placeholder="127.0.0.1", compact=True)
                yield Label(" port ", classes="short-label")
                yield Input(str(self.initial_port), id="port", placeholder="0 = any", classes="port",
                            compact=True)
            with Horizontal(classes="row"):
                yield Label("", classes="field-label")
                yield Checkbox("TLS (self-signed certificate made now)", id="tls", compact=True)
            yield Static("", id="warning", classes="warning", markup=False)
            yield limits_fields()
            yield VerticalScroll(id="options")
            yield Static("", id="error", classes="error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Start", variant="primary", id="start", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    async def on_mount(self) -> None:
        await self._show_options(self.service_name)
        self._update_warning(self.initial_host)

    def on_resize(self) -> None:
        self.call_after_refresh(self._fit_options)

    @on(Collapsible.Expanded)
    @on(Collapsible.Collapsed)
    def _limits_toggled(self) -> None:
        self.call_after_refresh(self._fit_options)

    def _fit_options(self) -> None:
        # The service's options scroll in the room the rest leaves: on a small terminal
        # (a projector at 80x24) the error line and the buttons must stay in view, and
        # an auto-height dialog cannot shrink a child by itself.
        if not self.is_attached or not self.query("#options"):
            return  # dismissed before this ran
        dialog = self.query_one("#dialog")
        box = self.query_one("#options")
        used = dialog.styles.border.spacing.height + dialog.styles.padding.height
        for child in dialog.children:
            if child is not box and child.display:
                used += child.outer_size.height + child.styles.margin.height
        room = int(self.size.height * 0.9) - used
        fitted = max(3, min(OPTIONS_MAX_ROWS, room))
        if box.styles.max_height is None or box.styles.max_height.value != fitted:
            box.styles.max_height = fitted

    @property
    def info(self) -> ServiceInfo:
        return SERVICES[self.service_name]

    async def _show_options(self, name: str) -> None:
        self.service_name = name
        info = SERVICES[name]
        self.query_one("#summary", Static).update(info.summary)
        box = self.query_one("#options", VerticalScroll)
        await box.remove_children()
        widgets: list[Any] = []
        if info.dangerous:
            widgets.append(Static(f"{name} is dangerous: it gives whoever connects a way to run "
                                  "programs on this machine.", classes="warning", markup=False))
            widgets.append(Checkbox("I understand and want to run it", id=DANGER_ID, compact=True))
        for option in info.options:
            if info.dangerous and option.name in OPT_IN_OPTIONS:
                continue  # the opt-in tick above stands for it; one confirmation, not two
            widgets.extend(self._option_widgets(option))
        if not info.options:
            widgets.append(Static(f"{name} has no options.", classes="dim", markup=False))
        await box.mount_all(widgets)
        apply_blink(self)
        self.query_one("#error", Static).update("")

    def _option_widgets(self, option: Option) -> list[Any]:
        widget_id = f"opt-{option.name}"
        help_text = option.help or option.name
        if option.type is list:
            help_text += "; one per line"
        if option.type is bool:
            field: Any = Checkbox(option.flag, bool(option.default), id=widget_id, compact=True)
        elif option.choices:
            field = Select([(choice, choice) for choice in option.choices],
                           value=option.default if option.default in option.choices else Select.BLANK,
                           id=widget_id, compact=True)
        elif option.type is list:
            field = TextArea(_initial_text(option), id=widget_id, compact=True, soft_wrap=False,
                             show_line_numbers=False, tab_behavior="focus", classes="list-option",
                             placeholder=f"one {option.metavar or 'value'} per line")
        else:
            placeholder = {tuple: "program and arguments, shell-quoted"}
            field = Input(_initial_text(option), id=widget_id, compact=True,
                          placeholder=placeholder.get(option.type, option.metavar or option.type.__name__))
        label = "" if option.type is bool else option.flag
        row = Horizontal(Label(label, classes="field-label", markup=False), field, classes="row")
        return [row, Static(help_text, classes="option-help", markup=False)]

    def _update_warning(self, host: str) -> None:
        warning = self.query_one("#warning", Static)
        text = network_warning(host)
        warning.update(text)
        warning.display = bool(text)
        self.call_after_refresh(self._fit_options)

    @on(Select.Changed, "#service")
    async def _service_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.service_name:
            await self._show_options(event.value)

    @on(Input.Changed, "#host")
    def _host_changed(self, event: Input.Changed) -> None:
        self._update_warning(event.value)

    @on(Input.Submitted)
    async def _submitted(self) -> None:
        await self.action_start()

    @on(Button.Pressed, "#start")
    async def _start_pressed(self) -> None:
        await self.action_start()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def collect(self) -> tuple[dict[str, Any], str, int]:
        """The form's values. Errors: ValueError with one line for the person."""
        info = self.info
        if info.dangerous and not self.query_one(f"#{DANGER_ID}", Checkbox).value:
            raise ValueError(f"{info.name} needs the explicit opt-in: tick 'I understand' first")
        options = {}
        for option in info.options:
            if info.dangerous and option.name in OPT_IN_OPTIONS:
                options[option.name] = True
                continue
            options[option.name] = option_value(option, self.query_one(f"#opt-{option.name}"))
        # An emptied field means what its placeholder shows: loopback. The engine would
        # read "" as every address, opening the port to the network unasked.
        host = self.query_one("#host", Input).value.strip() or "127.0.0.1"
        port = parse_port_text(self.query_one("#port", Input).value)
        return options, host, port

    def show_error(self, text: str) -> None:
        self.query_one("#error", Static).update(text)
        self.call_after_refresh(self._fit_options)

    async def action_start(self) -> None:
        try:
            options, host, port = self.collect()
            idle_timeout, admission = collect_limits(self)
            service = build_service(self.service_name, options)
            tls = (server_tls(host, alpn=service_alpn(service.name))
                   if self.query_one("#tls", Checkbox).value else None)
            listener = await self.manager.start_listener(service, host, port, idle_timeout=idle_timeout,
                                                         admission=admission, tls=tls)
        except (ValueError, OptionError, ListenError, UnknownServiceError) as exc:
            self.show_error(str(exc))
            return
        self.dismiss(listener)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConnectDialog(ModalScreen["Session | None"]):
    """HOST:PORT and a timeout; connects in a worker so Escape still works while waiting."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel", tooltip="Give up and close")]

    def __init__(self, manager: SessionManager, *, address: str = "127.0.0.1:", timeout: float = 5.0) -> None:
        super().__init__()
        self.manager = manager
        self.initial_address = address
        self.initial_timeout = timeout
        self.connected_address: str | None = None
        """The address text that connected (the workbench offers it next time)."""

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog"):
            yield Static("Connect (open a client session)", classes="dialog-title", markup=False)
            with Horizontal(classes="row"):
                yield Label("address", classes="field-label")
                # Not selected on focus: the prefilled "127.0.0.1:" is there to type a port after.
                yield Input(self.initial_address, id="address", placeholder="HOST:PORT or [::1]:PORT",
                            compact=True, select_on_focus=False)
            with Horizontal(classes="row"):
                yield Label("timeout (s)", classes="field-label")
                yield Input(f"{self.initial_timeout:g}", id="timeout", classes="port", compact=True)
            with Horizontal(classes="row"):
                yield Label("", classes="field-label")
                yield Checkbox("TLS", id="tls", compact=True)
                yield Checkbox("insecure (no verification)", id="insecure", compact=True)
            with Horizontal(classes="row"):
                yield Label("TLS name", classes="field-label")
                yield Input("", id="sni", placeholder="SNI and name to verify (default: the host)",
                            compact=True)
            yield Static("", id="error", classes="error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Connect", variant="primary", id="connect", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        apply_blink(self)

    def collect(self) -> tuple[str, int, float]:
        """Errors: ValueError with one line."""
        from tcpbench.ui_spec import split_host_port
        from tcpbench.usage import UsageError

        try:
            host, port = split_host_port(self.query_one("#address", Input).value, "address")
        except UsageError as exc:
            raise ValueError(str(exc)) from None
        if port == 0:
            raise ValueError("address: port 0 cannot be connected to (1-65535)")
        text = self.query_one("#timeout", Input).value.strip()
        try:
            timeout = float(text)
        except ValueError:
            raise ValueError(f"timeout {text!r} is not a number of seconds") from None
        if not 0 < timeout <= 600:
            raise ValueError("timeout must be more than 0 and at most 600 seconds")
        return host, port, timeout

    @on(Input.Submitted)
    @on(Button.Pressed, "#connect")
    def action_connect(self) -> None:
        try:
            host, port, timeout = self.collect()
        except ValueError as exc:
            self.query_one("#error", Static).update(str(exc))
            return
        self.query_one("#error", Static).update(f"connecting to {host}:{port} ...")
        self.query_one("#connect", Button).disabled = True
        tls = None
        if self.query_one("#tls", Checkbox).value:
            sni = self.query_one("#sni", Input).value.strip() or None
            tls = client_tls(host, sni=sni, insecure=self.query_one("#insecure", Checkbox).value,
                             handshake_timeout=timeout)
        self.run_worker(self._connect(host, port, timeout, tls), exclusive=True, group="connect",
                        name=f"connect to {host}:{port}", exit_on_error=False)

    async def _connect(self, host: str, port: int, timeout: float, tls: Any = None) -> None:
        try:
            session = await self.manager.open_session(host, port, timeout=timeout, tls=tls)
        except ConnectError as exc:
            self.query_one("#error", Static).update(str(exc))
            self.query_one("#connect", Button).disabled = False
            return
        self.connected_address = self.query_one("#address", Input).value.strip()
        self.dismiss(session)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.workers.cancel_group(self, "connect")
        self.dismiss(None)


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question; dismisses with True for yes."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm.yes", tooltip="Do it"),
        Binding("n,escape", "answer(False)", "No", id="confirm.no", tooltip="Do not do it"),
    ]

    def __init__(self, question: str, *, yes: str = "Yes") -> None:
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="dialog confirm"):
            yield Static(self.question, markup=False, id="question")
            with Horizontal(classes="buttons"):
                yield Button(self.yes, variant="error", id="yes", compact=True)
                yield Button("No", id="no", compact=True)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)
