"""The curated target lists: they load, every entry has a category and a cited source, and
every co-hosted baseline they name is itself listed as a baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.config import load_targets_csv

TARGETS = Path(__file__).resolve().parents[2] / "configs" / "targets" / "curated"
CATEGORIES = {"NEWS", "POLR", "HUMR", "ANON", "COMT", "GRP", "MMED", "SRCH", "GOVT", "CTRL"}
"""The Citizen Lab test-list category codes these lists use."""


@pytest.mark.parametrize(("name", "country"), [("kg.csv", "KG"), ("kz.csv", "KZ"),
                                               ("global.csv", "*")])
def test_list_loads_with_categories_and_sources(name: str, country: str) -> None:
    targets = load_targets_csv(TARGETS / name, name)
    assert len({t.url for t in targets}) == len(targets), "duplicate URL"
    assert {t.cc for t in targets} == {country}
    assert {t.category for t in targets} <= CATEGORIES
    assert any(t.role == "canary" for t in targets)
    # Every block of entries is preceded by a "# source:" comment.
    lines = (TARGETS / name).read_text().splitlines()[1:]
    sourced = False
    for line in lines:
        if line.startswith("# source:"):
            sourced = True
        elif not line.startswith("#") and line.strip():
            assert sourced, f"{name}: no source comment before {line}"
        elif not line.strip():
            sourced = False


def test_baselines_are_listed() -> None:
    targets = [t for name in ("kg.csv", "kz.csv", "global.csv")
               for t in load_targets_csv(TARGETS / name, name)]
    baselines = {t.url for t in targets if t.role == "baseline"}
    named = {t.baseline for t in targets if t.baseline}
    assert named and named <= baselines
    urls = {t.url for t in targets}
    for needed in ("https://kloop.kg/", "https://www.azattyq.org/", "https://vlast.kz/",
                   "https://www.torproject.org/", "https://web.telegram.org/"):
        assert needed in urls
