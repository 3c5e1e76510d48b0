"""A day without the collector: the probe keeps measuring, spools everything, and once the
collector is back every measurement arrives exactly once, with its original timestamp.

Real parts: the collector (its aiohttp app and SQLite store) on a loopback port, an HTTPS
site with a test CA, the daemon with its SQLite spool. Only time is simulated
(``VirtualClock``): 26 hours pass in seconds, the collector is away from hour 1 to hour 25.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trustme

from collector.config import CollectorConfig, Limits
from collector.keys import registry_key
from tests.helpers.collector import SwitchableCollector, issue_token
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_config, make_daemon
from tests.helpers.servers import page_app, serve_app, server_context
from tests.helpers.virtual_clock import VirtualClock

HOUR = 3600.0


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


async def test_a_day_without_collector_loses_nothing_and_duplicates_nothing(
        tmp_path: Path, fast_disk: Path, ca: trustme.CA, ca_file: str,
        collector_config: CollectorConfig) -> None:
    # The collector's rate limit counts real seconds; the backlog of a simulated day arrives
    # within a few real ones, so it is lifted here (rate limiting has its own tests).
    collector_config = dataclasses.replace(
        collector_config, limits=dataclasses.replace(Limits(), rate_per_minute=10**7))
    collector = SwitchableCollector(collector_config, free_port())
    token = await issue_token(collector_config, "p-blackout")
    apps = []

    async def collector_up() -> None:
        await collector.start()
        apps.append(collector.app)

    await collector_up()
    # Timestamps must be in the past for the collector (it refuses the future), so the
    # simulated day starts 28 real hours ago.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=28)
    clock = VirtualClock(start)
    stop = asyncio.Event()

    async def finish() -> None:
        stop.set()

    try:
        async with serve_app(page_app(), server_context(ca, "localhost")) as site_port:
            targets = [{"url": f"https://localhost:{site_port}/"},
                       {"url": f"https://localhost:{site_port}/news", "interval": "15m"}]
            config = loopback_config(fast_disk, collector.base, token, targets, site_port,
                                     ca_file=ca_file, control_url=collector.base,
                                     schedule={"interval": "15m"})
            daemon, db, spool = await make_daemon(config, fast_disk, clock=clock)
            clock.settle = daemon.settle
            clock.at(1 * HOUR, collector.stop)
            clock.at(25 * HOUR, collector_up)
            clock.at(26 * HOUR, finish)
            await daemon.run(stop)
            counters = await spool.counters()
            depth = await spool.depth()
            await db.close()
    finally:
        await collector.stop()

    recorded = {e.uid: e for e in spool.recorded}
    assert len(recorded) > 26 * 60, "the probe measured far less than a day's worth"
    assert len(recorded) == len(spool.recorded), "the probe made two measurements with one uid"
    with sqlite3.connect(collector_config.database) as store:
        stored = dict(store.execute("SELECT uid, start_time FROM measurements").fetchall())
        heartbeats = [row[0] for row in store.execute(
            "SELECT sent_at FROM heartbeats ORDER BY sent_at")]

    # Exactly once: every measurement is stored, none twice, none unknown, and the probe's
    # counters agree; nothing was evicted, nothing is left behind.
    assert set(stored) == set(recorded)
    duplicates = sum(app[registry_key].get_sample_value("kuzot_measurements_duplicate_total")
                     or 0.0 for app in apps)
    assert duplicates == 0.0
    assert counters["enqueued"] == counters["uploaded"] == len(recorded)
    assert counters["evicted"] == 0 and counters["quarantined"] == 0
    assert depth.measurements == 0
    # Original timestamps: the collector keeps the time of measuring, not of uploading.
    assert all(stored[uid] == entry.start_time for uid, entry in recorded.items())

    away_from, away_until = stamp(start + timedelta(hours=1)), stamp(start + timedelta(hours=25))
    during = [e for e in recorded.values() if away_from <= e.start_time < away_until]
    # The connectivity ladder ran every minute during the blackout ...
    ladder = sorted(datetime.strptime(e.start_time, "%Y-%m-%d %H:%M:%S")
                    for e in during if e.test_name == "connectivity")
    gaps = {(b - a).total_seconds() for a, b in zip(ladder, ladder[1:], strict=False)}
    assert len(ladder) >= 24 * 60 - 2
    assert gaps <= {59.0, 60.0, 61.0}, sorted(gaps)[-3:]
    # ... and each site was still measured on its cadence (15 min +-20 % jitter).
    for target in targets:
        count = sum(1 for e in during if e.input == target["url"])
        assert 24 * 4 * 0.8 <= count <= 24 * 4 * 1.25, (target, count)
    # Heartbeats: every 60 s while the collector was there, none while it was away.
    assert heartbeats and not [h for h in heartbeats if
                               stamp(start + timedelta(hours=1, minutes=1)) < h < away_until]
    before = [h for h in heartbeats if h < away_from]
    assert len(before) == 60
    after = [h for h in heartbeats if h >= away_until]
    assert 59 <= len(after) <= 61
