"""``python -m probe.config.targets_import`` on a small test-lists git checkout made here."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from probe.config.probe_config import load_targets_csv
from probe.config.targets_import import main, same_site_key
from tests.helpers.paths import CONFIGS

REPO_TARGETS = CONFIGS / "targets"
HEADER = "url,category_code,category_description,date_added,source,notes\n"
CURATED_HEADER = "url,category,cc,role,baseline,interval,date_added,source,notes\n"


def git(checkout: Path, *args: str) -> str:
    environment = {**os.environ, "GIT_COMMITTER_DATE": "2026-06-30T12:00:00Z",
                   "GIT_AUTHOR_DATE": "2026-06-30T12:00:00Z"}
    return subprocess.run(["git", "-C", str(checkout), *args], check=True, capture_output=True,
                          text=True, env=environment).stdout.strip()


def make_checkout(root: Path, kg_rows: str) -> tuple[Path, str]:
    checkout = root / "test-lists"
    lists = checkout / "lists"
    lists.mkdir(parents=True)
    shutil.copyfile(REPO_TARGETS / "citizenlab-category-codes.csv",
                    lists / "00-LEGEND-new_category_codes.csv")
    (lists / "kg.csv").write_text(HEADER + kg_rows)
    (lists / "kz.csv").write_text(
        HEADER + "https://vlast.kz/,NEWS,News Media,2019-05-25,Access Now,\n")
    (lists / "global.csv").write_text(
        HEADER + "https://www.torproject.org/,ANON,Anonymization and circumvention tools,"
        "2014-04-15,citizenlab,\n"
        "http://www.hrw.org/,HUMR,Human Rights Issues,2014-04-15,citizenlab,\n")
    git(checkout, "init", "-q")
    git(checkout, "add", "-A")
    git(checkout, "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q",
        "-m", "lists")
    return checkout, git(checkout, "rev-parse", "HEAD")


def make_out(root: Path) -> Path:
    out = root / "targets"
    (out / "curated").mkdir(parents=True)
    for name, cc in (("kg", "KG"), ("kz", "KZ"), ("global", "*")):
        (out / "curated" / f"{name}.csv").write_text(
            CURATED_HEADER + "# source: a report.\n"
            f"https://canary-{name}.example/,GOVT,{cc},canary,,,2026-11-23,kuzot curated,\n")
    with open(out / "curated" / "kg.csv", "a") as handle:
        handle.write("https://kloop.kg/,NEWS,KG,test,,,2026-11-23,kuzot curated,\n")
    return out


KG_ROWS = ("http://kloop.kg/,NEWS,News Media,2017-09-18,VirtualRoad,\n"
           "https://24.kg/,NEWS,News Media,2017-09-18,VirtualRoad,\n"
           'https://temirov.live/,POLR,Political Criticism,2020-01-02,OONI,"critic, blocked"\n')


def test_import_merges_curated_and_citizenlab_with_provenance(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkout, commit = make_checkout(tmp_path, KG_ROWS)
    out = make_out(tmp_path)
    assert main(["--test-lists", str(checkout), "--out", str(out), "--interval", "12h"]) == 0
    assert "kg.csv: 2 curated + 2 from Citizen Lab" in capsys.readouterr().out
    kg = load_targets_csv(out / "kg.csv", "kg")
    assert [t.url for t in kg] == ["https://canary-kg.example/", "https://kloop.kg/",
                                   "https://24.kg/", "https://temirov.live/"]
    kloop, temirov = kg[1], kg[3]
    # The curated entry stays, and says where Citizen Lab lists the same site.
    assert kloop.interval is None and kloop.source == "kuzot curated"
    assert kloop.notes == ("also in Citizen Lab lists/kg.csv as http://kloop.kg/ "
                           "(NEWS, 2017-09-18, VirtualRoad)")
    assert (temirov.category, temirov.cc, temirov.interval, temirov.date_added, temirov.source,
            temirov.notes) == ("POLR", "KG", 43200.0, "2020-01-02",
                               "citizenlab/test-lists: OONI", "critic, blocked")
    text = (out / "kg.csv").read_text()
    assert f"# commit {commit} (2026-06-30), licence CC BY-NC-SA 4.0" in text
    assert "# source: a report." in text  # curated comments are kept
    glob = load_targets_csv(out / "global.csv", "global")
    assert {t.cc for t in glob} == {"*"} and len(glob) == 3
    assert (out / "citizenlab-category-codes.csv").read_bytes() == \
        (checkout / "lists" / "00-LEGEND-new_category_codes.csv").read_bytes()


@pytest.mark.parametrize(("rows", "message"), [
    ("https://a.example/,WARZ,Unknown,2017-09-18,x,\n", "kg.csv line 2.category: 'WARZ'"),
    ("https://a.example/,NEWS,News Media,18.09.2017,x,\n", "kg.csv line 2.date_added"),
    ("mailto:a@example.org,NEWS,News Media,2017-09-18,x,\n", "kg.csv line 2.url"),
])
def test_a_bad_entry_stops_the_import_and_leaves_the_lists(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: str, message: str) -> None:
    checkout, _ = make_checkout(tmp_path, rows)
    out = make_out(tmp_path)
    (out / "kz.csv").write_text("old\n")
    assert main(["--test-lists", str(checkout), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert (out / "kz.csv").read_text() == "old\n"
    assert not (out / "kg.csv").exists()


def test_legacy_category_code_is_mapped_to_the_new_one(tmp_path: Path) -> None:
    # Citizen Lab's legend says MSG (messaging) became COMT.
    checkout, _ = make_checkout(tmp_path, "https://a.example/,MSG,Messaging,2017-09-18,x,\n")
    out = make_out(tmp_path)
    assert main(["--test-lists", str(checkout), "--out", str(out)]) == 0
    assert load_targets_csv(out / "kg.csv", "kg")[-1].category == "COMT"


def test_without_git_the_commit_must_be_given(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    checkout, _ = make_checkout(tmp_path, KG_ROWS)
    shutil.rmtree(checkout / ".git")
    out = make_out(tmp_path)
    assert main(["--test-lists", str(checkout), "--out", str(out)]) == 2
    assert "--commit" in capsys.readouterr().err
    assert main(["--test-lists", str(checkout), "--out", str(out), "--commit", "0" * 40,
                 "--commit-date", "2026-06-30"]) == 0
    assert f"# commit {'0' * 40} (2026-06-30)" in (out / "kz.csv").read_text()


def test_a_missing_checkout_is_named_as_missing(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = make_out(tmp_path)
    before = sorted(p.name for p in out.iterdir())
    assert main(["--test-lists", str(tmp_path / "no-such-checkout"), "--out", str(out)]) == 2
    assert f"{tmp_path / 'no-such-checkout'}: no such directory" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == before


def test_a_curated_entry_needs_date_and_source(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    checkout, _ = make_checkout(tmp_path, KG_ROWS)
    out = make_out(tmp_path)
    with open(out / "curated" / "kz.csv", "a") as handle:
        handle.write("https://b.example/,NEWS,KZ,test,,,,,\n")
    assert main(["--test-lists", str(checkout), "--out", str(out)]) == 2
    assert "kz.csv line 4: a curated entry needs its date_added and source" in \
        capsys.readouterr().err


def test_same_site_key_ignores_scheme_host_case_and_trailing_slash() -> None:
    assert same_site_key("http://Kloop.KG/") == same_site_key("https://kloop.kg")
    assert same_site_key("https://kloop.kg/ru/") != same_site_key("https://kloop.kg/")
    assert same_site_key("https://www.kloop.kg/") != same_site_key("https://kloop.kg/")
