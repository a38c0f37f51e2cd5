"""The send bar: escapes, line endings, history, invalid input, sending a file (Pilot)."""

from __future__ import annotations

from textual import on
from textual.app import App, ComposeResult

from tcpbench.widgets import SendBar


class BarApp(App):
    BINDINGS = [("escape", "app_escape")]

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[bytes, str]] = []
        self.errors: list[str] = []
        self.escapes = 0

    def action_app_escape(self) -> None:
        self.escapes += 1

    def compose(self) -> ComposeResult:
        yield SendBar(id="bar")

    def on_mount(self) -> None:
        self.query_one("#sendbar-input").focus()

    @on(SendBar.Submitted, "#bar")
    def _sent(self, event: SendBar.Submitted) -> None:
        self.sent.append((event.data, event.source))

    @on(SendBar.Invalid, "#bar")
    def _invalid(self, event: SendBar.Invalid) -> None:
        self.errors.append(event.error)


async def _type(pilot, text: str) -> None:
    bar = pilot.app.query_one(SendBar)
    bar.input.value = text
    bar.input.cursor_position = len(text)
    await pilot.press("enter")
    await pilot.pause()


async def test_escapes_and_line_endings():
    app = BarApp()
    async with app.run_test() as pilot:
        bar = app.query_one(SendBar)
        await _type(pilot, "GET /\\x41 \\t\\\\")
        assert app.sent[-1] == (b"GET /A \t\\\n", "line")
        assert bar.input.value == ""
        await pilot.press("ctrl+l")
        assert bar.line_ending == "crlf"
        await _type(pilot, "a\\e\\0")
        assert app.sent[-1][0] == b"a\x1b\x00\r\n"
        await pilot.press("ctrl+l")
        assert bar.line_ending == "none"
        assert "no EOL" in str(app.query_one("#sendbar-ending").render())
        await _type(pilot, "raw")
        assert app.sent[-1][0] == b"raw"
        await pilot.press("ctrl+l")
        assert bar.line_ending == "lf"
        await pilot.press("h", "i", "enter")
        assert app.sent[-1][0] == b"hi\n"


async def test_invalid_escape_sends_nothing():
    app = BarApp()
    async with app.run_test() as pilot:
        bar = app.query_one(SendBar)
        for bad, words in (("bad \\q", "unknown escape"), ("\\x4", "two hex digits"), ("end\\", "lone backslash")):
            await _type(pilot, bad)
            assert words in app.errors[-1]
            assert "\n" not in app.errors[-1]
            assert bar.input.value == bad  # kept, so it can be fixed
        assert app.sent == []


async def test_history_up_and_down():
    app = BarApp()
    async with app.run_test() as pilot:
        bar = app.query_one(SendBar)
        for line in ("one", "two", "three"):
            await _type(pilot, line)
        bar.input.value = "draft"
        await pilot.press("up")
        assert bar.input.value == "three"
        await pilot.press("up", "up", "up")
        assert bar.input.value == "one"
        await pilot.press("down")
        assert bar.input.value == "two"
        await pilot.press("down", "down")
        assert bar.input.value == "draft"
        await pilot.press("up", "enter")
        assert app.sent[-1][0] == b"three\n"
        assert bar.history == ["one", "two", "three"]


async def test_target_label_is_never_markup():
    app = BarApp()
    async with app.run_test() as pilot:
        bar = app.query_one(SendBar)
        bar.target_label = "#3 [bold]evil\x1b]0;x\x07"
        await pilot.pause()
        shown = str(app.query_one("#sendbar-target").render())
        assert "[bold]evil\\e]0;x\\x07" in shown


async def test_send_file_and_missing_file(tmp_path):
    path = tmp_path / "payload.bin"
    path.write_bytes(bytes(range(256)))
    app = BarApp()
    async with app.run_test() as pilot:
        bar = app.query_one(SendBar)
        await pilot.press("ctrl+o")
        assert bar.file_mode
        await _type(pilot, str(tmp_path / "missing"))
        assert "no such file" in app.errors[-1] and app.sent == []
        assert bar.file_mode
        await _type(pilot, str(tmp_path))
        assert "directory" in app.errors[-1]
        await _type(pilot, str(path))
        assert app.sent[-1] == (bytes(range(256)), str(path))
        assert not bar.file_mode
        bar.action_send_file()
        await pilot.press("escape")
        assert not bar.file_mode and app.escapes == 0
        await pilot.press("escape")  # outside the file prompt, Escape is the app's
        assert app.escapes == 1
        await _type(pilot, "line")
        assert app.sent[-1][0] == b"line\n"
