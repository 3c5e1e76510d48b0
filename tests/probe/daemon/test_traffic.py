"""The data budget: the traffic estimate (a pure function, on a table and on a real
measurement) and the daemon stopping site measurements once the day's budget is spent."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from probe.daemon import traffic
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_config, make_daemon
from tests.helpers.servers import page_app, serve_app
from tests.helpers.virtual_clock import VirtualClock

BIG_PAGE = "<html><head><title>big</title></head><body>" + "x" * 100_000 + "</body></html>"


@pytest.mark.parametrize(("measurement", "low", "high"), [
    ({"test_name": "web_connectivity", "test_keys": {
        "queries": [{}, {}], "tcp_connect": [{}, {}],
        "tls_handshakes": [{"failure": None}, {"failure": "connection_reset"}],
        "requests": [{"request": {}, "response": {"body_length": 50_000},
                      "x_bytes_received": 50_500}],
        "control": {"dns": {"addrs": ["1.2.3.4"]}}}}, 50_500 + 6_000, 50_500 + 12_000),
    ({"test_name": "web_connectivity", "test_keys": {"queries": [{}], "requests": []}},
     traffic.FLOOR, 1_000),
    ({"test_name": "connectivity", "test_keys": {"rungs": {
        "gateway": {"reachable": True}, "foreign": {"tried": 3}}}}, 1_000, 1_500),
    ({"test_name": "throttling", "test_keys": {"transfers": [
        {"request": {}, "x_bytes_received": 400_000}, {"request": {}, "x_bytes_received": 0}]}},
     400_000, 405_000),
    ({"test_name": "anything", "test_keys": "not an object"}, traffic.FLOOR, traffic.FLOOR),
    # A censor trace: a connection and a request per step, both passes.
    ({"test_name": "censor_trace", "test_keys": {
        "queries": [{}], "control_hops": [{}] * 8, "trigger_hops": [{}] * 6}}, 14 * 1_000,
     14 * 2_000),
])
def test_estimate_counts_what_was_received_plus_overheads(measurement: dict[str, object],
                                                          low: int, high: int) -> None:
    assert low <= traffic.estimate(measurement) <= high


async def test_the_day_budget_stops_sites_but_not_the_ladder(fast_disk: Path) -> None:
    closed = free_port()  # no collector at all: this test is about measuring, not uploading
    async with serve_app(page_app(BIG_PAGE)) as port:
        targets = [{"url": f"http://localhost:{port}/a"}, {"url": f"http://localhost:{port}/b"}]
        config = loopback_config(fast_disk, f"http://127.0.0.1:{closed}", "t", targets, port,
                                 control_url=f"http://127.0.0.1:{closed}",
                                 schedule={"interval": "10m"}, budget={"daily_mb": 0.5})
        clock = VirtualClock(datetime(2026, 3, 1, 22, 0, tzinfo=UTC))
        daemon, db, spool = await make_daemon(config, fast_disk, clock=clock)
        clock.settle = daemon.settle
        stop = asyncio.Event()

        async def finish() -> None:
            stop.set()

        clock.at(4 * 3600.0, finish)
        await daemon.run(stop)
        await db.close()

    web = [e for e in spool.recorded if e.test_name == "web_connectivity"]
    first_day = [e for e in web if e.start_time < "2026-03-02"]
    second_day = [e for e in web if e.start_time >= "2026-03-02"]
    with sqlite3.connect(config.spool_path) as local:
        usage = dict((day, (used, skipped)) for day, used, skipped in local.execute(
            "SELECT day, bytes, skipped FROM usage"))
    used, skipped = usage["2026-03-01"]
    # Two hours at two targets every ten minutes would be ~24 measurements of >100 kB each;
    # the budget of 0.5 MB stops them after a handful, and only then.
    assert 3 <= len(first_day) <= 6
    assert skipped >= 10
    assert 500_000 <= used <= 500_000 + 2 * 130_000
    # A new UTC day, a new budget (spread over the new day: probe.daemon.pacing lets the first two
    # hours spend about a third of it).
    assert len(second_day) >= 2
    # The ladder never stopped: every minute (the collector never answered).
    ladder = [e for e in spool.recorded if e.test_name == "connectivity"]
    assert len(ladder) >= 4 * 60 - 2
    # Each site measurement cost at least the page it downloaded.
    assert all(traffic.estimate(json.loads(entry.body)) >= 100_000 for entry in web)
