"""The send bar: type a line (with escapes), pick a line ending, press Enter.

It only turns what the operator typed into bytes and posts `SendBar.Submitted`;
the screen decides where the bytes go (a session, or a listener's service) and
calls the engine. Escapes: `\\n \\r \\t \\e \\0 \\\\ \\xNN` (see
`tcpbench.safetext.unescape_bytes`); a bad one posts `SendBar.Invalid` with one
line saying what is wrong, and nothing is sent.

`action_send_file` switches the same input to a path prompt: Enter reads that
file (at most `MAX_FILE_BYTES`) and posts its bytes, as they are, with no line
ending added. Escape leaves the prompt.
"""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Input, Label

from tcpbench.safetext import EscapeError, escape_text, unescape_bytes

LINE_ENDINGS = {"lf": b"\n", "crlf": b"\r\n", "none": b""}
ENDING_LABELS = {"lf": "LF", "crlf": "CRLF", "none": "no EOL"}
_ENDING_ORDER = ("lf", "crlf", "none")
MAX_FILE_BYTES = 64 * 1024 * 1024
HISTORY_SIZE = 200
LINE_PLACEHOLDER = "type and press Enter; escapes: \\n \\r \\t \\e \\0 \\\\ \\xNN"
FILE_PLACEHOLDER = "path of a file to send, Enter sends it, Esc cancels"


class LineInput(Input):
    """An Input that also claims "/" for the footer.

    Textual 8.2.8 cannot map the key name "slash" back to "/", so a plain Input
    does not hide the screen's "/ Search" binding from the footer while it has
    focus, although typing "/" there types a slash.
    """

    def check_consume_key(self, key: str, character: str | None) -> bool:
        return key == "slash" or super().check_consume_key(key, character)


class SendBar(Widget):
    """An input line, its line ending and the name of where it goes."""

    BINDINGS = [
        Binding("up", "history(-1)", "Previous", id="sendbar.history_previous", show=False,
                tooltip="Recall the previous line sent"),
        Binding("down", "history(1)", "Next", id="sendbar.history_next", show=False,
                tooltip="Recall the next line sent"),
        Binding("ctrl+l", "cycle_line_ending", "Line ending", id="sendbar.line_ending",
                tooltip="Cycle the line ending added to each line: LF, CRLF, none"),
        Binding("ctrl+o", "send_file", "Send file", id="sendbar.send_file",
                tooltip="Send the bytes of a file"),
        Binding("escape", "cancel_file", "Cancel", id="sendbar.cancel_file", show=False,
                tooltip="Leave the file prompt"),
    ]

    DEFAULT_CSS = """
    SendBar {
        height: 1;
        layout: horizontal;
        & > #sendbar-target { width: auto; max-width: 40; padding: 0 1; color: $text-primary; }
        & > #sendbar-input { width: 1fr; border: none; height: 1; padding: 0 1; }
        & > #sendbar-ending { width: auto; padding: 0 1; color: $text-accent; }
        &.-file > #sendbar-input { background: $warning 20%; }
    }
    """

    line_ending: reactive[str] = reactive("lf")
    """`lf`, `crlf` or `none`: what is added after each typed line."""
    target_label: reactive[str] = reactive("")
    """Where Enter sends (e.g. `#3 127.0.0.1:5000`); the screen sets it."""

    class Submitted(Message):
        """The operator sent a line (escapes resolved, line ending added) or a file."""

        def __init__(self, send_bar: SendBar, data: bytes, source: str = "line") -> None:
            super().__init__()
            self.send_bar = send_bar
            self.data = data
            self.source = source
            """`line`, or the path of the file sent."""

        @property
        def control(self) -> SendBar:
            return self.send_bar

    class Invalid(Message):
        """What the operator typed cannot be sent; `error` is one line for a person."""

        def __init__(self, send_bar: SendBar, error: str) -> None:
            super().__init__()
            self.send_bar = send_bar
            self.error = error

        @property
        def control(self) -> SendBar:
            return self.send_bar

    def __init__(self, *, name: str | None = None, id: str | None = None,
                 classes: str | None = None, disabled: bool = False) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.history: list[str] = []
        self._history_index = 0
        self._draft = ""
        self.file_mode = False

    def compose(self) -> ComposeResult:
        yield Label(id="sendbar-target")
        yield LineInput(placeholder=LINE_PLACEHOLDER, id="sendbar-input")
        yield Label(ENDING_LABELS[self.line_ending], id="sendbar-ending")

    @property
    def input(self) -> Input:
        return self.query_one("#sendbar-input", Input)

    # --- watchers --------------------------------------------------------------------

    def validate_line_ending(self, value: str) -> str:
        return value if value in LINE_ENDINGS else "lf"

    def watch_line_ending(self, value: str) -> None:
        if self.is_mounted:
            self.query_one("#sendbar-ending", Label).update(Content(ENDING_LABELS[value]))

    def watch_target_label(self, value: str) -> None:
        if self.is_mounted:
            # The label may hold a peer's host name: no markup, no control bytes.
            self.query_one("#sendbar-target", Label).update(Content(escape_text(value)))

    def on_mount(self) -> None:
        self.watch_target_label(self.target_label)

    # --- input ----------------------------------------------------------------------------

    @on(Input.Submitted, "#sendbar-input")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value
        if self.file_mode:
            self._send_file(text)
            return
        try:
            data = unescape_bytes(text)
        except EscapeError as exc:
            self.post_message(self.Invalid(self, str(exc)))
            return
        self._remember(text)
        self.input.value = ""
        self.post_message(self.Submitted(self, data + LINE_ENDINGS[self.line_ending]))

    def _remember(self, text: str) -> None:
        if text and (not self.history or self.history[-1] != text):
            self.history.append(text)
            del self.history[:-HISTORY_SIZE]
        self._history_index = len(self.history)
        self._draft = ""

    def _send_file(self, text: str) -> None:
        path = Path(text.strip()).expanduser()
        shown = escape_text(str(path))
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise ValueError(f"{size:,} bytes is more than the {MAX_FILE_BYTES:,} a send may hold")
            data = path.read_bytes()
        except FileNotFoundError:
            self.post_message(self.Invalid(self, f"cannot send {shown}: no such file"))
            return
        except IsADirectoryError:
            self.post_message(self.Invalid(self, f"cannot send {shown}: it is a directory"))
            return
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.post_message(self.Invalid(self, f"cannot send {shown}: {escape_text(reason)}"))
            return
        self._leave_file_mode()
        self.post_message(self.Submitted(self, data, source=str(path)))

    # --- actions -------------------------------------------------------------------------

    def action_history(self, step: int) -> None:
        """Recall earlier lines (up) or later ones (down); past the newest comes the draft."""
        if self.file_mode or not self.history:
            return
        if self._history_index == len(self.history):
            self._draft = self.input.value
        index = min(max(self._history_index + step, 0), len(self.history))
        self._history_index = index
        value = self._draft if index == len(self.history) else self.history[index]
        self.input.value = value
        self.input.cursor_position = len(value)

    def action_cycle_line_ending(self) -> None:
        """LF -> CRLF -> none -> LF."""
        position = _ENDING_ORDER.index(self.line_ending)
        self.line_ending = _ENDING_ORDER[(position + 1) % len(_ENDING_ORDER)]

    def action_send_file(self) -> None:
        """Turn the input into a path prompt; Enter sends the file's bytes."""
        self.file_mode = True
        self.add_class("-file")
        self._draft = self.input.value
        self.input.value = ""
        self.input.placeholder = FILE_PLACEHOLDER
        self.input.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Escape belongs to the file prompt only; otherwise let it reach the screen.
        if action == "cancel_file":
            return self.file_mode
        return True

    def action_cancel_file(self) -> None:
        if self.file_mode:
            self._leave_file_mode()
            self.input.value = self._draft

    def _leave_file_mode(self) -> None:
        self.file_mode = False
        self.remove_class("-file")
        self.input.value = ""
        self.input.placeholder = LINE_PLACEHOLDER
