"""The scheduler inside the daemon: per-target cadence, the concurrency bound, and a cadence
that carries over a restart. Real loopback sites, simulated time."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from probe.core.measurement import envelope
from probe.nettests.connectivity.ladder import summarise
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_config, make_daemon
from tests.helpers.servers import SlowPages, page_app, serve_app
from tests.helpers.virtual_clock import VirtualClock

START = datetime(2026, 5, 9, 0, 0, tzinfo=UTC)


async def run_for(daemon: object, clock: VirtualClock, seconds: float) -> None:
    stop = asyncio.Event()

    async def finish() -> None:
        stop.set()

    clock.settle = daemon.settle  # type: ignore[attr-defined]
    clock.at(clock.elapsed + seconds, finish)
    await daemon.run(stop)  # type: ignore[attr-defined]


def seconds_since(start: datetime, stamp: str) -> float:
    moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return (moment - start).total_seconds()


async def test_each_target_keeps_its_own_cadence(fast_disk: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async with serve_app(page_app()) as port:
        targets = [{"url": f"http://127.0.0.1:{port}/often", "interval": "10m"},
                   {"url": f"http://127.0.0.1:{port}/hourly"}]
        config = loopback_config(fast_disk, closed, "t", targets, port, control_url=closed,
                                 schedule={"interval": "1h", "jitter": 0.2})
        clock = VirtualClock(START)
        daemon, db, spool = await make_daemon(config, fast_disk, clock=clock)
        await run_for(daemon, clock, 6 * 3600)
        await db.close()
    often = [e for e in spool.recorded if e.input == targets[0]["url"]]
    hourly = [e for e in spool.recorded if e.input == targets[1]["url"]]
    assert 30 <= len(often) <= 45
    assert 5 <= len(hourly) <= 8
    gaps = [seconds_since(START, b.start_time) - seconds_since(START, a.start_time)
            for a, b in zip(often, often[1:], strict=False)]
    assert min(gaps) >= 480 - 1 and max(gaps) <= 720 + 1  # 10 min +- 20 %
    assert len(set(gaps)) > 3  # jittered, not a fixed beat


async def test_no_more_measurements_at_once_than_the_concurrency(fast_disk: Path) -> None:
    pages = SlowPages(0.2)
    closed = f"http://127.0.0.1:{free_port()}"
    async with serve_app(pages.app) as port:
        targets = [{"url": f"http://127.0.0.1:{port}/{i}"} for i in range(6)]
        config = loopback_config(fast_disk, closed, "t", targets, port, control_url=closed,
                                 schedule={"concurrency": 2})
        daemon, db, spool = await make_daemon(config, fast_disk)
        await daemon.run_once()
        await db.close()
    assert len([e for e in spool.recorded if e.test_name == "web_connectivity"]) == 6
    assert pages.peak == 2


async def test_run_once_stops_where_the_data_budget_ends(fast_disk: Path) -> None:
    """A first run on a metered link: groups of ``concurrency`` targets, the budget checked
    before each; with no cap, the same run measures everything."""
    closed = f"http://127.0.0.1:{free_port()}"
    counts = {}
    async with serve_app(page_app()) as port:
        targets = [{"url": f"http://127.0.0.1:{port}/{i}"} for i in range(8)]
        for name, daily_mb in (("capped", 0.0001), ("free", None)):
            directory = fast_disk / name
            directory.mkdir()
            config = loopback_config(directory, closed, "t", targets, port, control_url=closed,
                                     schedule={"concurrency": 2}, budget={"daily_mb": daily_mb})
            daemon, db, spool = await make_daemon(config, directory)
            await daemon.run_once()
            await db.close()
            counts[name] = (len([e for e in spool.recorded
                                 if e.test_name == "web_connectivity"]),
                            daemon.skipped_budget)
    measured, skipped = counts["capped"]
    assert measured <= 2 and measured + skipped == 8, counts
    assert counts["free"] == (8, 0)


async def test_the_log_has_one_summary_line_an_hour(fast_disk: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    closed = f"http://127.0.0.1:{free_port()}"

    async with serve_app(page_app()) as port:
        targets = [{"url": f"http://127.0.0.1:{port}/a", "interval": "20m"}]
        config = loopback_config(fast_disk, closed, "t", targets, port, control_url=closed,
                                 schedule={"interval": "1h", "jitter": 0.0})
        clock = VirtualClock(START)
        daemon, db, spool = await make_daemon(config, fast_disk, clock=clock)
        caplog.set_level(logging.INFO, logger="probe.daemon")

        async def blocked() -> None:
            # What a blocked site's verdict leaves behind (the site itself is on loopback).
            daemon.latest["https://kloop.kg/"] = "blocked"

        clock.at(clock.elapsed + 10, blocked)
        await run_for(daemon, clock, 2 * 3600 + 60)
        await db.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("last hour")]
    assert len(lines) == 2, lines
    counts = []
    for line in lines:
        match = re.fullmatch(r"last hour: (\d+) measurements; blocked or throttled now: "
                             r"(.+); ([0-9.]+) MB used today of 100 MB; (\d+) measurements "
                             r"waiting for upload", line)
        assert match, line
        # The site every 20 min; the ladder every minute while the collector does not answer.
        counts.append(int(match.group(1)))
        assert match.group(2) == "https://kloop.kg/"
        assert int(match.group(4)) > 0  # the collector never answered
    # Each line counts its own hour, not everything since the start.
    assert counts[0] >= 3 and abs(counts[1] - counts[0]) <= counts[0] // 4, counts


async def test_a_restart_continues_the_cadence(fast_disk: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async with serve_app(page_app()) as port:
        url = f"http://127.0.0.1:{port}/"
        config = loopback_config(fast_disk, closed, "t", [{"url": url}], port,
                                 control_url=closed, schedule={"interval": "1h", "jitter": 0.0})
        clock = VirtualClock(START)
        daemon, db, spool = await make_daemon(config, fast_disk, clock=clock)
        await run_for(daemon, clock, 20 * 60)
        await db.close()
        [first] = [e for e in spool.recorded if e.input == url]

        # Back 20 minutes later (a reboot): the site is due one hour after it was measured,
        # not again right away.
        clock = VirtualClock(START + timedelta(minutes=20))
        daemon, db, spool = await make_daemon(config, fast_disk, clock=clock, seed=8)
        await run_for(daemon, clock, 2 * 3600)
        await db.close()
    again = [e for e in spool.recorded if e.input == url]
    elapsed = seconds_since(START, again[0].start_time) - seconds_since(START, first.start_time)
    assert 3600 - 1 <= elapsed <= 3600 + 1


async def test_stop_lets_running_measurements_finish_within_the_grace(fast_disk: Path) -> None:
    """Real time here: a stop arrives while a slow site is being measured."""
    started = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        started.set()
        await asyncio.sleep(float(request.query.get("delay", "0")))
        return web.Response(text="<title>slow</title>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", slow)
    closed = f"http://127.0.0.1:{free_port()}"
    results: dict[float, list[str | None]] = {}
    async with serve_app(app) as port:
        for delay, grace in ((0.5, 5.0), (2.5, 0.3)):
            url = f"http://127.0.0.1:{port}/?delay={delay}"
            directory = fast_disk / f"run-{delay}"
            directory.mkdir()
            config = loopback_config(directory, closed, "t", [{"url": url}], port,
                                     control_url=closed,
                                     schedule={"interval": "1s"}, timeouts={"http": 10})
            daemon, db, spool = await make_daemon(config, directory, grace=grace)
            stop = asyncio.Event()
            started.clear()
            running = asyncio.create_task(daemon.run(stop))
            await asyncio.wait_for(started.wait(), 10)
            stop.set()
            await asyncio.wait_for(running, 15)
            results[delay] = [e.input for e in spool.recorded if e.input == url]
            await db.close()
    # Short enough: it finished during the grace and was spooled, not lost.
    assert results[0.5] == [f"http://127.0.0.1:{port}/?delay=0.5"]
    # Longer than the grace: cancelled rather than waited for (had the daemon waited, the
    # measurement would have completed and been spooled), so a stop stays prompt.
    assert results[2.5] == []


def ladder_reporting(clock: VirtualClock, online_after: float, domestic: bool
                     ) -> Callable[[datetime], Awaitable[dict[str, Any]]]:
    """The ladder's measurement as the real ladder writes it, for a network that is dead
    until ``online_after`` seconds. (A dead network cannot be built on loopback alone: a
    refused connection counts as reachable. The real offline ladder runs in the lab test
    ``tests/probe/nettests/connectivity/test_connectivity.py``.)"""

    async def ladder(started: datetime) -> dict[str, Any]:
        alive = clock.elapsed >= online_after
        rungs = {"gateway": {"reachable": True, "failure": None},
                 "foreign": {"reachable": alive, "reached": int(alive), "tried": 1,
                             "failure": None if alive else "generic_timeout_error"},
                 "domestic": {"reachable": domestic, "reached": int(domestic), "tried": 1,
                              "failure": None if domestic else "generic_timeout_error"}}
        observation = {"rungs": rungs, "gateway_known": True}
        online, sentence = summarise(observation)
        return envelope(test_name="connectivity", input_=None, started=started, runtime=0.0,
                        test_keys={**observation,
                                   "analysis": {"online": online, "summary": sentence}})

    return ladder


async def test_sites_wait_while_nothing_answers_and_resume_when_it_does(
        fast_disk: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    counts = {}
    async with serve_app(page_app()) as port:
        for domestic in (False, True):
            directory = fast_disk / f"domestic-{domestic}"
            directory.mkdir()
            url = f"http://127.0.0.1:{port}/"
            config = loopback_config(directory, closed, "t", [{"url": url}], port,
                                     control_url=closed, schedule={"interval": "10m"})
            clock = VirtualClock(START)
            daemon, db, spool = await make_daemon(
                config, directory, clock=clock,
                measure_ladder=ladder_reporting(clock, 3600.0, domestic))
            await run_for(daemon, clock, 2 * 3600)
            await db.close()
            times = [seconds_since(START, e.start_time) for e in spool.recorded
                     if e.input == url]
            counts[domestic] = (times, daemon.skipped_offline)
    # No connectivity at all and no collector: the site waits (and the skips are counted)...
    times, skipped = counts[False]
    assert times and min(times) >= 3600 and skipped >= 5
    assert min(times) <= 3600 + 300  # ... and is measured within minutes of the return
    # An international cut (domestic hosts answer): sites are measured throughout.
    times, skipped = counts[True]
    assert min(times) < 600 and skipped == 0


async def test_throttling_rounds_are_asked_for_hourly_and_spooled(fast_disk: Path) -> None:
    """The throttling test keeps its own cadence (probe.nettests.throttling.run); the daemon asks it
    every hour, under a measurement slot, and spools what it returns. Its measurement is
    stood in here by a function that answers like it (the test itself is proven in
    tests/probe/nettests/throttling)."""
    closed = f"http://127.0.0.1:{free_port()}"
    asked: list[float] = []
    clock = VirtualClock(START)

    async def throttling() -> list[dict[str, Any]]:
        asked.append(clock.elapsed)
        keys = {"analysis": {"verdict": "ok", "layer": None, "mechanism": None,
                             "confidence": 0.5, "evidence": []}}
        return [envelope(test_name="throttling", input_="https://kloop.kg/", test_keys=keys,
                         started=clock.now(), runtime=1.0, cc="KG", asn="AS8449")]

    async with serve_app(page_app()) as port:
        config = loopback_config(fast_disk, closed, "t", [], port, control_url=closed,
                                 throttling={"enabled": True})
        daemon, db, spool = await make_daemon(config, fast_disk, clock=clock,
                                              measure_throttling=throttling)
        await run_for(daemon, clock, 3 * 3600 - 1)  # asks at d, d+1h, d+2h (d <= 5 min)
        await db.close()
    assert len(asked) == 3
    assert [b - a for a, b in zip(asked, asked[1:], strict=False)] == [3600.0, 3600.0]
    assert [e.test_name for e in spool.recorded].count("throttling") == 3
