"""`tcpbench scenarios [NAME]`: list the built-in scenarios, or print one to copy and edit."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "scenarios", help="list the built-in lesson scenarios (tcpbench --scenario NAME)",
        description="List the built-in scenarios, or print one (its TOML) to start your own: "
                    "tcpbench scenarios lesson > mine.toml; tcpbench --scenario mine.toml")
    parser.add_argument("name", nargs="?", help="print this scenario's TOML")
    parser.set_defaults(run=main)


def main(args: argparse.Namespace) -> int:
    from tcpbench.scenarios import builtin_names, builtin_text, load_scenario

    if args.name:
        print(builtin_text(args.name), end="")
        return 0
    names = builtin_names()
    width = max(len(n) for n in names)
    for name in names:
        scenario = load_scenario(name)
        print(f"{name:<{width}}  {scenario.title}: {scenario.description}")
    print("\nstart one with: tcpbench --scenario NAME (or a TOML file of your own)")
    return 0
