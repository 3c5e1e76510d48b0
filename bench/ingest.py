"""Ingest throughput of the collector over HTTP on loopback, SQLite and PostgreSQL side by side.

    python -m bench.ingest [--measurements 4000] [--batch 100] [--clients 1,4,16]

Runs the real application (validation, durable commit, metrics) on 127.0.0.1 and posts
batches of fresh web_connectivity measurements from concurrent clients, each batch waiting
for its 200. PostgreSQL runs on a throwaway local cluster (``tests/helpers/postgres``) when
the server is installed, with fsync on. Prints one table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from typing import Any

import aiohttp
from aiohttp import web

from collector.app import create_app
from collector.config import CollectorConfig, Limits
from collector.keys import store_key
from collector.tokens import new_token, token_hash
from tests.collector.factory import measurement
from tests.helpers.postgres import PostgresCluster, unavailable_reason


async def _run(database: str, total: int, batch: int, clients: int) -> dict[str, Any]:
    config = CollectorConfig(database=database, limits=Limits(rate_per_minute=10**9))
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    token = new_token()
    await app[store_key].add_token("bench", token_hash(token), "2024-05-01 00:00:00")
    batches = [[measurement() for _ in range(batch)] for _ in range(total // batch)]
    queue: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
    for item in batches:
        queue.put_nowait(item)
    latencies: list[float] = []
    url = f"http://127.0.0.1:{port}/api/v1/measurements"
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with aiohttp.ClientSession() as session:

            async def client() -> None:
                while not queue.empty():
                    item = queue.get_nowait()
                    started = time.perf_counter()
                    async with session.post(url, json={"measurements": item},
                                            headers=headers) as response:
                        assert response.status == 200, await response.text()
                        await response.read()
                    latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(client() for _ in range(clients)))
            elapsed = time.perf_counter() - started
        stored = await app[store_key].count_measurements()
    finally:
        await runner.cleanup()
    assert stored == len(batches) * batch
    latencies.sort()
    return {"rate": stored / elapsed, "p50": statistics.median(latencies) * 1000,
            "p95": latencies[int(0.95 * (len(latencies) - 1))] * 1000, "stored": stored}


async def main(total: int, batch: int, client_counts: list[int]) -> None:
    backends: list[tuple[str, str]] = []
    directory = tempfile.TemporaryDirectory(prefix="kuzot-bench-")
    cluster = None
    reason = unavailable_reason()
    if reason is None:
        cluster = PostgresCluster.start()
    print(f"{total} measurements per run, batches of {batch}; each 200 waits for the commit")
    print(f"{'store':<11} {'clients':>7} {'measurements/s':>15} {'p50 ms':>8} {'p95 ms':>8}")
    try:
        for clients in client_counts:
            backends = [("sqlite", f"{directory.name}/bench-{clients}.sqlite")]
            if cluster is not None:
                name = f"bench_{clients}"
                cluster.execute(f"CREATE DATABASE {name}")
                backends.append(("postgresql", cluster.dsn(name)))
            for label, database in backends:
                result = await _run(database, total, batch, clients)
                print(f"{label:<11} {clients:>7} {result['rate']:>15.0f} {result['p50']:>8.1f} "
                      f"{result['p95']:>8.1f}")
    finally:
        if cluster is not None:
            cluster.stop()
        directory.cleanup()
    if reason is not None:
        print(f"postgresql: not measured ({reason})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measurements", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--clients", default="1,4,16")
    args = parser.parse_args()
    asyncio.run(main(args.measurements, args.batch,
                     [int(c) for c in args.clients.split(",")]))
