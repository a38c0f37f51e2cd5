"""The footer shows the keys of what has focus, compact, and is rebuilt only when they change."""

from __future__ import annotations

from textual.widgets._footer import FooterKey

from tcpbench.widgets.footer import CompactFooter
from tests.ui.helpers import make_app, until


def _labels(app) -> list[str]:
    return [key.description for key in app.screen.query(FooterKey)]


async def test_the_footer_is_built_once_at_start_and_rebuilt_only_when_its_keys_change(monkeypatch):
    rebuilds: list[list[str]] = []
    real_recompose = CompactFooter.recompose

    async def counting_recompose(self):
        await real_recompose(self)
        rebuilds.append([key.description for key in self.query(FooterKey)])

    monkeypatch.setattr(CompactFooter, "recompose", counting_recompose)
    app = make_app()
    async with app.run_test(size=(120, 35)) as pilot:
        await until(pilot, lambda: "Search" in _labels(app), what="the footer's keys")
        for _ in range(5):
            await pilot.pause()
        # Built empty, then once with the keys: not once per focus or screen signal.
        assert len(rebuilds) == 1, rebuilds
        keys = list(app.screen.query(FooterKey))
        assert keys and all(key.has_class("-compact") for key in keys)

        # Signals that change nothing (as a focus move between two tables would): no rebuild.
        app.screen.refresh_bindings()
        app.screen.refresh_bindings()
        for _ in range(5):
            await pilot.pause()
        assert len(rebuilds) == 1, rebuilds

        # The send bar has keys of its own: one rebuild, and they are shown.
        await pilot.press("i")
        await until(pilot, lambda: "Line ending" in _labels(app), what="the send bar's keys")
        assert len(rebuilds) == 2, rebuilds
        assert all(key.has_class("-compact") for key in app.screen.query(FooterKey))
