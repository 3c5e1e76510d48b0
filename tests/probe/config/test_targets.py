"""The shipped target lists: every entry loads, has a Citizen Lab category code (from the
vendored legend), a known country scope, a date and a source; the curated additions cite
their sources and are all in the generated lists; the provenance in the files and in the
README agree; the default configs measure the country list and only the curated global one."""

from __future__ import annotations

import csv
import re

import pytest

from probe.config import probe_config
from probe.config.probe_config import Target, load_targets_csv
from tests.helpers.paths import CONFIGS

TARGETS = CONFIGS / "targets"
LISTS = [("kg.csv", "KG"), ("kz.csv", "KZ"), ("global.csv", "*")]


def legend_codes() -> set[str]:
    with open(TARGETS / "citizenlab-category-codes.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return {row["New Code"].strip() for row in rows}


def test_vendored_legend_is_citizen_labs() -> None:
    codes = legend_codes()
    assert len(codes) == 31
    assert {"NEWS", "POLR", "HUMR", "LGBT", "ANON", "COMT", "GRP", "CTRL", "GOVT"} <= codes


@pytest.mark.parametrize(("name", "country"), LISTS)
def test_every_shipped_entry_parses_with_category_scope_date_and_source(
        name: str, country: str) -> None:
    targets = load_targets_csv(TARGETS / name, name)
    assert len({t.url for t in targets}) == len(targets), "duplicate URL"
    assert {t.cc for t in targets} == {country}
    unknown = {t.category for t in targets} - legend_codes()
    assert not unknown, f"not Citizen Lab category codes: {unknown}"
    for target in targets:
        assert target.date_added and target.source, target.url
    imported = [t for t in targets if (t.source or "").startswith("citizenlab/test-lists: ")]
    curated = [t for t in targets if t.source == "kuzot curated"]
    assert len(imported) + len(curated) == len(targets)
    assert {t.interval for t in imported} == {86400.0} and {t.role for t in imported} == {"test"}
    assert any(t.role == "canary" for t in curated)


@pytest.mark.parametrize("name", ["kg.csv", "kz.csv"])
def test_country_lists_have_at_least_100_entries_from_citizen_lab(name: str) -> None:
    targets = load_targets_csv(TARGETS / name, name)
    imported = [t for t in targets if (t.source or "").startswith("citizenlab/")]
    assert len(imported) >= 100


@pytest.mark.parametrize(("name", "country"), LISTS)
def test_curated_entries_cite_sources_and_are_all_shipped(name: str, country: str) -> None:
    curated = load_targets_csv(TARGETS / "curated" / name, name)
    assert {t.cc for t in curated} == {country}
    # Every block of entries is preceded by a "# source:" comment.
    sourced = False
    for line in (TARGETS / "curated" / name).read_text().splitlines()[1:]:
        if line.startswith("# source:"):
            sourced = True
        elif not line.startswith("#") and line.strip():
            assert sourced, f"{name}: no source comment before {line}"
        elif not line.strip():
            sourced = False
    shipped = {t.url: t for t in load_targets_csv(TARGETS / name, name)}

    def fields(t: Target) -> tuple[object, ...]:
        return t.url, t.category, t.cc, t.role, t.baseline, t.interval, t.date_added, t.source

    for target in curated:
        assert fields(shipped[target.url]) == fields(target)


def test_provenance_in_the_lists_matches_the_readme() -> None:
    readme = (TARGETS / "README.md").read_text()
    commits = set()
    for name, _ in LISTS:
        text = (TARGETS / name).read_text()
        found = re.findall(r"^# commit ([0-9a-f]{40}) \((\d{4}-\d{2}-\d{2})\), licence "
                           r"CC BY-NC-SA 4\.0$", text, re.MULTILINE)
        assert len(found) == 1, name
        commits.add(found[0])
        count = sum(1 for t in load_targets_csv(TARGETS / name, name))
        assert f"{count:,}" in readme, f"README does not give {name}'s {count} entries"
    ((commit, date),) = commits
    assert f"commit `{commit}`\n({date})" in readme
    assert "CC BY-NC-SA 4.0" in readme


def test_baselines_are_listed() -> None:
    targets = [t for name, _ in LISTS for t in load_targets_csv(TARGETS / name, name)]
    baselines = {t.url for t in targets if t.role == "baseline"}
    named = {t.baseline for t in targets if t.baseline}
    assert named and named <= baselines
    urls = {t.url for t in targets}
    for needed in ("https://kloop.kg/", "https://www.azattyq.org/", "https://vlast.kz/",
                   "https://www.torproject.org/", "https://web.telegram.org/"):
        assert needed in urls


def test_quickstart_config_measures_the_country_list_and_the_curated_global_list() -> None:
    config = probe_config.load(CONFIGS / "probe.yaml")
    assert config.identity.country == "KG"
    imported = [t for t in config.targets if (t.source or "").startswith("citizenlab/")]
    others = [t for t in config.targets if t not in imported]
    # Citizen Lab's KG list once a day; nothing of its global list; the curated entries (all
    # of them, at the config's cadence) as before.
    assert len(imported) >= 100 and {t.cc for t in imported} == {"KG"}
    assert {t.interval for t in imported} == {86400.0}
    assert {t.source for t in others} == {"kuzot curated"} and len(others) < 50
    assert {t.interval for t in others} == {None}
    curated = {t.url for n in ("kg.csv", "global.csv")
               for t in load_targets_csv(TARGETS / "curated" / n, n)}
    assert {t.url for t in others} == curated
