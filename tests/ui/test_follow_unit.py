"""The follow rule on its own: plain calls with an injected clock, no app."""

from tcpbench.screens.follow import END_HOLD, Follower


def update(follower: Follower, newest, ended_at=None, now=100.0, open_=None, listed=()):
    listed = set(listed) | ({newest} if newest is not None else set())
    return follower.update(newest, ended_at, now, lambda: open_, listed,
                           lambda: max(listed, default=None))


def test_follows_the_newest_then_stays_on_a_pick():
    follower = Follower()
    assert update(follower, None) is None
    assert update(follower, 1, open_=1) == 1
    assert update(follower, 1, ended_at=99.0) == 1  # ended, nothing else open: stays shown
    assert update(follower, 2, open_=2, listed={1}) == 2
    follower.choose(1)
    assert update(follower, 3, open_=3, listed={1, 2}) == 1
    follower.resume()
    assert update(follower, 3, open_=3, listed={1, 2}) == 3


def test_a_short_connection_is_shown_while_an_older_one_stays_open():
    # The lesson: the teacher's echo client (1) is open; a student's MOTD exchange (2)
    # lasts milliseconds. It is shown as it ends, held, then the view goes back to 1.
    follower = Follower()
    assert update(follower, 1, open_=1) == 1
    assert update(follower, 2, ended_at=100.0, now=100.1, open_=1, listed={1}) == 2
    assert update(follower, 2, ended_at=100.0, now=100.0 + END_HOLD, open_=1, listed={1}) == 2
    assert update(follower, 2, ended_at=100.0, now=100.1 + END_HOLD, open_=1, listed={1}) == 1
    # Nothing open after the hold: the ended one stays until the next arrives.
    assert update(follower, 2, ended_at=100.0, now=200.0, open_=None, listed={1}) == 2


def test_the_hold_is_injected_and_a_pick_is_never_undone_by_it():
    follower = Follower(hold=0.5)
    assert update(follower, 4, ended_at=10.0, now=10.6, open_=3, listed={3}) == 3
    follower.choose(4)
    assert update(follower, 4, ended_at=10.0, now=99.0, open_=3, listed={3}) == 4


def test_a_following_view_never_shows_an_unlisted_connection():
    follower = Follower()
    follower.update(5, None, 0.0, lambda: 5, {5}, lambda: 5)
    # 5's row dropped, the newest has no row yet, nothing open: the newest row.
    assert follower.update(None, None, 0.0, lambda: None, {6, 7}, lambda: 7) == 7
    follower.choose(6)
    assert follower.update(None, None, 0.0, lambda: None, {7}, lambda: 7) == 6  # a pick stands


def test_following_again_with_nothing_open_shows_the_newest_listed():
    follower = Follower()
    follower.choose(2)
    assert follower.update(None, None, 0.0, lambda: None, {1, 2, 3}, lambda: 3) == 2
    follower.resume()
    assert follower.update(None, None, 0.0, lambda: None, {1, 2, 3}, lambda: 3) == 3
