"""A list the operator changes at the collector reaches a running probe at its next heartbeat:
the real collector announces the version of the lists it serves the probe's country, and the
daemon (on a virtual clock, over real loopback HTTP) fetches them and measures the new target
from then on, and the dropped one no more."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import yaml

from collector.config import CollectorConfig, TargetListsConfig
from probe.config import probe_config, target_sync
from tests.helpers.collector import SwitchableCollector, issue_token
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_data, make_daemon
from tests.helpers.servers import page_app, serve_app
from tests.helpers.virtual_clock import VirtualClock

START = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
EDIT_AT = 2 * 3600.0  # the operator's edit, two hours into the run
END = 5 * 3600.0


async def test_a_changed_list_is_measured_after_the_next_heartbeat(
        fast_disk: Path, collector_config: CollectorConfig) -> None:
    async with serve_app(page_app()) as port:
        first, second = f"http://127.0.0.1:{port}/first", f"http://127.0.0.1:{port}/second"
        lists = fast_disk / "served"
        (lists / "curated").mkdir(parents=True)
        country = lists / "kg.csv"
        country.write_text(f"url,category,cc\n{first},NEWS,KG\n")
        (lists / "curated" / "global.csv").write_text("url,category,cc\n")
        config = dataclasses.replace(collector_config, target_lists=TargetListsConfig(
            directory=str(lists)))
        collector = SwitchableCollector(config, free_port())
        token = await issue_token(config, "kg-refresh")
        data = loopback_data(fast_disk, collector.base, token, [], port,
                             schedule={"interval": "1h", "jitter": 0.0})
        path = fast_disk / "probe.yaml"
        path.write_text(yaml.safe_dump(data))
        await collector.start()
        try:
            loaded = probe_config.load(path)
            assert "fetched version" in await target_sync.refresh(loaded, token)  # as at start
            loaded = probe_config.load(path)
            assert [t.url for t in loaded.targets] == [first]
            clock = VirtualClock(START)
            daemon, db, spool = await make_daemon(loaded, fast_disk, clock=clock,
                                                  config_path=str(path))
            clock.settle = daemon.settle
            stop = asyncio.Event()

            async def edit() -> None:
                country.write_text(f"url,category,cc\n{second},NEWS,KG\n")

            async def finish() -> None:
                stop.set()

            clock.at(EDIT_AT, edit)
            clock.at(END, finish)
            await daemon.run(stop)
            await db.close()
        finally:
            await collector.stop()

    def hours(url: str) -> list[float]:
        return sorted((datetime.strptime(e.start_time, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
                       - START).total_seconds() / 3600
                      for e in spool.recorded if e.input == url)

    measured_first, measured_second = hours(first), hours(second)
    assert measured_first and max(measured_first) < EDIT_AT / 3600 + 0.1, measured_first
    # The new target is measured within the heartbeat interval of the edit plus its own
    # first delay (at most one interval), and then hourly.
    assert measured_second and min(measured_second) < EDIT_AT / 3600 + 1.1, measured_second
    assert len(measured_second) >= 2
    assert daemon.targets.keys() == {second}
    kept = target_sync.describe(loaded)
    assert kept["source"] == "collector" and kept["version"] == \
        target_sync.cached_version(loaded)
