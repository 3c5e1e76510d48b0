"""The seams of the tree, checked on the source with ``ast``.

* The collector imports, from the probe's tree, only ``probe.core`` and ``probe.netx``: the
  measurement format, the failure vocabulary, target lists and URL helpers live there, and the
  rest of the probe can change without the server noticing.
* ``probe.core`` and ``probe.netx`` import nothing else of the probe, so the collector's
  imports stay inside them all the way down; ``probe.netx`` records, it never interprets
  (no verdict module under it).
* No import circles in ``probe`` or ``collector``: every module-level import (not under
  ``if TYPE_CHECKING:``, not inside a function) points one way. Circles closed by an import
  inside a function are listed (``KNOWN_CIRCLES_THROUGH_FUNCTIONS``); the probe has none.
"""

from __future__ import annotations

import pytest

from tests.seams.imports import ROOT, cycles, graph, imports_of, source_modules

ALLOWED_FROM_COLLECTOR = ("probe.core", "probe.netx")


def _inside(name: str, packages: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in packages)


def _allowed(line: str) -> bool:
    """``probe`` itself (its ``__init__`` holds only the version) or core/netx."""
    target = line.rpartition(": ")[2]
    return target == "probe" or _inside(target, ALLOWED_FROM_COLLECTOR)


def _probe_imports(package: str, deferred_too: bool = True) -> list[str]:
    modules = source_modules("probe", "collector")
    found = []
    for name, path in modules.items():
        if not _inside(name, (package,)):
            continue
        for item in imports_of(name, path, modules):
            if (deferred_too or not item.deferred) and _inside(item.target, ("probe",)):
                found.append(f"{path.relative_to(ROOT)}:{item.line}: {item.target}")
    return found


def test_collector_imports_only_probe_core_and_netx() -> None:
    wrong = [line for line in _probe_imports("collector") if not _allowed(line)]
    assert wrong == []


@pytest.mark.parametrize("package", ["probe.core", "probe.netx"])
def test_core_and_netx_stay_inside_themselves(package: str) -> None:
    wrong = [line for line in _probe_imports(package) if not _allowed(line)]
    assert wrong == []


def test_the_collector_check_sees_imports() -> None:
    """The walk finds the imports it checks (a walk that found nothing would always pass)."""
    targets = {line.rpartition(": ")[2] for line in _probe_imports("collector")}
    assert "probe.core.failures" in targets and any(_inside(t, ("probe.netx",))
                                                     for t in targets)


def test_no_import_circles() -> None:
    assert cycles(graph("probe", "collector")) == []


# Circles closed only by an import inside a function (a factory choosing a store, the
# config checking served lists): not circles when modules load, but not one-way either.
# Listed so none is added unseen and each is struck off when it goes.
KNOWN_CIRCLES_THROUGH_FUNCTIONS = [
    ["collector.api.handlers", "collector.api.openapi", "collector.api.target_lists",
     "collector.api.validate", "collector.config"],
    ["collector.store", "collector.store.postgres", "collector.store.postgres_events",
     "collector.store.sql", "collector.store.sqlite", "collector.store.sqlite_events"],
]


def test_circles_through_imports_in_functions_are_only_the_known_ones() -> None:
    assert cycles(graph("probe", "collector", in_functions=True)) == \
        KNOWN_CIRCLES_THROUGH_FUNCTIONS


def test_cycle_finder_finds_a_circle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"f"}, "f": {"e"}}
    assert cycles(edges) == [["a", "b", "c"], ["e", "f"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
