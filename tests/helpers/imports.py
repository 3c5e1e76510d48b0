"""The import graph of the source tree, read with ``ast`` (nothing is imported or run).

An edge ``a -> b`` means module ``a`` imports module ``b`` when it is loaded: imports at the
top of the module, and inside ``if``/``try``/``with`` blocks at module level. Imports inside
functions run later, when the function is called, and imports under ``if TYPE_CHECKING:``
never run: neither can make a circle at import time, so neither is an edge.
``from package import name`` is an edge to ``package.name`` when that is a module, else to
``package``. Loading ``a.b.c`` first runs the ``__init__`` of ``a`` and ``a.b``, so an edge to
a module is also an edge to every package above it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module (or package)
    line: int
    deferred: bool  # inside a function or under TYPE_CHECKING
    type_checking: bool  # under TYPE_CHECKING: never runs


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_modules(*packages: str) -> dict[str, Path]:
    """Every module of ``packages`` (top-level package names), by dotted name."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[module_name(path)] = path
    return found


def _type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


Walked = Iterator[tuple[ast.stmt, bool, bool]]


def _statements(body: list[ast.stmt], deferred: bool, typing_only: bool) -> Walked:
    """Every statement with (deferred, under TYPE_CHECKING)."""
    for node in body:
        yield node, deferred, typing_only
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield from _statements(node.body, True, typing_only)
        elif isinstance(node, ast.If):
            checking = _type_checking(node.test)
            yield from _statements(node.body, deferred or checking, typing_only or checking)
            yield from _statements(node.orelse, deferred, typing_only)
        elif isinstance(node, ast.ClassDef | ast.With | ast.AsyncWith | ast.For | ast.While):
            yield from _statements(node.body, deferred, typing_only)
            yield from _statements(getattr(node, "orelse", []), deferred, typing_only)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody,
                          *(handler.body for handler in node.handlers)):
                yield from _statements(block, deferred, typing_only)


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> Iterator[Import]:
    """The imports of one module, resolved to dotted names (relative imports included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node, deferred, typing_only in _statements(tree.body, False, False):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, node.lineno, deferred, typing_only)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                child = f"{base}.{alias.name}"
                yield Import(name, child if child in modules else base, node.lineno, deferred,
                             typing_only)


def graph(*packages: str, in_functions: bool = False) -> dict[str, set[str]]:
    """Load-time edges between the modules of ``packages``; with ``in_functions``, the
    imports inside functions too (they run at the first call, so a circle through one is a
    circle the loader does not see, hidden rather than gone)."""
    modules = source_modules(*packages)
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for item in imports_of(name, path, modules):
            if item.type_checking or (item.deferred and not in_functions):
                continue
            if item.target in modules and item.target != name:
                edges[name].add(item.target)
            parts = item.target.split(".")
            for end in range(1, len(parts)):
                package = ".".join(parts[:end])
                # The packages above the imported module; a module's own packages are loaded
                # before it, so they add no edge.
                if package in modules and not name.startswith(package + "."):
                    edges[name].add(package)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        # Iterative, so a deep import chain cannot hit the recursion limit.
        work = [(node, iter(sorted(edges[node])))]
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        while work:
            current, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    advanced = True
                    break
                if child in on_stack:
                    low[current] = min(low[current], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[current])
            if low[current] == index[current]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == current:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)
