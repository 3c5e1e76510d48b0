"""Target CSV files: the project's format and Citizen Lab's, told apart by the header."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.config import probe_config
from probe.config.probe_config import load_targets_csv
from probe.core.typed_config import ConfigError

CITIZENLAB_HEADER = "url,category_code,category_description,date_added,source,notes\n"


def test_citizenlab_list_keeps_category_date_source_and_country_of_the_file(
        tmp_path: Path) -> None:
    path = tmp_path / "kg.csv"
    path.write_text(CITIZENLAB_HEADER
                    + "http://kloop.kg/,NEWS,News Media,2017-09-18,VirtualRoad,\n"
                    + 'https://www.gov.kg/,GOVT,Government,2024-04-22,OONI,"state, portal"\n',
                    encoding="utf-8")
    first, second = load_targets_csv(path, "target_files[0]")
    assert (first.url, first.category, first.cc, first.role) == ("http://kloop.kg/", "NEWS",
                                                                   "KG", "test")
    assert (first.date_added, first.source, first.notes) == ("2017-09-18", "VirtualRoad", None)
    assert (second.category, second.notes) == ("GOVT", "state, portal")
    assert first.interval is None and first.baseline is None


def test_citizenlab_global_list_is_for_every_country(tmp_path: Path) -> None:
    path = tmp_path / "global.csv"
    path.write_text("\ufeff" + CITIZENLAB_HEADER  # a byte-order mark is tolerated
                    + "https://www.torproject.org/,ANON,Anonymization and circumvention tools,"
                    "2014-04-15,citizenlab,\n", encoding="utf-8")
    (target,) = load_targets_csv(path, "lists")
    assert target.cc == "*" and target.category == "ANON"


@pytest.mark.parametrize("name", ["cis.csv", "mylist.csv"])
def test_citizenlab_list_without_a_country_name_is_refused(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(CITIZENLAB_HEADER + "https://a.example/,NEWS,News Media,2020-01-01,x,\n")
    with pytest.raises(ConfigError) as error:
        load_targets_csv(path, "target_files[1]")
    assert error.value.path == "target_files[1]"
    assert name in error.value.reason and "kg.csv" in error.value.reason


@pytest.mark.parametrize(("row", "where"), [
    ("ftp://a.example/,NEWS,News Media,2020-01-01,x,", "target_files[0][1].url"),
    ("https://a.example/,NEWS,News Media,2020-13,x,", "target_files[0][1].date_added"),
])
def test_citizenlab_bad_row_names_the_row_and_field(tmp_path: Path, row: str,
                                                    where: str) -> None:
    path = tmp_path / "kz.csv"
    path.write_text(CITIZENLAB_HEADER + "https://ok.example/,NEWS,News Media,2020-01-01,x,\n"
                    + row + "\n")
    with pytest.raises(ConfigError) as error:
        load_targets_csv(path, "target_files[0]")
    assert error.value.path == where


def test_project_format_takes_provenance_columns(tmp_path: Path) -> None:
    path = tmp_path / "any-name.csv"
    path.write_text("url,category,cc,role,baseline,interval,date_added,source,notes\n"
                    "# a comment\n"
                    "https://a.example/,NEWS,KZ,test,,24h,2023-04-28,OONI report,blocked\n")
    (target,) = load_targets_csv(path, "t")
    assert (target.cc, target.interval, target.date_added, target.source, target.notes) == (
        "KZ", 86400.0, "2023-04-28", "OONI report", "blocked")


def test_project_format_rejects_an_unknown_column(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("url,category,priority\nhttps://a.example/,NEWS,1\n")
    with pytest.raises(ConfigError, match="unknown column 'priority'"):
        load_targets_csv(path, "t")


def test_config_mixes_formats_filters_by_country_and_measures_a_url_once(
        tmp_path: Path) -> None:
    (tmp_path / "kg.csv").write_text(
        CITIZENLAB_HEADER
        + "https://kloop.kg/,NEWS,News Media,2017-09-18,VirtualRoad,\n"
        + "https://shared.example/,HUMR,Human Rights Issues,2017-09-18,VirtualRoad,\n")
    (tmp_path / "mine.csv").write_text(
        "url,category,cc,role,interval\n"
        "https://shared.example/,HUMR,*,test,24h\n"
        "https://only-kz.example/,NEWS,KZ,test,\n"
        "https://canary.example/,GOVT,*,canary,\n")
    (tmp_path / "probe.yaml").write_text(
        "identity: {country: KG}\ntarget_files: [kg.csv, mine.csv]\n")
    config = probe_config.load(tmp_path / "probe.yaml")
    assert [t.url for t in config.targets] == [
        "https://kloop.kg/", "https://shared.example/", "https://canary.example/"]
    shared = config.targets[1]
    assert (shared.cc, shared.interval) == ("KG", None)  # the first entry, the country's
