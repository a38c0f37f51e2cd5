"""The layers hold: the engine never pulls in Textual or Rich; services do no I/O."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "tcpbench"
SERVICE_BANNED = {"asyncio", "socket", "subprocess", "selectors", "threading", "time", "textual", "rich"}
ENGINE_BANNED = {"textual", "rich", "tcpbench.app", "tcpbench.screens", "tcpbench.widgets", "tcpbench.cli"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_engine_does_not_load_textual_or_rich() -> None:
    code = (
        "import sys, tcpbench.engine, tcpbench.engine.registry, tcpbench.cli.serve, tcpbench.cli.connect\n"
        "import pkgutil, importlib, tcpbench.engine as e\n"
        "for m in pkgutil.walk_packages(e.__path__, 'tcpbench.engine.'): importlib.import_module(m.name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'rich'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_engine_source_imports_no_ui() -> None:
    for path in (PACKAGE / "engine").rglob("*.py"):
        for name in imported_modules(path):
            assert not any(name == b or name.startswith(b + ".") for b in ENGINE_BANNED), f"{path.name} imports {name}"


def test_services_are_pure() -> None:
    files = list((PACKAGE / "services").rglob("*.py"))
    assert files
    for path in files:
        for name in imported_modules(path):
            assert name.split(".")[0] not in SERVICE_BANNED, f"{path.name} imports {name}"


def test_package_init_is_light() -> None:
    out = subprocess.run([sys.executable, "-c", "import sys, tcpbench; print(len([m for m in sys.modules if m.startswith(('textual','rich','asyncio'))]))"],
                         capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "0"
