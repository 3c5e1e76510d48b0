"""The seams of the tree, checked on the source with ``ast``.

* The collector loads, from the probe's tree, only ``probe.core`` and ``probe.netx`` (the
  measurement format, the failure vocabulary, target lists, URL helpers) and a pinned list of
  pure modules (the verdict rules it re-runs, the list importer), so the rest of the probe
  can change without the server noticing.
* ``probe.core`` and ``probe.netx`` import nothing else of the probe, so the collector's
  imports stay inside them all the way down; ``probe.netx`` records, it never interprets
  (no verdict module under it).
* No import circles in ``probe`` or ``collector``: every import (not under
  ``if TYPE_CHECKING:``) points one way, at module level and inside functions alike.
"""

from __future__ import annotations

import pytest

from tests.helpers.imports import ROOT, cycles, graph, imports_of, source_modules

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


# Beyond probe.core and probe.netx, the collector reaches only these pure modules: the verdict
# rules it re-runs on stored measurements (``collector reanalyze``) and the target-list
# importer (``collector targets``). Each imports, all the way down, only probe.core, probe.netx
# and modules of this list; a new one has to be argued for here.
PURE_BEYOND_CORE = {
    "probe.config.targets_import",
    "probe.nettests.platforms.analysis",
    "probe.nettests.throttling.analysis",
    "probe.nettests.throttling.differentiation",
    "probe.nettests.throttling.ks",
    "probe.nettests.web_connectivity.analysis",
    "probe.nettests.web_connectivity.blockpages",
    "probe.nettests.web_connectivity.blockphrases",
    "probe.nettests.web_connectivity.ooni_classic",
}


def _reached_from_collector() -> set[str]:
    """Every probe module the collector loads, directly or through other probe modules
    (imports inside functions included)."""
    edges = graph("probe", "collector", in_functions=True)
    todo = [m for name, targets in edges.items() if name.startswith("collector")
            for m in targets if _inside(m, ("probe",))]
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(m for m in edges[module] if _inside(m, ("probe",)))
    return seen


def test_collector_reaches_only_probe_core_netx_and_pure_modules() -> None:
    packages = {name for name, path in source_modules("probe").items()
                if path.name == "__init__.py"}
    reached = _reached_from_collector()
    beyond = {m for m in reached - packages if not _inside(m, ALLOWED_FROM_COLLECTOR)}
    assert beyond <= PURE_BEYOND_CORE, sorted(beyond - PURE_BEYOND_CORE)
    # What the collector must never load: the probe's config loader, daemon, local storage,
    # command line, measurements and registry.
    for forbidden in ("probe.config.probe_config", "probe.daemon", "probe.local", "probe.cli",
                      "probe.nettests.registry", "probe.nettests.web_connectivity.measure"):
        assert not any(_inside(m, (forbidden,)) for m in reached), forbidden


def test_package_inits_the_collector_loads_hold_no_code_of_their_own() -> None:
    """A package ``__init__`` the collector loads on the way runs too: it must import nothing."""
    modules = source_modules("probe")
    for name in _reached_from_collector():
        path = modules[name]
        if path.name == "__init__.py" and not _inside(name, ALLOWED_FROM_COLLECTOR):
            runtime = [i for i in imports_of(name, path, modules) if not i.type_checking]
            assert [i.target for i in runtime if _inside(i.target, ("probe",))] == [], name


@pytest.mark.parametrize("package", ["probe.core", "probe.netx"])
def test_core_and_netx_stay_inside_themselves(package: str) -> None:
    wrong = [line for line in _probe_imports(package) if not _allowed(line)]
    assert wrong == []


def test_the_collector_check_sees_imports() -> None:
    """The walk finds the imports it checks (a walk that found nothing would always pass)."""
    targets = {line.rpartition(": ")[2] for line in _probe_imports("collector")}
    assert "probe.core.failures" in targets and any(_inside(t, ("probe.netx",))
                                                     for t in targets)
    assert "probe.core.targets" in _reached_from_collector()


def test_no_import_circles() -> None:
    assert cycles(graph("probe", "collector")) == []


def test_no_circles_through_imports_in_functions_either() -> None:
    """An import inside a function (the store factory choosing a store) runs later, so a
    circle through it does not fail at load; it is still a circle, hidden rather than gone.
    The stores import ``collector.store.interface``, not the factory's package, and the
    configuration loader checks served lists with ``collector.api.served_lists``, not the
    HTTP routes."""
    assert cycles(graph("probe", "collector", in_functions=True)) == []


def test_cycle_finder_finds_a_circle() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"f"}, "f": {"e"}}
    assert cycles(edges) == [["a", "b", "c"], ["e", "f"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
