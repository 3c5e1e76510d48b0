"""``python -m collector targets list|import|set-priority|health`` on a real lists directory
and database: what it prints, what it writes, and that a refusal leaves everything as it was.
The served document and the probe's pacing then follow the operator's priorities."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
import yaml

from collector.api.list_health import STATE_NAME, ListHealth
from collector.api.served_lists import ServedLists
from collector.cli import main
from collector.store import open_store
from probe.config import target_sync
from probe.daemon import pacing
from tests.collector.api.test_list_health import day
from tests.probe.config.test_targets_import import KG_ROWS, make_checkout, make_out

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "targets"


def setup(tmp_path: Path) -> tuple[Path, Path]:
    lists = tmp_path / "targets"
    shutil.copytree(SHIPPED, lists)
    config = tmp_path / "collector.yaml"
    config.write_text(yaml.safe_dump({"database": str(tmp_path / "k.sqlite"),
                                      "target_lists": {"directory": "targets"}}))
    return config, lists


def run(config: Path, *args: str) -> int:
    return main(["targets", "--config", str(config), *args])


def test_list_prints_what_a_country_is_served(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    config, lists = setup(tmp_path)
    assert run(config, "list", "--cc", "KG") == 0
    lines = capsys.readouterr().out.splitlines()
    document = ServedLists(lists, "curated/global.csv").document("KG")
    assert lines[0] == f"# KG version {document['version']}: {len(document['targets'])} entries"
    assert len(lines) == len(document["targets"]) + 1 >= 100
    assert "high\tcadence\tNEWS\thttps://kloop.kg/" in lines
    assert any(line.startswith("normal\t86400s\t") for line in lines)
    assert run(config, "list", "--cc", "KG", "--json") == 0
    assert json.loads(capsys.readouterr().out) == document
    assert run(config, "list", "--cc", "K1") == 2
    assert "--cc" in capsys.readouterr().err


def test_set_priority_overrides_the_pacing_through_the_served_list(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, lists = setup(tmp_path)
    served = ServedLists(lists, "curated/global.csv")
    tail = next(t for t in served.document("KG")["targets"]
                if t["priority"] == "normal" and t["category"] not in pacing.PRIORITY_CATEGORIES)
    news = "https://kloop.kg/"
    assert run(config, "set-priority", tail["url"], "high") == 0
    assert run(config, "set-priority", news, "low") == 0
    assert (lists / "priorities.csv").is_file()
    document = served.document("KG")
    priority = {t["url"]: t["priority"] for t in document["targets"]}
    assert (priority[tail["url"]], priority[news]) == ("high", "low")

    # The probe takes the override and its pacing follows it.
    _, targets = target_sync.parse(document, "KG")
    by_url = {t.url: t for t in targets}
    assert by_url[tail["url"]].priority == "high" and by_url[news].priority == "low"
    assert pacing.is_priority(by_url[tail["url"]], "KG", in_window=False)
    assert not pacing.is_priority(by_url[news], "KG", in_window=False)
    assert pacing.is_priority(by_url[news], "KG", in_window=True)  # its country's window
    untouched = next(t for t in targets if t.priority is None)
    assert untouched.interval is not None

    assert run(config, "set-priority", news, "normal") == 0
    assert {t["url"]: t["priority"] for t in served.document("KG")["targets"]}[news] == "high"
    before = (lists / "priorities.csv").read_text()
    capsys.readouterr()
    assert run(config, "set-priority", "https://not-listed.example/", "high") == 2
    assert "on no served list" in capsys.readouterr().err
    assert (lists / "priorities.csv").read_text() == before


def test_a_broken_priorities_file_keeps_the_last_good_overrides(tmp_path: Path) -> None:
    config, lists = setup(tmp_path)
    served = ServedLists(lists, "curated/global.csv")
    assert run(config, "set-priority", "https://kloop.kg/", "low") == 0
    assert served.priorities() == {"https://kloop.kg/": "low"}
    (lists / "priorities.csv").write_text("url,priority\nhttps://kloop.kg/,urgent\n")
    assert served.priorities() == {"https://kloop.kg/": "low"}
    assert run(config, "list", "--cc", "KG") == 2  # the collector would refuse to start too


def test_import_one_list_in_citizen_labs_format(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    config, lists = setup(tmp_path)
    source = tmp_path / "kz.csv"
    source.write_text("url,category_code,category_description,date_added,source,notes\n"
                      "https://vlast.kz/,NEWS,News Media,2016-01-01,x,\n"
                      "https://new.example.kz/,POLR,Political Criticism,2024-01-01,y,\n")
    old = len(ServedLists(lists, "curated/global.csv").document("KZ")["targets"])
    assert run(config, "import", str(source)) == 0
    out = capsys.readouterr().out
    assert "kz.csv: 2 entries imported" in out
    assert "kz.csv: 2 entries, 1 added, " in out and "removed" in out
    assert {t["url"] for t in ServedLists(lists, "curated/global.csv").document("KZ")["targets"]
            if t["cc"] == "KZ"} == {"https://vlast.kz/", "https://new.example.kz/"}
    assert old > 2

    broken = tmp_path / "broken.csv"
    broken.write_text("url,category_code,category_description,date_added,source,notes\n"
                      "not a url,NEWS,News Media,2016-01-01,x,\n")
    before = (lists / "kg.csv").read_bytes()
    assert run(config, "import", str(broken), "--name", "kg.csv") == 2
    assert "url" in capsys.readouterr().err
    assert (lists / "kg.csv").read_bytes() == before
    assert not list(lists.glob(".*.new"))
    assert run(config, "import", str(source), "--name", "../kz.csv") == 2
    assert run(config, "import", str(tmp_path / "missing.csv")) == 2
    assert run(config, "import") == 2


def test_import_a_test_lists_checkout_with_the_curated_additions(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    checkout, _commit = make_checkout(tmp_path, KG_ROWS)
    lists = make_out(tmp_path)
    config = tmp_path / "collector.yaml"
    config.write_text(yaml.safe_dump({"database": str(tmp_path / "k.sqlite"),
                                      "target_lists": {"directory": str(lists),
                                                       "global_list": "global.csv"}}))
    for name in ("kg.csv", "kz.csv", "global.csv"):
        (lists / name).write_text("url,category,cc\n")
    assert run(config, "import", "--test-lists", str(checkout)) == 0
    out = capsys.readouterr().out
    assert "from Citizen Lab" in out and "kg.csv: " in out and " added, 0 removed" in out
    served = ServedLists(lists, "global.csv").document("KG")["targets"]
    assert any(t["source"].startswith("citizenlab/test-lists") for t in served)


def test_health_prints_the_flagged_entries_from_the_database(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, lists = setup(tmp_path)
    health = ListHealth()
    for n in range(9):
        health.record("https://kloop.kg/", day(n), "dns_nxdomain_error")
    health.record("https://24.kg/", day(8), None)

    async def save() -> None:
        store = await open_store(str(tmp_path / "k.sqlite"))
        await store.save_state(STATE_NAME, json.dumps(health.to_document()),
                               "2026-03-10 00:00:00")
        await store.close()

    asyncio.run(save())
    assert run(config, "health", "--cc", "KG", "--status", "flagged") == 0
    assert capsys.readouterr().out.splitlines() == [
        "flagged\t8d\tdns_nxdomain_error\thttps://kloop.kg/"]
    assert run(config, "health", "--days", "9", "--status", "flagged") == 0
    assert capsys.readouterr().out == ""
    assert run(config, "health", "--days", "0") == 2
