"""Horizontal scale: two collector processes on one PostgreSQL store every uid exactly once."""

from __future__ import annotations

import asyncio
import itertools

import aiohttp
import asyncpg
import pytest

from tests.collector.factory import measurement
from tests.helpers.collector_process import issue_token, serve

pytestmark = pytest.mark.postgres


async def test_two_collectors_one_database_no_duplicates(postgres_dsn: str) -> None:
    token = await issue_token(postgres_dsn, "p1")
    headers = {"Authorization": f"Bearer {token}"}
    everything = [measurement() for _ in range(200)]
    # Overlapping batches, each sent to both collectors at once: every uid arrives 4 times.
    batches = [everything[i:i + 40] for i in range(0, 200, 20)]
    async with serve("--database", postgres_dsn) as first, \
            serve("--database", postgres_dsn) as second, aiohttp.ClientSession() as session:

        async def post(base: str, batch: list[dict[str, object]]) -> dict[str, list[str]]:
            async with session.post(base + "/api/v1/measurements", headers=headers,
                                    json={"measurements": batch}) as response:
                assert response.status == 200, await response.text()
                answer: dict[str, list[str]] = await response.json()
                return answer

        answers = await asyncio.gather(*(
            post(base, batch) for batch, base in itertools.product(
                batches, (first.base, second.base))))
        async with session.get(second.base + "/api/v1/aggregation") as response:
            [totals] = (await response.json())["result"]
        async with session.get(first.base + "/metrics") as response:
            metrics = await response.text()
    new = [u for a in answers for u in a["stored"] if u not in a["duplicates"]]
    # Exactly one request, on one of the two collectors, stored each uid.
    assert sorted(new) == sorted(m["measurement_uid"] for m in everything)
    assert totals["measurement_count"] == 200
    assert "kuzot_measurements_stored 200.0" in metrics
    conn = await asyncpg.connect(postgres_dsn)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM measurements")
        distinct = await conn.fetchval("SELECT count(DISTINCT uid) FROM measurements")
    finally:
        await conn.close()
    assert rows == distinct == 200
