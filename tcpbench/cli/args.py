"""Argument parsing shared by the subcommands: the one-line `Parser` and the value types.

A leaf of `tcpbench.cli`: the subcommand modules (`serve`, `connect`, `probe`)
import it, and the package's `__init__` imports them, so these helpers cannot
live in `__init__` without an import circle.
"""

from __future__ import annotations

import argparse
from typing import NoReturn

PROG = "tcpbench"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (no usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: {message} (see '{self.prog} --help')\n")


def parse_port(text: str, lowest: int = 0) -> int:
    """A port number from `lowest` (0: "any free port" when listening) to 65535."""
    # ASCII digits only: int() would also read ' 80', '8_0' and Arabic-Indic digits.
    digits = text[1:] if text[:1] == "-" else text  # '-1' is a number, out of range
    if not (digits.isascii() and digits.isdigit()):
        raise argparse.ArgumentTypeError(f"port {text!r} is not a number ({lowest}-65535)")
    port = int(text, 10)
    if not lowest <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is out of range ({lowest}-65535)")
    return port


def parse_positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value
