"""sscard's import graph has no cycle.

Walks every module's ``import`` statements with :mod:`ast` (module level and inside
functions: a deferred import is still an edge; ``if TYPE_CHECKING:`` blocks are not,
they never run) and looks for strongly connected components (Tarjan). A cycle makes
import order matter and hides a layering mistake; each edge's direction must be
decided once (e.g. ``cards.layout`` never imports the layouts it walks).
"""

from __future__ import annotations

import ast
from pathlib import Path

import sscard

ROOT = Path(sscard.__file__).parent


def _modules() -> dict[str, Path]:
    mods = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        mods[".".join(parts)] = path
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    """The module ``name`` refers to (``from a.b import c``: ``a.b.c`` if a module, else ``a.b``)."""
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(module: str, path: Path, mods: dict[str, Path]) -> set[str]:
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child):
                for orelse in getattr(child, "orelse", []):
                    visit(orelse)
                continue
            names: list[str] = []
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parts = package.split(".")
                    parts = parts[: len(parts) - (child.level - 1)]
                    base = ".".join([*parts, base] if base else parts)
                names = [f"{base}.{alias.name}" for alias in child.names]
            for name in names:
                target = _resolve(name, mods) if name.startswith("sscard") else None
                if target is not None and target != module:
                    found.add(target)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strongconnect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                strongconnect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strongconnect(v)
    return out


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, mods) for m, p in mods.items()}


def test_no_import_cycle_in_sscard() -> None:
    assert _cycles(_graph()) == []


def test_the_walker_sees_edges_and_finds_a_cycle() -> None:
    graph = _graph()
    assert "sscard.apdu.catalog" in graph["sscard.apdu.errors"]  # module level
    assert "sscard.cards.purse" in graph["sscard.cards"]  # inside all_layouts()
    assert (
        "sscard.simulators.cos.card_os" not in graph["sscard.simulators.cos.iso"]
    )  # TYPE_CHECKING
    assert "sscard.simulators.cos.iso" in graph["sscard.simulators.cos.card_os"]  # deferred
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
