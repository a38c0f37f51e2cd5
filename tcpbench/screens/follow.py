"""Which connection the byte log shows: the newest open one, until the person picks one.

No Textual here: the main screen feeds it what the engine and the table hold and
what the person did, and asks which session to show. In a workshop, students
connect one after another and the projector must show the live one without
anyone touching a key; once someone picks a row themselves (a click, the arrow
keys, Enter), the choice stands until they ask to follow again (`w`).
"""

from __future__ import annotations

from typing import Callable, Container, Iterable


class Follower:
    """Follows the newest open connection until `choose()`; `resume()` follows again."""

    def __init__(self) -> None:
        self.following = True
        """True while no one has picked a connection (or after `resume()`)."""
        self.session: int | None = None
        """The session to show: the newest open one while following, else the chosen one."""

    def choose(self, session_id: int | None) -> None:
        """The person picked this row: stay on it."""
        self.following = False
        if session_id is not None:
            self.session = session_id

    def resume(self) -> None:
        """Follow the newest open connection again (with none open: the newest listed one)."""
        self.following = True
        self.session = None

    def update(self, live: Iterable[int], listed: Container[int],
               newest_listed: Callable[[], int | None]) -> int | None:
        """The session to show now.

        `live`: ids of open sessions that have a row; `listed`: every id with a row;
        `newest_listed()`: the highest id with a row (asked only when needed). While following: the newest open
        session; with none open, stay on the one shown unless its row is gone, then
        the newest listed one (a following view never shows an unlisted connection).
        """
        if self.following:
            newest = max(live, default=None)
            if newest is not None:
                self.session = newest
            elif self.session is None or self.session not in listed:
                self.session = newest_listed()
        return self.session
