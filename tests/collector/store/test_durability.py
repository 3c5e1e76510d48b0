"""200 means durable: a collector killed with SIGKILL has every acknowledged row on disk."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp

from collector.store import Filters, open_store
from tests.collector.factory import measurement
from tests.helpers.collector_process import issue_token, serve


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


async def test_retries_after_sigkill_store_each_uid_exactly_once(database: str,
                                                                 tmp_path: Path) -> None:
    """A flood from 4 concurrent clients, SIGKILL mid-flood, restart, and every client resends
    every batch (acknowledged or not, as a probe that lost the answer would): afterwards every
    measurement is stored exactly once, and none acknowledged before the kill is missing."""
    token = await issue_token(database, "flood")
    config = tmp_path / "collector.yaml"
    config.write_text("limits: {rate_per_minute: 1000000}\n")
    args = ("--config", str(config), "--database", database)
    headers = {"Authorization": f"Bearer {token}"}
    batches = [[measurement() for _ in range(50)] for _ in range(40)]
    total = sum(len(b) for b in batches)
    acknowledged: set[str] = set()
    answers: list[int] = []
    limit = asyncio.Semaphore(4)
    async with serve(*args) as collector, aiohttp.ClientSession() as session:

        async def post(batch: list[dict[str, object]]) -> None:
            async with limit:
                try:
                    async with session.post(collector.base + "/api/v1/measurements",
                                            headers=headers,
                                            json={"measurements": batch}) as response:
                        answers.append(response.status)
                        if response.status == 200:
                            acknowledged.update((await response.json())["stored"])
                        if len(acknowledged) >= 500 and collector.process.returncode is None:
                            collector.process.send_signal(signal.SIGKILL)
                except aiohttp.ClientError:
                    pass  # the collector is gone; the batch is resent below

        await asyncio.gather(*(post(b) for b in batches))
        await collector.process.wait()
    before_kill = set(acknowledged)
    assert 500 <= len(before_kill) < total
    assert set(answers) == {200}, "before the kill every answer was a durable 200"

    async with serve(*args) as collector, aiohttp.ClientSession() as session:
        for batch in batches:
            async with session.post(collector.base + "/api/v1/measurements", headers=headers,
                                    json={"measurements": batch}) as response:
                assert response.status == 200
    store = await open_store(database)
    try:
        stored = [r["uid"] for r in await store.measurements(Filters(), limit=total + 10)]
    finally:
        await store.close()
    assert len(stored) == len(set(stored)) == total
    assert before_kill <= set(stored)
