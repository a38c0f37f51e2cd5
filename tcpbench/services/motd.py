"""motd: send a message on connect, then close gracefully (or keep the session open).

The close is graceful even when the peer sent data first: the engine sends FIN
and drains the peer's input before closing, so the client sees a clean EOF and
never a reset (the `ncat -c "echo hello world"` recipe, done right).
"""

from __future__ import annotations

from pathlib import Path

from tcpbench.services.base import Close, Effects, Option, OptionError, Send, Service

DEFAULT_MESSAGE = "hello world\n"


class MotdService(Service):
    name = "motd"
    summary = "send a message on connect, then close"
    options = (
        Option("message", str, None, "the message to send (\\n, \\r\\n and \\xNN escapes allowed)", "TEXT"),
        Option("message_file", str, None, "send this file's bytes instead", "FILE"),
        Option("keep_open", bool, False, "keep the session open after the message"),
    )

    def __init__(self, message: str | None = None, message_file: str | None = None,
                 keep_open: bool = False, *, payload: bytes | None = None) -> None:
        if payload is None:
            payload = load_message(message, message_file)
        self.payload = payload
        self.keep_open = keep_open
        self.close_on_peer_fin = True

    def session_opened(self, session, peer, local, now) -> Effects:
        effects: Effects = [Send(session, self.payload)] if self.payload else []
        if not self.keep_open:
            effects.append(Close(session))
        return effects

    def describe(self) -> str:
        return f"motd ({len(self.payload)} bytes{', keep open' if self.keep_open else ''})"


def load_message(message: str | None, message_file: str | None) -> bytes:
    """The bytes to send; errors are `OptionError` with one line."""
    from tcpbench.safetext import EscapeError, escape_text, unescape_bytes

    if message is not None and message_file is not None:
        raise OptionError("give --message or --message-file, not both")
    if message_file is not None:
        try:
            return Path(message_file).read_bytes()
        except OSError as exc:
            raise OptionError(f"cannot read {escape_text(message_file)}: {exc.strerror or exc}") from None
    if message is None:
        return DEFAULT_MESSAGE.encode()
    try:
        data = unescape_bytes(message)
    except EscapeError as exc:
        raise OptionError(f"--message: {exc}") from None
    if data and not data.endswith(b"\n"):
        data += b"\n"
    return data
