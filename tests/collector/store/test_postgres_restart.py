"""PostgreSQL restarted under an ingest flood: clients see 503 with Retry-After, never a 200
for a batch that was not committed, and their retries leave every measurement stored once.

The cluster is this test's own (not the session's), because the test stops it: once as a
crash (``immediate``: no checkpoint, recovery from the WAL) and once as an operator's restart
(``fast``: every client disconnected). The collector is the real process, as an operator runs it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from collector.store import Filters, open_store
from tests.collector.factory import measurement
from tests.helpers.collector_process import issue_token, serve
from tests.helpers.postgres import PostgresCluster, cluster_for_test

pytestmark = pytest.mark.postgres

DOWN_SECONDS = 1.5  # long enough for every client to be answered 503 at least once
CLIENTS = 4
DEADLINE = 90.0  # a client gives a batch up after this long (the test then fails)


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    with cluster_for_test() as cluster:
        yield cluster


@pytest.mark.parametrize("mode", ["immediate", "fast"])
async def test_restart_during_ingest_loses_nothing_and_stores_retries_once(
        own_cluster: PostgresCluster, mode: str, tmp_path: Path) -> None:
    dsn = own_cluster.dsn()
    config = tmp_path / "collector.yaml"
    config.write_text("limits: {rate_per_minute: 1000000}\n")
    token = await issue_token(dsn, "flood")
    headers = {"Authorization": f"Bearer {token}"}
    batches = [[measurement() for _ in range(25)] for _ in range(80)]
    total = sum(len(b) for b in batches)
    acknowledged: set[str] = set()
    acknowledged_before_restart: set[str] = set()
    answers: Counter[int] = Counter()
    retry_after: set[str | None] = set()
    restart_at = asyncio.Event()
    restarted = asyncio.Event()
    pending = list(batches)

    def next_batch() -> list[dict[str, object]] | None:
        if pending:
            return pending.pop()
        if restarted.is_set():
            return None
        # Keep the flood going until the database is back, so the restart happens under
        # load and the retries meet the recovered database.
        batches.append([measurement() for _ in range(25)])
        return batches[-1]

    async def restart() -> None:
        await restart_at.wait()
        acknowledged_before_restart.update(acknowledged)
        await asyncio.to_thread(own_cluster.stop_server, mode)
        await asyncio.sleep(DOWN_SECONDS)
        await asyncio.to_thread(own_cluster.start_server)
        restarted.set()

    async def client(session: aiohttp.ClientSession, base: str) -> None:
        while (batch := next_batch()) is not None:
            uids = {str(m["measurement_uid"]) for m in batch}
            started = time.monotonic()
            while True:
                assert time.monotonic() - started < DEADLINE, "a batch was never accepted"
                async with session.post(base + "/api/v1/measurements", headers=headers,
                                        json={"measurements": batch}) as response:
                    answers[response.status] += 1
                    if response.status == 200:
                        body = await response.json()
                        assert set(body["stored"]) == uids
                        acknowledged.update(body["stored"])
                        break
                    retry_after.add(response.headers.get("Retry-After"))
                # A probe waits Retry-After (30 s); the test retries sooner to stay quick.
                await asyncio.sleep(0.1)
            if len(acknowledged) >= total // 4:
                restart_at.set()

    async with serve("--config", str(config), "--database", dsn) as collector, \
            aiohttp.ClientSession() as session:
        restarter = asyncio.create_task(restart())
        await asyncio.gather(*(client(session, collector.base) for _ in range(CLIENTS)))
        await restarter
        assert collector.process.returncode is None, "the collector survived the restart"

    everything = {str(m["measurement_uid"]) for b in batches for m in b}
    assert set(answers) <= {200, 503}, f"only 200 and 503 answers: {answers}"
    assert answers[503] >= 1, "the restart was seen by clients"
    assert retry_after == {"30"}, "every 503 says when to retry"
    assert len(acknowledged_before_restart) >= total // 4
    assert acknowledged == everything

    store = await open_store(dsn)
    try:
        stored = [r["uid"] for r in await store.measurements(Filters(),
                                                             limit=len(everything) + 10)]
        count = await store.count_measurements()
    finally:
        await store.close()
    assert len(stored) == len(set(stored)) == count == len(everything)
    assert set(stored) == everything
    assert acknowledged_before_restart <= set(stored)
