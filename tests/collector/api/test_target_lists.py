"""GET /api/v1/targets on the real collector: the shipped lists served per country, versioned
with an ETag, re-read when the operator edits them, never lost to a broken edit."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from collector import config as collector_config
from collector.config import TargetListsConfig
from probe.core.typed_config import ConfigError
from tests.helpers.collector_app import running
from tests.helpers.paths import CONFIGS

SHIPPED = CONFIGS / "targets"


def copy_shipped(tmp_path: Path) -> Path:
    lists = tmp_path / "targets"
    shutil.copytree(SHIPPED, lists)
    return lists


async def test_a_country_gets_its_list_and_the_curated_global_one(tmp_path: Path) -> None:
    lists = copy_shipped(tmp_path)
    async with running(f"{tmp_path}/k.sqlite",
                       target_lists=TargetListsConfig(directory=str(lists))) as c:
        headers = await c.token("kg-1")
        response = await c.client.get("/api/v1/targets", params={"probe_cc": "KG"},
                                      headers=headers)
        assert response.status == 200
        body = await response.json()
        assert response.headers["ETag"] == f'"{body["version"]}"'
        targets = body["targets"]
        urls = [t["url"] for t in targets]
        assert len(urls) == len(set(urls)) and len(urls) >= 100
        assert {t["cc"] for t in targets} == {"KG", "*"}
        assert "https://vlast.kz/" not in urls and "https://kloop.kg/" in urls
        imported = [t for t in targets if t["source"].startswith("citizenlab/")]
        assert imported and all(t["interval_s"] == 86400.0 and t["priority"] == "normal"
                                for t in imported)
        curated = [t for t in targets if t["source"] == "kuzot curated"]
        assert curated and all(t["interval_s"] is None and t["priority"] == "high"
                               for t in curated)
        assert len(curated) + len(imported) == len(targets)
        # A country without a list of its own gets the global one.
        other = await (await c.client.get("/api/v1/targets", params={"probe_cc": "UZ"},
                                          headers=headers)).json()
        assert {t["cc"] for t in other["targets"]} == {"*"} and other["targets"]
        assert other["version"] != body["version"]


async def test_edits_change_the_version_and_a_broken_edit_keeps_the_last_good(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lists = tmp_path / "targets"
    (lists / "curated").mkdir(parents=True)
    kg = lists / "kg.csv"
    kg.write_text("url,category,cc\nhttps://kloop.kg/,NEWS,KG\n")
    (lists / "curated" / "global.csv").write_text("url,category,cc\n")
    async with running(f"{tmp_path}/k.sqlite",
                       target_lists=TargetListsConfig(directory=str(lists))) as c:
        headers = await c.token("kg-1")

        async def get(etag: str | None = None) -> tuple[int, str, list[str]]:
            extra = {"If-None-Match": etag} if etag else {}
            response = await c.client.get("/api/v1/targets", params={"probe_cc": "KG"},
                                          headers={**headers, **extra})
            urls = ([t["url"] for t in (await response.json())["targets"]]
                    if response.status == 200 else [])
            return response.status, response.headers["ETag"], urls

        status, first, urls = await get()
        assert (status, urls) == (200, ["https://kloop.kg/"])
        assert (await get(first))[:2] == (304, first)
        kg.write_text("url,category,cc\nhttps://kloop.kg/,NEWS,KG\nhttps://24.kg/,NEWS,KG\n")
        os.utime(kg, ns=(1, 10**18))  # a new modification time even within the same tick
        status, second, urls = await get(first)
        assert status == 200 and second != first
        assert urls == ["https://kloop.kg/", "https://24.kg/"]
        kg.write_text("url,category,cc\nnot a url,NEWS,KG\n")
        os.utime(kg, ns=(1, 2 * 10**18))
        with caplog.at_level(logging.ERROR, logger="collector.api.target_lists"):
            assert (await get(second))[:2] == (304, second)
        assert "kg.csv no longer loads" in caplog.text and "kg.csv[0].url" in caplog.text


def test_config_checks_the_served_lists_at_load(tmp_path: Path) -> None:
    lists = copy_shipped(tmp_path)
    path = tmp_path / "collector.yaml"
    path.write_text("target_lists: {directory: targets}\n")
    loaded = collector_config.load(path)
    assert loaded.target_lists.directory == str(lists.resolve())
    with open(lists / "kz.csv", "a") as handle:
        handle.write("https://x.example/,NEWS,KZ,test,,soon,,,\n")
    with pytest.raises(ConfigError) as error:
        collector_config.load(path)
    assert error.value.path.startswith("target_lists") and "kz.csv" in str(error.value)
    path.write_text("target_lists: {directory: nowhere}\n")
    with pytest.raises(ConfigError, match="target_lists.directory: no such directory"):
        collector_config.load(path)
