"""chat: a real chat room, what `ncat --chat` and the `tail -f messages` pipelines try to be.

Every client joins as `user1`, `user2`, ... in join order and may rename itself
with `/nick NAME`. A line from a client reaches everyone else as `<nick> text`
(no echo to the sender, unlike the seed's example 3). The operator takes part
through `operator_input` and sees every line as a `chat` note.

Safety: chat text is for people, so UTF-8 letters pass, but control characters,
format characters (bidi overrides, zero-width) and invalid bytes are escaped
(`\\e`, `\\x9b`, `\\u202e`) before anything is broadcast: a peer cannot drive the
other clients' terminals. A backslash stays a backslash, because unambiguity
is not worth doubling every backslash people type; nothing is interpreted.

Slow readers: the room sets `backlog_limit`, so the engine never throttles the
room for one client. A client whose unsent backlog passes the limit is
disconnected with an announcement; clients that keep up lose nothing.

Pure: no I/O, no clock. Per-session state is keyed by session id.
"""

from __future__ import annotations

import re

from tcpbench.safetext import BYTE_TO_TEXT
from tcpbench.services.base import Abort, Close, Effects, Note, Option, OptionError, Send, Service

NICK_MAX = 16
NICK_RE = re.compile(r"[A-Za-z0-9_\-]{1,%d}\Z" % NICK_MAX)
DEFAULT_MAX_LINE = 1024
DEFAULT_BACKLOG = 256 * 1024
HELP = (
    "commands: /nick NAME (rename: 1-16 of A-Z a-z 0-9 _ -), /who (list the room), "
    "/me ACTION, /quit (leave), /help (this); start a line with // to send a literal /"
)


def clean_text(data: bytes) -> str:
    """Peer bytes as text safe to show: UTF-8 kept, control/format chars and bad bytes escaped."""
    text = data.decode("utf-8", "surrogateescape")
    if text.isascii() and text.isprintable():
        return text
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # an invalid byte, kept by surrogateescape
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x80:
            out.append(ch if ch == "\\" else BYTE_TO_TEXT[code])
        elif not ch.isprintable():  # C0/C1 controls, bidi/format, separators, unassigned
            out.append(f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF
                       else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


class _Member:
    __slots__ = ("nick", "buffer", "discarding")

    def __init__(self, nick: str) -> None:
        self.nick = nick
        self.buffer = b""
        """The start of a line whose newline has not arrived yet."""
        self.discarding = False
        """The rest of an over-long line is being dropped until its newline."""


class _Outbox:
    """What one hook call sends, gathered so each receiver gets one `Send`.

    A burst of N lines to a room of M members would be N*M sends (and N*M
    syscalls) line by line; gathered it is M sends, and every member who missed
    none of it shares one joined bytes object. Each part is (payload, exclude,
    only): a broadcast to the room but `exclude`, or a reply to `only`.
    """

    __slots__ = ("parts", "tailored")

    def __init__(self) -> None:
        self.parts: list[tuple[bytes, int | None, int | None]] = []
        self.tailored: set[int] = set()
        """Sessions whose bytes differ from the room's: excluded from a part or sent a reply."""

    def broadcast(self, payload: bytes, exclude: int | None) -> None:
        self.parts.append((payload, exclude, None))
        if exclude is not None:
            self.tailored.add(exclude)

    def reply(self, session: int, payload: bytes) -> None:
        self.parts.append((payload, None, session))
        self.tailored.add(session)

    def flush(self, members: dict[int, _Member], effects: Effects) -> None:
        parts = self.parts
        if not parts:
            return
        tailored = self.tailored
        common: bytes | None = None
        for session in members:
            if session in tailored:
                continue
            if common is None:
                common = b"".join([p for p, _, only in parts if only is None])
            if common:
                effects.append(Send(session, common))
        for session in tailored:
            data = b"".join([p for p, exclude, only in parts
                             if (only is None and exclude != session and session in members) or only == session])
            if data:
                effects.append(Send(session, data))
        parts.clear()
        tailored.clear()


class ChatService(Service):
    """One room per listener; every session is a member until it leaves."""

    name = "chat"
    summary = "a chat room: each line goes to every other client as <nick> text"
    options = (
        Option("nick", str, "operator", "the operator's nickname in the room", "NAME"),
        Option("max_line", int, DEFAULT_MAX_LINE, "longest line in bytes; longer lines are cut", "N"),
        Option("backlog", int, DEFAULT_BACKLOG,
               "disconnect a client whose unsent bytes exceed N (a slow reader)", "N"),
    )

    def __init__(self, nick: str = "operator", max_line: int = DEFAULT_MAX_LINE,
                 backlog: int = DEFAULT_BACKLOG) -> None:
        if not NICK_RE.match(nick or ""):
            raise OptionError(f"chat: --nick {clean_text(nick.encode('utf-8', 'surrogateescape'))!r}"
                              f" must be 1-{NICK_MAX} of A-Z a-z 0-9 _ -")
        if not 16 <= max_line <= 1024 * 1024:
            raise OptionError("chat: --max-line must be between 16 and 1048576")
        if backlog < 1024:
            raise OptionError("chat: --backlog must be at least 1024 bytes")
        self.operator_nick = nick
        self.max_line = max_line
        self.backlog_limit = backlog
        self.close_on_peer_fin = True
        self.members: dict[int, _Member] = {}
        self._joined = 0
        self._out = _Outbox()
        """Filled by the helpers below during one hook call, emptied by `_done`."""

    def _done(self, effects: Effects) -> Effects:
        """Turn what the hook gathered into sends, after the effects already listed."""
        self._out.flush(self.members, effects)
        return effects

    def _then(self, effects: Effects, effect: Close | Abort) -> None:
        """Append a close or abort after the bytes gathered so far (they must go first)."""
        self._out.flush(self.members, effects)
        effects.append(effect)

    # --- hooks -----------------------------------------------------------------

    def session_opened(self, session, peer, local, now) -> Effects:
        nick = self._fresh_nick()
        others = [m.nick for m in self.members.values()]
        self.members[session] = _Member(nick)
        who = ", ".join([*others, f"{self.operator_nick} (the operator)"])
        self._out.reply(session, f"* welcome, you are {nick}; also in the room: {who}. "
                                 "/help lists commands\n".encode())
        effects: Effects = []
        self._announce(effects, f"{nick} joined", exclude=session, event="join", nick=nick)
        return self._done(effects)

    def data_received(self, session, data, now) -> Effects:
        member = self.members.get(session)
        if member is None:  # left the room (quit or too slow) but bytes still arrive
            return []
        effects: Effects = []
        if member.buffer:
            data = member.buffer + data
            member.buffer = b""
        lines = data.split(b"\n")
        rest = lines.pop()
        limit = self.max_line
        for line in lines:
            if member.discarding:
                member.discarding = False
                continue
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > limit:
                self._line(effects, session, member, line[:limit], cut=True)
            else:
                self._line(effects, session, member, line, cut=False)
            if session not in self.members:  # /quit
                return self._done(effects)
        if member.discarding:
            pass  # still inside an over-long line: drop what came
        elif len(rest) > limit + 1:
            # +1: the line may still end in "\r\n"; beyond that it is too long for sure.
            self._line(effects, session, member, rest[:limit], cut=True)
            member.discarding = True
        else:
            member.buffer = rest
        return self._done(effects)

    def peer_half_closed(self, session, now) -> Effects:
        member = self.members.get(session)
        effects: Effects = []
        if member is not None and member.buffer and not member.discarding:
            # The last line had no newline: it still counts.
            line = member.buffer
            member.buffer = b""
            if line.endswith(b"\r"):
                line = line[:-1]
            self._line(effects, session, member, line, cut=False)
        self._leave(effects, session, "left")
        self._then(effects, Close(session))
        return self._done(effects)

    def session_closed(self, session, now) -> Effects:
        effects: Effects = []
        self._leave(effects, session, "left")
        return self._done(effects)

    def backlog_exceeded(self, session, now) -> Effects:
        effects: Effects = [Abort(session, "a slow reader: its unsent chat backlog exceeded the limit")]
        self._leave(effects, session, f"was disconnected: did not read fast enough "
                                      f"(more than {self.backlog_limit} bytes waiting)")
        return self._done(effects)

    def operator_input(self, data, now) -> Effects:
        effects: Effects = []
        for raw in data.split(b"\n"):
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if not raw:
                continue
            cut = len(raw) > self.max_line
            text = clean_text(raw[:self.max_line]) + (self._cut_mark() if cut else "")
            self._say(effects, None, self.operator_nick, text)
        return self._done(effects)

    def describe(self) -> str:
        return f"chat ({len(self.members)} in the room, operator {self.operator_nick})"

    # --- the room ------------------------------------------------------------------

    def _fresh_nick(self) -> str:
        while True:
            self._joined += 1
            nick = f"user{self._joined}"
            if not self._taken(nick):
                return nick

    def _taken(self, nick: str, by: int | None = None) -> bool:
        folded = nick.casefold()
        if folded == self.operator_nick.casefold():
            return True
        return any(m.nick.casefold() == folded for s, m in self.members.items() if s != by)

    def _cut_mark(self) -> str:
        return f" [cut: longer than {self.max_line} bytes]"

    def _line(self, effects: Effects, session: int, member: _Member, line: bytes, cut: bool) -> None:
        if line[:1] == b"/":
            if line[1:2] != b"/":
                if not cut:
                    self._command(effects, session, member, line)
                    return
            else:
                line = line[1:]
        text = clean_text(line) + (self._cut_mark() if cut else "")
        self._say(effects, session, member.nick, text)

    def _say(self, effects: Effects, sender: int | None, nick: str, text: str) -> None:
        self._out.broadcast(f"<{nick}> {text}\n".encode(), sender)
        effects.append(Note(f"<{nick}> {text}", sender, "chat", (("nick", nick), ("text", text))))

    def _announce(self, effects: Effects, text: str, *, exclude: int | None = None, event: str,
                  nick: str) -> None:
        self._out.broadcast(f"* {text}\n".encode(), exclude)
        effects.append(Note(f"* {text}", exclude, "chat", (("event", event), ("nick", nick))))

    def _reply(self, session: int, text: str) -> None:
        self._out.reply(session, f"* {text}\n".encode())

    def _leave(self, effects: Effects, session: int, how: str) -> None:
        member = self.members.pop(session, None)
        if member is not None:
            self._announce(effects, f"{member.nick} {how}", exclude=session, event="leave",
                           nick=member.nick)

    def _command(self, effects: Effects, session: int, member: _Member, line: bytes) -> None:
        name, _, rest = line[1:].partition(b" ")
        command = name.lower()
        arg = rest.strip()
        if command == b"nick":
            self._nick(effects, session, member, arg)
        elif command == b"who":
            names = [f"{m.nick}{' (you)' if s == session else ''}" for s, m in self.members.items()]
            names.append(f"{self.operator_nick} (operator)")
            self._reply(session, f"{len(names)} in the room: {', '.join(names)}")
        elif command == b"help":
            self._reply(session, HELP)
        elif command == b"me":
            self._announce(effects, f"{member.nick} {clean_text(arg)}", exclude=session, event="me",
                           nick=member.nick)
        elif command == b"quit":
            self._reply(session, "bye")
            self._leave(effects, session, "left")
            self._then(effects, Close(session))
        else:
            self._reply(session, f"unknown command /{clean_text(command[:32])}; /help lists commands")

    def _nick(self, effects: Effects, session: int, member: _Member, arg: bytes) -> None:
        shown = clean_text(arg[:64])
        try:
            nick = arg.decode("ascii")
        except UnicodeDecodeError:
            nick = ""
        if not NICK_RE.match(nick):
            self._reply(session, f"cannot rename to {shown!r}: a nickname is 1-{NICK_MAX} "
                                 "of A-Z a-z 0-9 _ -")
        elif nick == member.nick:
            self._reply(session, f"you are already {nick}")
        elif self._taken(nick, by=session):
            self._reply(session, f"cannot rename to {nick}: that nickname is taken")
        else:
            old, member.nick = member.nick, nick
            self._reply(session, f"you are now {nick}")
            self._announce(effects, f"{old} is now {nick}", exclude=session, event="nick", nick=nick)


__all__ = ["ChatService", "clean_text"]
