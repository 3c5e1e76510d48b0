"""PostgreSQL writes uploads that arrive together in one transaction, and each gets back what
it would have alone. A real PostgreSQL server (the suite's throwaway cluster); an upload
"being prepared" is the ingest's own count, held open as long as the test needs."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from collector.config import Ingest
from collector.keys import ingest_workers_key, store_key
from collector.store import StoredMeasurement, StoreUnavailable, WritesComing
from collector.store.body import pack
from collector.store.postgres import PostgresStore
from tests.collector.factory import stored
from tests.helpers.collector_app import running
from tests.helpers.postgres import cluster_for_test

pytestmark = pytest.mark.postgres

LONG = 30.0  # seconds: a writer that waits this long fails the test's own timeouts first


def packed(uid: str, **changes: object) -> StoredMeasurement:
    row = stored(uid=uid, **changes)
    return dataclasses.replace(row, packed=pack(row.body))


@asynccontextmanager
async def grouping_store(dsn: str, wait: float) -> AsyncIterator[tuple[PostgresStore,
                                                                      WritesComing]]:
    """A store that writes uploads in groups, waiting up to ``wait`` for those ``coming``
    counts."""
    coming = WritesComing()
    store = await PostgresStore.open(dsn, coming=coming, commit_wait=wait)
    try:
        yield store, coming
    finally:
        await store.close()


async def prepared_then_stored(store: PostgresStore, coming: WritesComing,
                               rows: list[StoredMeasurement], preparing: asyncio.Event
                               ) -> list[str]:
    """An upload as the handler makes it: counted while prepared, then handed to the store."""
    with coming.expecting():
        await preparing.wait()
    return await store.add_measurements(rows)


async def transactions_of(dsn: str) -> int:
    """How many transactions wrote the stored measurements."""
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(DISTINCT xid) FROM measurements"))
    finally:
        await conn.close()


async def test_uploads_arriving_together_share_one_transaction(postgres_dsn: str) -> None:
    async with grouping_store(postgres_dsn, LONG) as (store, coming):
        preparing = asyncio.Event()
        second = asyncio.create_task(prepared_then_stored(
            store, coming, [packed("second-a"), packed("second-b")], preparing))
        await asyncio.sleep(0)
        first = asyncio.create_task(store.add_measurements([packed("first")]))
        await asyncio.sleep(0.3)
        assert not first.done()  # waiting for the upload on its way
        preparing.set()
        assert await asyncio.wait_for(first, 10) == ["first"]
        assert await asyncio.wait_for(second, 10) == ["second-a", "second-b"]
        assert store.groups is not None and store.groups.transactions == 1
        assert await transactions_of(postgres_dsn) == 1
        assert await store.count_measurements() == 3


async def test_a_uid_in_two_uploads_of_a_group_is_stored_from_the_first(
        postgres_dsn: str) -> None:
    async with grouping_store(postgres_dsn, LONG) as (store, coming):
        await store.add_measurements([packed("before")])
        with coming.expecting():  # more on their way: the three below wait for each other
            first = asyncio.create_task(store.add_measurements(
                [packed("shared", verdict="blocked"), packed("only-first")]))
            second = asyncio.create_task(store.add_measurements(
                [packed("shared", verdict="ok"), packed("only-second"), packed("before")]))
            await asyncio.sleep(0.2)
        # The count fell with no upload left on its way: the group is written.
        assert await asyncio.wait_for(first, 10) == ["shared", "only-first"]
        assert await asyncio.wait_for(second, 10) == ["only-second"]
        conn = await asyncpg.connect(postgres_dsn)
        try:
            verdict = await conn.fetchval("SELECT verdict FROM measurements WHERE uid = 'shared'")
        finally:
            await conn.close()
        assert verdict == "blocked"  # the first upload's row
        assert await store.count_measurements() == 4


async def test_an_upload_the_server_refuses_fails_alone_not_with_its_group(
        postgres_dsn: str) -> None:
    async with grouping_store(postgres_dsn, LONG) as (store, coming):
        with coming.expecting():
            good = asyncio.create_task(store.add_measurements([packed("good")]))
            # PostgreSQL's text cannot hold a NUL: the server refuses this row.
            bad = asyncio.create_task(store.add_measurements([packed("bad", layer="d\x00ns")]))
            also_good = asyncio.create_task(store.add_measurements([packed("also-good")]))
            await asyncio.sleep(0.2)
        assert await asyncio.wait_for(good, 10) == ["good"]
        assert await asyncio.wait_for(also_good, 10) == ["also-good"]
        with pytest.raises(Exception):  # noqa: B017, PT011 - whatever asyncpg names it
            await asyncio.wait_for(bad, 10)
        assert await store.count_measurements() == 2
        assert store.groups is not None and store.groups.transactions == 4  # 1 + 3 alone


async def test_an_upload_alone_is_written_at_once(postgres_dsn: str) -> None:
    async with grouping_store(postgres_dsn, LONG) as (store, coming):
        assert await asyncio.wait_for(store.add_measurements([packed("alone")]), 10) == ["alone"]


async def test_more_uploads_than_a_group_holds_are_all_stored(postgres_dsn: str) -> None:
    async with grouping_store(postgres_dsn, 0.05) as (store, coming):
        with coming.expecting():  # on its way for ever: each group waits its 50 ms at most
            uploads = [store.add_measurements([packed(f"u{i:03d}-{j}") for j in range(3)])
                       for i in range(40)]
            done = await asyncio.wait_for(asyncio.gather(*uploads), 30)
        assert done == [[f"u{i:03d}-{j}" for j in range(3)] for i in range(40)]
        assert await store.count_measurements() == 120
        assert store.groups is not None and 3 <= store.groups.transactions < 40


async def test_the_collector_groups_its_uploads_on_postgresql(postgres_dsn: str) -> None:
    async with running(postgres_dsn, ingest=Ingest(workers=0, commit_wait=0.5)) as c:
        store, workers = c.app[store_key], c.app[ingest_workers_key]
        assert isinstance(store, PostgresStore) and store.groups is not None
        assert store.groups.company.coming is workers.coming
        assert store.groups.company.wait == 0.5


async def test_a_group_meets_a_database_gone_with_one_answer_for_all() -> None:
    # This test's own cluster, as it stops the server: the group's uploads are not written
    # again one by one (each would wait on the database again), all get 503's reason at once.
    with cluster_for_test() as cluster:
        async with grouping_store(cluster.dsn(), LONG) as (store, coming):
            await store.add_measurements([packed("before")])
            with coming.expecting():
                uploads = [asyncio.create_task(store.add_measurements([packed(f"u{i}")]))
                           for i in range(3)]
                await asyncio.sleep(0.2)
                cluster.stop_server("fast")
            results = await asyncio.wait_for(
                asyncio.gather(*uploads, return_exceptions=True), 20)
            assert all(isinstance(r, StoreUnavailable) for r in results), results
            assert store.groups is not None and store.groups.transactions == 2
