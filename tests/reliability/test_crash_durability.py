"""kill -9 the collector in the middle of an ingest flood: nothing acknowledged is lost.

Several concurrent clients post batches; the collector is killed with SIGKILL while they are
in flight, then restarted; clients retry every batch that was not acknowledged (and, as real
probes may, some that were). Afterwards every acknowledged uid is stored exactly once.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from tests.reliability.collector_process import CollectorProcess


def measurement(uid: str) -> dict[str, object]:
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return {"measurement_uid": uid, "probe_cc": "KG", "probe_asn": "AS8449",
            "test_name": "web_connectivity", "measurement_start_time": now,
            "input": "https://kloop.kg/", "test_keys": {"analysis": {"verdict": "ok"}}}


async def flood(base: str, token: str, client: int, batches: int, size: int,
                acked: set[str], pending: list[list[str]], stop: asyncio.Event) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        for b in range(batches):
            uids = [f"c{client}b{b}m{i}xxxxxxxx" for i in range(size)]
            if stop.is_set():
                pending.append(uids)
                continue
            try:
                async with session.post(base + "/api/v1/measurements", headers=headers,
                                        json={"measurements": [measurement(u) for u in uids]}
                                        ) as response:
                    if response.status == 200:
                        acked.update((await response.json())["stored"])
                        continue
                    assert response.status >= 500, await response.text()
            except (aiohttp.ClientError, TimeoutError):
                pass
            pending.append(uids)


async def test_kill_9_loses_nothing_acknowledged(tmp_path: Path) -> None:
    collector = CollectorProcess(tmp_path, "limits: {rate_per_minute: 1000000}\n")
    token = collector.issue_token("flood")
    collector.start()
    acked: set[str] = set()
    pending: list[list[str]] = []
    stop = asyncio.Event()
    try:
        clients = [asyncio.create_task(flood(collector.base, token, c, 60, 50, acked, pending,
                                             stop)) for c in range(4)]
        for _ in range(3000):  # kill once the flood is well under way
            if len(acked) >= 1500 or all(c.done() for c in clients):
                break
            await asyncio.sleep(0.01)
        collector.kill()
        stop.set()
        await asyncio.gather(*clients)
        acked_before_kill = set(acked)
        assert acked_before_kill, "the flood was acknowledged before the kill"
        assert pending, "some batches were in flight or unsent at the kill"

        collector.start()
        # Retry everything unacknowledged, plus a few acknowledged batches again.
        resend = pending + [sorted(acked_before_kill)[:50]]
        async with aiohttp.ClientSession() as session:
            for uids in resend:
                async with session.post(
                        collector.base + "/api/v1/measurements",
                        headers={"Authorization": f"Bearer {token}"},
                        json={"measurements": [measurement(u) for u in uids]}) as response:
                    assert response.status == 200
                    acked.update((await response.json())["stored"])
    finally:
        collector.stop()
    with sqlite3.connect(collector.database) as db:
        stored = [row[0] for row in db.execute("SELECT uid FROM measurements")]
    assert len(stored) == len(set(stored))
    assert acked_before_kill <= set(stored)
    assert set(stored) == acked
    assert len(stored) == 4 * 60 * 50
