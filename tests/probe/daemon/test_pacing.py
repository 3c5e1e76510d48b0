"""The day's data budget is spread over the day, the sites that matter first: the policy on
its own (``probe.daemon.pacing``), and the daemon living a whole virtual day against real loopback
pages with a budget far below what its lists would cost."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from probe.config.probe_config import Target
from probe.daemon import pacing, traffic
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_config, make_daemon
from tests.helpers.servers import page_app, serve_app
from tests.helpers.virtual_clock import VirtualClock

CURATED = Target(url="https://kloop.kg/", category="NEWS", cc="KG")
NEWS_DAILY = Target(url="https://24.kg/", category="NEWS", cc="KG", interval=86400.0)
TAIL = Target(url="http://hoster.kg/", category="HOST", cc="KG", interval=86400.0)
TAIL_GLOBAL = Target(url="https://example.com/", category="CULTR", cc="*", interval=86400.0)
BASELINE = Target(url="https://baseline.kg/", category="HOST", cc="KG", interval=86400.0,
                  role="baseline")
MB = 1_000_000


@pytest.mark.parametrize("target, window, expected", [
    (CURATED, False, True),        # no interval of its own: the config's cadence
    (NEWS_DAILY, False, True),     # a watched category
    (BASELINE, False, True),       # baselines and canaries keep their comparisons whole
    (TAIL, False, False),
    (TAIL, True, True),            # an event window raises the country's own list
    (TAIL_GLOBAL, True, False),    # but not the global one
])
def test_what_counts_as_priority(target: Target, window: bool, expected: bool) -> None:
    assert pacing.is_priority(target, "KG", window) is expected


@pytest.mark.parametrize("target, used, hour, expected", [
    (TAIL, 0, 0.0, True),                 # a new day: the first hour's share is free
    (TAIL, 5 * MB, 0.5, False),           # 5 MB by 00:30 is ahead of an even spend
    (TAIL, 40 * MB, 12.0, True),          # 40 MB by noon is behind it
    (TAIL, 60 * MB, 12.0, False),
    (CURATED, 60 * MB, 12.0, True),       # priority may run ahead: 12.5 MB at noon
    (CURATED, 63 * MB, 12.0, False),
    (CURATED, 25 * MB, 0.0, True),        # 25 MB at midnight, none by the end of the day
    (CURATED, 26 * MB, 0.0, False),
    (CURATED, 99 * MB, 23.9, True),
    (CURATED, 100 * MB, 23.9, False),     # the budget itself is never crossed on purpose
    (TAIL, 100 * MB, 23.9, False),
])
def test_the_pace(target: Target, used: int, hour: float, expected: bool) -> None:
    assert pacing.may_measure(target, "KG", False, 100 * MB, used, hour * 3600) is expected


def test_without_a_budget_everything_goes() -> None:
    assert pacing.may_measure(TAIL, "KG", False, None, 10**12, 60.0)


BIG_PAGE = "<html><head><title>big</title></head><body>" + "x" * 100_000 + "</body></html>"


async def test_a_day_on_a_small_budget_keeps_the_priority_sites_measured_until_night(
        fast_disk: Path) -> None:
    """Two curated sites hourly and twenty daily tail sites, ~130 kB each, on a 5 MB budget
    of which the connectivity ladder (every minute: no collector answers here) takes about
    half: unpaced, the first hours spend it and the probe is blind by the afternoon. Paced,
    the curated sites are still measured in the evening, the tail gets its share in
    rotation, and the day stays within the budget."""
    closed = free_port()
    async with serve_app(page_app(BIG_PAGE)) as port:
        curated = [{"url": f"http://localhost:{port}/curated-{i}", "category": "NEWS"}
                   for i in range(2)]
        tail = [{"url": f"http://localhost:{port}/tail-{i}", "category": "HOST",
                 "interval": "24h"} for i in range(20)]
        config = loopback_config(fast_disk, f"http://127.0.0.1:{closed}", "t",
                                 curated + tail, port, control_url=f"http://127.0.0.1:{closed}",
                                 schedule={"interval": "1h"}, budget={"daily_mb": 5.0})
        clock = VirtualClock(datetime(2026, 3, 1, 0, 0, 30, tzinfo=UTC))
        daemon, db, spool = await make_daemon(config, fast_disk, clock=clock)
        clock.settle = daemon.settle
        stop = asyncio.Event()

        async def finish() -> None:
            stop.set()

        clock.at(24 * 3600.0 - 60, finish)
        await daemon.run(stop)
        await db.close()

    web = [e for e in spool.recorded if e.test_name == "web_connectivity"]

    def hours(part: str) -> list[int]:
        return [int(e.start_time[11:13]) for e in web if e.input and part in e.input]

    curated_hours, tail_hours = hours("/curated-"), hours("/tail-")
    assert max(curated_hours) >= 18, curated_hours  # still watched in the evening
    assert len(set(curated_hours)) >= 8, curated_hours  # through the day, not one burst
    assert tail_hours, "the tail gets a share"
    assert len(tail_hours) < len(curated_hours) * 2
    # The sites' own cost stays within the budget (the ladder goes on whatever the budget).
    assert sum(traffic.estimate(json.loads(e.body)) for e in web) <= 5 * MB
    assert daemon.skipped_pace > 0
