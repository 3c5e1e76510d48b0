"""SQLite's writer waits for uploads on their way and commits them together, and only then.

Real SQLite files and the real writer; an upload "being prepared" is the ingest's own count
(``WritesComing.expecting``), held open for as long as the test needs. The waits given to the
writer are long (seconds) where the test shows it did not wait, so that a slow machine cannot
make a wrong writer pass, and short where it shows the wait is bounded.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from collector import config as collector_config
from collector.config import CollectorConfig, Ingest
from collector.keys import ingest_workers_key, store_key
from collector.limits import Limits
from collector.store import StoredMeasurement, WritesComing
from collector.store.body import pack
from collector.store.coming import MAX_GROUP
from collector.store.sqlite import SQLiteStore
from probe.core.typed_config import ConfigError
from tests.collector.factory import stored
from tests.helpers.collector_app import running

LONG = 30.0  # seconds: a writer that waits this long fails the test's own timeout first


def packed(uid: str) -> StoredMeasurement:
    """A row as a worker hands it over: already compressed, so storing it awaits nothing
    before the writer's queue (as in the ingest's handler)."""
    row = stored(uid=uid)
    return dataclasses.replace(row, packed=pack(row.body))


@asynccontextmanager
async def waiting_store(path: Path, wait: float) -> AsyncIterator[tuple[SQLiteStore, WritesComing]]:
    """A store whose writer waits up to ``wait`` for the uploads ``coming`` counts."""
    coming = WritesComing()
    store = await SQLiteStore.open(str(path), coming=coming, commit_wait=wait)
    try:
        yield store, coming
    finally:
        await store.close()


async def prepared_then_stored(store: SQLiteStore, coming: WritesComing, uid: str,
                               preparing: asyncio.Event) -> list[str]:
    """An upload as the handler makes it: counted while being prepared (until ``preparing``
    is set), then handed to the store in the same step."""
    with coming.expecting():
        await preparing.wait()
    return await store.add_measurements([packed(uid)])


async def test_a_commit_waits_for_an_upload_being_prepared_and_writes_both(
        tmp_path: Path) -> None:
    async with waiting_store(str(tmp_path / "k.sqlite"), LONG) as (store, coming):
        preparing = asyncio.Event()
        second = asyncio.create_task(prepared_then_stored(store, coming, "second", preparing))
        await asyncio.sleep(0)  # the second upload is now being prepared
        first = asyncio.create_task(store.add_measurements([packed("first")]))
        await asyncio.sleep(0.3)
        # Held for the upload on its way: nothing committed yet.
        assert not first.done() and store.writer.commits == 0
        assert await store.count_measurements() == 0
        preparing.set()
        assert await asyncio.wait_for(first, 10) == ["first"]
        assert await asyncio.wait_for(second, 10) == ["second"]
        assert store.writer.commits == 1  # both in one transaction
        assert await store.count_measurements() == 2


async def test_an_upload_alone_is_committed_at_once(tmp_path: Path) -> None:
    async with waiting_store(str(tmp_path / "k.sqlite"), LONG) as (store, coming):
        # Nothing else on its way: the commit does not wait (LONG would time this out).
        assert await asyncio.wait_for(store.add_measurements([packed("alone")]), 10) == ["alone"]
        preparing = asyncio.Event()
        preparing.set()
        # The handler's own upload: no longer counted once it reaches the store.
        assert await asyncio.wait_for(
            prepared_then_stored(store, coming, "own", preparing), 10) == ["own"]
        assert store.writer.commits == 2


async def test_an_upload_refused_while_prepared_releases_the_waiting_commit(
        tmp_path: Path) -> None:
    async with waiting_store(str(tmp_path / "k.sqlite"), LONG) as (store, coming):
        refused = asyncio.Event()

        async def refused_upload() -> None:
            with coming.expecting():
                await refused.wait()
            # refused (not JSON, over its rate): it never reaches the store

        other = asyncio.create_task(refused_upload())
        await asyncio.sleep(0)
        first = asyncio.create_task(store.add_measurements([packed("first")]))
        await asyncio.sleep(0.2)
        assert not first.done()
        refused.set()
        assert await asyncio.wait_for(first, 10) == ["first"]
        await other
        assert coming.count == 0


async def test_the_wait_is_bounded_when_the_upload_on_its_way_never_comes(
        tmp_path: Path) -> None:
    async with waiting_store(str(tmp_path / "k.sqlite"), 0.2) as (store, coming):
        with coming.expecting():  # an upload stuck in preparation for the whole test
            loop = asyncio.get_running_loop()
            started = loop.time()
            assert await asyncio.wait_for(
                store.add_measurements([packed("first")]), 10) == ["first"]
            assert loop.time() - started >= 0.2  # it did wait for company
            assert await store.count_measurements() == 1


async def test_a_full_group_commits_without_waiting_for_more(tmp_path: Path) -> None:
    async with waiting_store(str(tmp_path / "k.sqlite"), LONG) as (store, coming):
        with coming.expecting():  # more on its way, for ever
            uploads = [store.add_measurements([packed(f"u{i:02d}")]) for i in range(MAX_GROUP)]
            done = await asyncio.wait_for(asyncio.gather(*uploads), 10)
        assert [uid for uids in done for uid in uids] == [f"u{i:02d}" for i in range(MAX_GROUP)]
        assert store.writer.commits == 1


async def test_without_a_wait_every_group_commits_at_once(tmp_path: Path) -> None:
    async with waiting_store(str(tmp_path / "k.sqlite"), 0) as (store, coming):
        with coming.expecting():
            assert await asyncio.wait_for(
                store.add_measurements([packed("first")]), 10) == ["first"]


async def test_the_collector_counts_its_uploads_for_its_store(tmp_path: Path) -> None:
    config = Ingest(workers=0, commit_wait=0.5)
    async with running(str(tmp_path / "c.sqlite"), ingest=config) as c:
        workers, store = c.app[ingest_workers_key], c.app[store_key]
        assert isinstance(store, SQLiteStore)
        assert store.writer.company.coming is workers.coming and store.writer.company.wait == 0.5
        preparing = asyncio.create_task(workers.prepare(
            b'{"measurements": []}', Limits(), datetime.now(UTC), "p1", None, None))
        await asyncio.sleep(0)
        assert workers.coming.count == 1  # counted while prepared on its thread
        refused = await preparing
        assert refused.refusal is not None and workers.coming.count == 0
    assert CollectorConfig().ingest.commit_wait == 0.025


@pytest.mark.parametrize(("value", "seconds"), [("25ms", 0.025), (0, 0.0), ("1s", 1.0)])
def test_the_commit_wait_is_read_as_a_duration(tmp_path: Path, value: object,
                                               seconds: float) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"ingest": {"commit_wait": value}}))
    assert collector_config.load(path).ingest.commit_wait == seconds


@pytest.mark.parametrize("value", ["2s", -1, "soon"])
def test_a_commit_wait_out_of_range_is_refused_by_its_path(tmp_path: Path, value: object) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"ingest": {"commit_wait": value}}))
    with pytest.raises(ConfigError, match="ingest.commit_wait"):
        collector_config.load(path)
