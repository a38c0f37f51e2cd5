"""The package's import graph has no circles, and the arrows run one way.

The graph is built from the source (ast), not by importing: every import counts,
wherever it is written (module level, inside a function, under `if TYPE_CHECKING:`),
because a lazy or type-only import is still a dependency a reader has to follow.
`from X import name` is an edge to `X.name` when that is a module of its own,
otherwise to `X`; relative imports are resolved. The implicit import of a
module's parent packages is not an edge (every module would depend on its
package's `__init__`).

Direction, from the top: cli -> app -> screens -> widgets -> engine -> services.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "tcpbench"
UI = ("tcpbench.app", "tcpbench.ui_spec", "tcpbench.screens", "tcpbench.widgets")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _absolute(module: str | None, level: int, importer: str, is_package: bool) -> str:
    if level == 0:
        return module or ""
    base = importer.split(".")
    # A package's own name is its base for `from . import x`; a module's is its package.
    drop = level - 1 if is_package else level
    base = base[:len(base) - drop] if drop else base
    return ".".join(base + ([module] if module else []))


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module `name` imports, resolved to full dotted names (inside the package or not)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(node.module, node.level, name, is_package)
            for alias in node.names:
                candidate = f"{source}.{alias.name}"
                found.add(candidate if candidate in modules else source)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    """tcpbench module -> the tcpbench modules it imports."""
    modules = package_modules()
    return {name: {target for target in imports_of(name, path, modules) if target in modules}
            for name, path in modules.items()}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The shortest cycle through each module that is on one, as module chains (first module
    repeated at the end), without repeats: Tarjan's strongly connected components, then a
    breadth-first search inside each component."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)

    cycles: list[list[str]] = []
    for component in components:
        for start in sorted(component):
            cycle = _shortest_cycle(graph, component, start)
            turn = cycle.index(min(cycle))
            cycle = cycle[turn:] + cycle[:turn]
            if cycle + [cycle[0]] not in cycles:
                cycles.append(cycle + [cycle[0]])
    return cycles


def _shortest_cycle(graph: dict[str, set[str]], component: set[str], start: str) -> list[str]:
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & component):
                if target == start:
                    chain = [node]
                    while chain[-1] != start:
                        chain.append(parents[chain[-1]])
                    return chain[::-1]
                if target not in parents:
                    parents[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"{start} is in a component but on no cycle")


def test_the_resolver_sees_every_kind_of_import() -> None:
    graph = import_graph()
    # `from tcpbench.engine import events as ev` names a module: the edge goes to that module.
    assert "tcpbench.engine.events" in graph["tcpbench.engine.session"]
    # A lazy import inside a function counts (app imports its screens when it mounts them).
    assert "tcpbench.screens.main" in graph["tcpbench.app"]
    # An import under `if TYPE_CHECKING:` counts too.
    assert "tcpbench.engine.manager" in graph["tcpbench.widgets.tables"]


def test_find_cycles_reports_the_chain() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
    assert find_cycles({"a": {"b"}, "b": {"a", "c"}, "c": {"b"}}) == [["a", "b", "a"], ["b", "c", "b"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_is_acyclic() -> None:
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles in tcpbench:\n" + "\n".join("  " + " -> ".join(c) for c in cycles)


def _edges_into(prefix: str, sources: tuple[str, ...]) -> list[str]:
    graph = import_graph()
    return sorted(f"{name} -> {target}" for name, targets in graph.items()
                  if any(name == s or name.startswith(s + ".") for s in sources)
                  for target in targets if target == prefix or target.startswith(prefix + "."))


def test_the_ui_never_imports_the_command_line() -> None:
    assert _edges_into("tcpbench.cli", UI) == []


def test_screens_and_widgets_never_import_the_app() -> None:
    assert _edges_into("tcpbench.app", ("tcpbench.screens", "tcpbench.widgets")) == []


def test_widgets_never_import_screens() -> None:
    assert _edges_into("tcpbench.screens", ("tcpbench.widgets",)) == []


def test_a_session_does_not_know_its_manager() -> None:
    assert "tcpbench.engine.manager" not in import_graph()["tcpbench.engine.session"]


def test_the_app_is_the_workbench_its_screen_expects() -> None:
    # The screen types the app as a protocol instead of importing it; the app must still fit it.
    from tcpbench.app import TcpBenchApp
    from tcpbench.screens.main import Workbench

    assert isinstance(TcpBenchApp(), Workbench)
