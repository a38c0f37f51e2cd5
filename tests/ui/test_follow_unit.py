"""The follow rule on its own: plain calls, no app."""

from tcpbench.screens.follow import Follower


def test_follows_the_newest_open_then_stays_on_a_pick():
    follower = Follower()
    assert follower.update([], set(), lambda: None) is None
    assert follower.update([1], {1}, lambda: 1) == 1
    assert follower.update([], {1}, lambda: 1) == 1  # ended: stays shown
    assert follower.update([2], {1, 2}, lambda: 2) == 2
    follower.choose(1)
    assert follower.update([3], {1, 2, 3}, lambda: 3) == 1
    follower.resume()
    assert follower.update([3], {1, 2, 3}, lambda: 3) == 3


def test_a_following_view_never_shows_an_unlisted_connection():
    follower = Follower()
    follower.update([5], {5}, lambda: 5)
    assert follower.update([], {6, 7}, lambda: 7) == 7  # 5 dropped, nothing open: the newest row
    follower.choose(6)
    assert follower.update([], {7}, lambda: 7) == 6  # a pick stands even when its row is gone


def test_following_again_with_nothing_open_shows_the_newest_listed():
    follower = Follower()
    follower.choose(2)
    assert follower.update([], {1, 2, 3}, lambda: 3) == 2
    follower.resume()
    assert follower.update([], {1, 2, 3}, lambda: 3) == 3
