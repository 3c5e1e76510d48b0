"""200 means durable: a collector killed with SIGKILL has every acknowledged row on disk."""

from __future__ import annotations

import asyncio
import signal

import aiohttp

from collector.store import Filters, open_store
from tests.collector.factory import measurement
from tests.collector.process import issue_token, serve


async def test_acknowledged_batches_survive_sigkill(database: str) -> None:
    token = await issue_token(database, "p1")
    headers = {"Authorization": f"Bearer {token}"}
    batches = [[measurement() for _ in range(25)] for _ in range(16)]
    acknowledged: list[str] = []
    async with serve("--database", database) as collector, aiohttp.ClientSession() as session:

        async def post(batch: list[dict[str, object]]) -> None:
            async with session.post(collector.base + "/api/v1/measurements", headers=headers,
                                    json={"measurements": batch}) as response:
                if response.status == 200:
                    acknowledged.extend((await response.json())["stored"])
                    if len(acknowledged) >= 100 and collector.process.returncode is None:
                        # Kill at once, while other batches are still in flight.
                        collector.process.send_signal(signal.SIGKILL)

        await asyncio.gather(*(post(b) for b in batches), return_exceptions=True)
        await collector.process.wait()
    assert len(acknowledged) >= 100
    store = await open_store(database)
    try:
        stored = {r["uid"] for r in await store.measurements(Filters(), limit=1000)}
    finally:
        await store.close()
    assert set(acknowledged) <= stored
