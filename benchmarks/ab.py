"""What `echo_ab.py` and `http_ab.py` share: two source trees, one command each, rotated rounds."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Callable, TypeVar

from benchmarks.harness import PYTHON, Server, ServerSpec

T = TypeVar("T")


def parser(doc: str) -> argparse.ArgumentParser:
    """An argument parser that takes BEFORE and AFTER (source trees of tcpbench) and --rounds."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    return parser


def tree_command(tree: Path, *args: str) -> list[str]:
    """`python -P -m tcpbench --loop asyncio ARGS` importing tcpbench from `tree` (`-P`: the
    working directory must not shadow it), with the default busy poll."""
    return ["env", "-u", "TCPBENCH_BUSY_POLL", f"PYTHONPATH={tree.resolve()}", PYTHON, "-P",
            "-m", "tcpbench", "--loop", "asyncio", *args]


def rotated_rounds(specs: dict[str, ServerSpec], rounds: int,
                   measure: Callable[[Server], T]) -> dict[str, list[T]]:
    """Each round starts every server once, a fresh process each, in an order rotated by the
    round, and keeps what `measure(server)` returns; the server is stopped by its pid after."""
    results: dict[str, list[T]] = {name: [] for name in specs}
    names = list(specs)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            server = Server(specs[name], Path(tempfile.mkdtemp(prefix="ab-")), 1)
            try:
                results[name].append(measure(server))
            finally:
                server.stop()
    return results


def ratios(medians: dict[str, float], peer: str) -> str:
    """The line that ends an A/B: after against before, and each against `peer`."""
    return (f"  after/before {medians['after'] / medians['before']:.2f}x, "
            f"after/{peer} {medians['after'] / medians[peer]:.2f}x, "
            f"before/{peer} {medians['before'] / medians[peer]:.2f}x")
