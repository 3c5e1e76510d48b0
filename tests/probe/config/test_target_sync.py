"""The probe fetches its target lists from the real collector on loopback, keeps the last good
copy through a collector that is gone or answers badly, and measures its shipped files until
it has one."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from collector.config import TargetListsConfig
from probe.config import probe_config
from probe.config.target_sync import cache_path, refresh
from tests.helpers.collector_app import Running, running
from tests.helpers.paths import CONFIGS
from tests.helpers.ports import free_port

SHIPPED = CONFIGS / "targets"


def probe_yaml(tmp_path: Path, collector_url: str, country: str = "KG") -> Path:
    (tmp_path / "local.csv").write_text("url,category,cc\nhttps://only-in-the-file.example/,"
                                        "NEWS,*\n")
    path = tmp_path / "probe.yaml"
    path.write_text(json.dumps({
        "identity": {"probe_id": "kg-1", "country": country},
        "collector": {"url": collector_url},
        "spool_path": str(tmp_path / "var" / "spool.sqlite"),
        "target_files": ["local.csv"],
    }))
    return path


def base(c: Running) -> str:
    return str(c.client.make_url("")).rstrip("/")


async def test_fetched_lists_replace_the_files_and_a_second_start_gets_304(
        tmp_path: Path) -> None:
    lists = tmp_path / "served"
    shutil.copytree(SHIPPED, lists)
    async with running(f"{tmp_path}/k.sqlite",
                       target_lists=TargetListsConfig(directory=str(lists))) as c:
        token = (await c.token("kg-1"))["Authorization"].removeprefix("Bearer ")
        path = probe_yaml(tmp_path, base(c))
        before = probe_config.load(path)
        assert [t.url for t in before.targets] == ["https://only-in-the-file.example/"]
        spent: list[int] = []
        message = await refresh(before, token, traffic=spent.append)
        assert message.startswith("target lists: fetched version ")
        # The fetch is counted against the data budget: at least the document's bytes.
        assert sum(spent) > cache_path(before).stat().st_size // 2 > 10_000
        assert cache_path(before) == tmp_path / "var" / "targets-cache.json"
        after = probe_config.load(path)
        urls = {t.url for t in after.targets}
        assert "https://kloop.kg/" in urls and len(urls) >= 100
        assert "https://only-in-the-file.example/" not in urls
        assert {t.cc for t in after.targets} == {"KG", "*"}
        assert {t.interval for t in after.targets} == {None, 86400.0}
        spent.clear()
        assert (await refresh(after, token, traffic=spent.append)).endswith(" is current")
        assert 0 < sum(spent) < 2_000  # a 304 costs only the exchange
        # The operator adds a site: the next start fetches the new version.
        with open(lists / "kg.csv", "a") as handle:
            handle.write("https://new.example.kg/,NEWS,KG,test,,,2026-12-01,operator,\n")
        os.utime(lists / "kg.csv", ns=(1, 10**18))
        assert (await refresh(after, token)).startswith("target lists: fetched version ")
        assert "https://new.example.kg/" in {t.url for t in probe_config.load(path).targets}


async def test_the_last_good_copy_survives_a_gone_or_refusing_collector(
        tmp_path: Path) -> None:
    lists = tmp_path / "served"
    shutil.copytree(SHIPPED, lists)
    async with running(f"{tmp_path}/k.sqlite",
                       target_lists=TargetListsConfig(directory=str(lists))) as c:
        token = (await c.token("kg-1"))["Authorization"].removeprefix("Bearer ")
        path = probe_yaml(tmp_path, base(c))
        assert "fetched" in await refresh(probe_config.load(path), token)
        served = probe_config.load(path).targets
        cached = cache_path(probe_config.load(path)).read_bytes()
        # An unknown token: 403, the copy stays.
        message = await refresh(probe_config.load(path), "not-a-token")
        assert "answered 403" in message and "measuring the copy of version" in message
        assert cache_path(probe_config.load(path)).read_bytes() == cached
    # The collector is gone (a shutdown): the copy stays and is measured.
    path = probe_yaml(tmp_path, f"http://127.0.0.1:{free_port()}")
    message = await refresh(probe_config.load(path), token)
    assert "did not answer" in message and "measuring the copy of version" in message
    assert probe_config.load(path).targets == served
    # A probe moved to another country does not measure the old country's copy.
    moved = probe_config.load(probe_yaml(tmp_path, f"http://127.0.0.1:{free_port()}", "KZ"))
    assert [t.url for t in moved.targets] == ["https://only-in-the-file.example/"]


async def test_a_probe_that_never_reached_the_collector_measures_its_files(
        tmp_path: Path) -> None:
    async with running(f"{tmp_path}/k.sqlite") as c:  # serves no lists: 404
        token = (await c.token("kg-1"))["Authorization"].removeprefix("Bearer ")
        path = probe_yaml(tmp_path, base(c))
        message = await refresh(probe_config.load(path), token)
        assert "answered 404" in message and "measuring the lists of target_files" in message
    message = await refresh(probe_config.load(path), token)
    assert "did not answer" in message
    assert not cache_path(probe_config.load(path)).exists()
    assert [t.url for t in probe_config.load(path).targets] == [
        "https://only-in-the-file.example/"]


async def test_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    path = probe_yaml(tmp_path, f"http://127.0.0.1:{free_port()}")
    cache = cache_path(probe_config.load(path))
    cache.parent.mkdir(parents=True)
    cache.write_text('{"probe_cc": "KG", "version": "v1", "targets": [{"url": "ftp://x/"}]}')
    assert [t.url for t in probe_config.load(path).targets] == [
        "https://only-in-the-file.example/"]
    cache.write_text("{not json")
    assert len(probe_config.load(path).targets) == 1


async def test_a_blocked_first_endpoint_does_not_cut_the_probe_off_its_lists(
        tmp_path: Path) -> None:
    """The collector's first endpoint refuses (the censor blocked it): the lists come
    through the next one, as uploads and heartbeats do (probe.daemon.endpoints)."""
    lists = tmp_path / "served"
    shutil.copytree(SHIPPED, lists)
    async with running(f"{tmp_path}/k.sqlite",
                       target_lists=TargetListsConfig(directory=str(lists))) as c:
        token = (await c.token("kg-1"))["Authorization"].removeprefix("Bearer ")
        blocked = f"http://127.0.0.1:{free_port()}"
        path = probe_yaml(tmp_path, blocked)
        data = json.loads(path.read_text())
        data["collector"]["endpoints"] = [{"name": "first", "url": blocked},
                                          {"name": "second", "url": base(c)}]
        path.write_text(json.dumps(data))
        message = await refresh(probe_config.load(path), token)
        assert message.startswith("target lists: fetched version "), message
        assert "https://kloop.kg/" in {t.url for t in probe_config.load(path).targets}
        # Both refusing: the message names each endpoint that did not answer.
        data["collector"]["endpoints"] = [{"name": "first", "url": blocked},
                                          {"name": "second", "url": blocked}]
        path.write_text(json.dumps(data))
        message = await refresh(probe_config.load(path), token)
        assert "did not answer (first: " in message and "; second: " in message
        assert "measuring the copy of version" in message
