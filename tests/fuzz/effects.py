"""What every service's effects must look like, whatever the input: the checks the fuzz tests share."""

from __future__ import annotations

from tcpbench.services.base import Abort, Close, HalfClose, Note, Send


def printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


def check_well_formed(effects: list, sessions: set[int] | None = None, *, ascii_notes: bool = True) -> None:
    """Effects are effect objects with sane fields; nothing is sent to a session after its close.

    `sessions`: the sessions a Send/Close may name (None: any int). Notes are one
    printable line (printable ASCII when `ascii_notes`: peer bytes are escaped).
    """
    closed: set[int] = set()
    for effect in effects:
        assert isinstance(effect, (Send, HalfClose, Close, Abort, Note)), effect
        if isinstance(effect, Note):
            assert isinstance(effect.text, str) and "\n" not in effect.text, effect
            assert printable_ascii(effect.text) if ascii_notes else effect.text.isprintable(), effect
            assert effect.session is None or isinstance(effect.session, int)
            continue
        assert isinstance(effect.session, int), effect
        if sessions is not None:
            assert effect.session in sessions, (effect, sessions)
        if isinstance(effect, Send):
            assert isinstance(effect.data, bytes) and effect.data, effect
            assert effect.session not in closed, f"sent after close: {effect}"
        elif isinstance(effect, (Close, Abort)):
            closed.add(effect.session)


def split_at(data: bytes, cuts) -> list[bytes]:
    points = [0, *sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    return [data[a:b] for a, b in zip(points, points[1:]) if b > a]
