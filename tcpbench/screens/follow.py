"""Which connection the byte log shows: the newest one, until the person picks one.

No Textual here: the main screen feeds it what the engine and the table hold and
what the person did, and asks which session to show. In a workshop, students
connect one after another and the projector must show the newest without anyone
touching a key, even while an older client stays open: a student's MOTD exchange
(connect, banner, FIN: a few ms) or the RST the teacher just sent is the lesson.
An ended connection stays shown for `END_HOLD` seconds, then the view goes back
to the newest open one. Once someone picks a row themselves (a click, the arrow
keys, Enter), the choice stands until they ask to follow again (`w`).
"""

from __future__ import annotations

from typing import Callable, Container

END_HOLD = 8.0
"""Seconds an ended newest connection stays shown while an older one is open: long
enough to read a banner and see the FIN or RST, short enough to come back by itself."""


class Follower:
    """Follows the newest connection until `choose()`; `resume()` follows again."""

    def __init__(self, hold: float = END_HOLD) -> None:
        self.hold = hold
        """Seconds an ended newest connection is held before the newest open one."""
        self.following = True
        """True while no one has picked a connection (or after `resume()`)."""
        self.session: int | None = None
        """The session to show: the newest one while following, else the chosen one."""

    def choose(self, session_id: int | None) -> None:
        """The person picked this row: stay on it."""
        self.following = False
        if session_id is not None:
            self.session = session_id

    def resume(self) -> None:
        """Follow the newest connection again (with none listed yet: nothing)."""
        self.following = True
        self.session = None

    def update(self, newest: int | None, newest_ended_at: float | None, now: float,
               newest_open: Callable[[], int | None], listed: Container[int],
               newest_listed: Callable[[], int | None]) -> int | None:
        """The session to show now.

        `newest`: the newest connection when it has a row (else None); `newest_ended_at`:
        when it ended (None while open), on the clock of `now`; `newest_open()`: the newest
        open connection with a row; `listed`: every id with a row; `newest_listed()`: the
        highest id with a row. The callables are asked only when needed. While following:
        the newest connection, unless it ended more than `hold` s ago and an older one is
        open; with nothing to show, stay on the one shown unless its row is gone, then the
        newest listed one (a following view never shows an unlisted connection).
        """
        if not self.following:
            return self.session
        candidate = newest
        if candidate is None or (newest_ended_at is not None
                                 and now - newest_ended_at > self.hold):
            candidate = newest_open() or candidate
        if candidate is not None:
            self.session = candidate
        elif self.session is None or self.session not in listed:
            self.session = newest_listed()
        return self.session
