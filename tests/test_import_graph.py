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


def _imports(
    module: str, path: Path, mods: dict[str, Path], *, typing_only: bool = False
) -> set[str]:
    """The modules ``module`` imports; ``typing_only`` counts ``if TYPE_CHECKING:`` too."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_type_checking(child) and not typing_only:
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


def _graph(*, typing_only: bool = False) -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, mods, typing_only=typing_only) for m, p in mods.items()}


def test_no_import_cycle_in_sscard() -> None:
    assert _cycles(_graph()) == []


#: Cycles that only ``if TYPE_CHECKING:`` imports close (annotations of objects that
#: call each other). No new one: a layer that needs the other's type for more than an
#: annotation has its direction wrong (the insurance Reconciler types its client with
#: a Protocol instead of importing the client).
TYPING_CYCLES = [
    [
        "sscard.simulators.cos.applet",
        "sscard.simulators.cos.card_os",
        "sscard.simulators.cos.files",
        "sscard.simulators.cos.iso",
    ],
]


def test_no_new_cycle_even_through_type_checking_imports() -> None:
    cycles = _cycles(_graph(typing_only=True))
    assert sorted(cycles) == TYPING_CYCLES
    assert not any(m.startswith("sscard.services.insurance") for c in cycles for m in c)


def test_the_walker_sees_edges_and_finds_a_cycle() -> None:
    graph = _graph()
    assert "sscard.apdu.catalog" in graph["sscard.apdu.errors"]  # module level
    assert "sscard.cards.purse" in graph["sscard.cards"]  # inside all_layouts()
    assert (
        "sscard.simulators.cos.card_os" not in graph["sscard.simulators.cos.iso"]
    )  # TYPE_CHECKING
    assert "sscard.simulators.cos.iso" in graph["sscard.simulators.cos.card_os"]  # deferred
    typing = _graph(typing_only=True)
    assert "sscard.simulators.cos.card_os" in typing["sscard.simulators.cos.iso"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
