"""The new-listener dialog's "limits and access" fields: idle timeout, max conns, CIDR rules, refusal.

The same choices as `tcpbench serve`'s flags (`--idle-timeout`, `--max-conns`,
`--allow`, `--deny`, `--refuse`), folded away by default: most listeners need
none of them. The values are checked by the engine's own parsers, so a bad CIDR
reads the same here as on the command line.
"""

from __future__ import annotations

import re
from typing import Any

from textual.containers import Horizontal
from textual.widgets import Collapsible, Input, Label, Select, Static

from tcpbench.engine.admission import AdmissionError, AdmissionPolicy, build_policy, parse_refusal

REFUSE_CHOICES = (("close (FIN)", "close"), ("reset (RST)", "reset"), ("banner, then FIN", "banner"))
DEFAULT_BANNER = "421 Service not available"


def limits_fields() -> Collapsible:
    """The folded group of fields (ids `limit-*`) for `NewListenerDialog.compose`."""
    def row(label: str, *fields: Any) -> Horizontal:
        return Horizontal(Label(label, classes="field-label", markup=False), *fields, classes="row")

    return Collapsible(
        row("idle timeout", Input("", id="limit-idle", placeholder="seconds (none)", compact=True),
            Label(" max conns ", classes="short-label", markup=False),
            Input("", id="limit-max", placeholder="none", classes="port", compact=True)),
        row("allow", Input("", id="limit-allow", placeholder="CIDRs, e.g. 10.0.0.0/8 ::1 (all)",
                           compact=True)),
        row("deny", Input("", id="limit-deny", placeholder="CIDRs (none); deny wins", compact=True)),
        row("refuse by", Select(REFUSE_CHOICES, value="close", allow_blank=False, id="limit-refuse",
                                compact=True),
            Input(DEFAULT_BANNER, id="limit-banner", placeholder="banner text", compact=True)),
        Static("Connections the rules turn away are counted and logged, never silent.",
               classes="option-help", markup=False),
        title="limits and access", collapsed=True, id="limits")


def collect_limits(screen: Any) -> tuple[float | None, AdmissionPolicy | None]:
    """(idle timeout, admission policy) from the fields; None for what is left empty.

    Errors: `ValueError` with one line for the person.
    """
    def text(widget_id: str) -> str:
        return screen.query_one(f"#{widget_id}", Input).value.strip()

    idle: float | None = None
    if raw := text("limit-idle"):
        try:
            idle = float(raw)
        except ValueError:
            raise ValueError(f"idle timeout: {raw!r} is not a number of seconds") from None
        if not idle > 0:
            raise ValueError("idle timeout: must be greater than 0 (leave it empty for none)")
    max_conns: int | None = None
    if raw := text("limit-max"):
        if not raw.isdigit() or int(raw) < 1:
            raise ValueError(f"max conns: {raw!r} is not a whole number of at least 1")
        max_conns = int(raw)
    mode = screen.query_one("#limit-refuse", Select).value
    try:
        refusal = parse_refusal(f"banner:{text('limit-banner')}" if mode == "banner" else str(mode))
        policy = build_policy(allow=_split(text("limit-allow")), deny=_split(text("limit-deny")),
                              max_conns=max_conns, refusal=refusal)
    except AdmissionError as exc:
        raise ValueError(str(exc)) from None
    return idle, policy if policy.restricts else None


def _split(text: str) -> list[str]:
    return [part for part in re.split(r"[\s,]+", text) if part]
