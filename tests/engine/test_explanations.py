"""Every lifecycle event and every probe outcome explains itself in one line of plain words."""

from __future__ import annotations

import dataclasses

from tcpbench.engine import events as ev
from tcpbench.engine.errors import CONNECT_REASONS, explain_reason

SAMPLE = {"at": 0.0, "session": 1, "listener": 1, "service": "echo", "address": ("127.0.0.1", 7),
          "local": ("127.0.0.1", 7), "peer": ("127.0.0.1", 5000), "offset": 0, "data": b"abc",
          "closed_by": "peer", "bytes_in": 3, "bytes_out": 3, "message": "boom", "reason": "refused",
          "idle_seconds": 5.0, "host": "127.0.0.1", "port": 7, "topic": "access", "text": "GET /",
          "detail": "denied by 127.0.0.0/8", "how": "reset", "version": "TLSv1.3",
          "cipher": "TLS_AES_256_GCM_SHA384", "bits": 256, "alpn": "", "sni": "localhost",
          "verified": True, "wire_in": 40, "wire_out": 60}


def all_event_classes() -> list[type[ev.Event]]:
    return [cls for cls in vars(ev).values()
            if isinstance(cls, type) and issubclass(cls, ev.Event) and cls is not ev.Event]


def test_every_lifecycle_event_has_a_one_line_explanation() -> None:
    classes = all_event_classes()
    assert len(classes) >= 14
    for cls in classes:
        if cls is ev.ServiceNoted:
            continue  # its text is the service's own (and may hold escaped peer text)
        event = cls(**{f.name: SAMPLE[f.name] for f in dataclasses.fields(cls) if f.name in SAMPLE})
        text = event.explain()
        assert text and "\n" not in text and len(text) < 160, (cls.__name__, text)


def test_both_kinds_of_orderly_close_and_both_openings_differ() -> None:
    assert ev.SessionClosed(0, 1, "peer", 0, 0).explain() != ev.SessionClosed(0, 1, "us", 0, 0).explain()
    assert ev.SessionOpened(0, 1, ("", 0), ("", 0), None).explain() != \
        ev.SessionOpened(0, 1, ("", 0), ("", 0), 1).explain()


def test_every_connect_and_probe_outcome_is_explained() -> None:
    texts = {reason: explain_reason(reason) for reason in CONNECT_REASONS}
    assert all(texts.values()) and len(set(texts.values())) == len(texts)
    assert "RST" in texts["refused"] and "DROP" in texts["timed_out"]
