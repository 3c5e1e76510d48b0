"""Platform checks and censor traces as jobs of the daemon: their own cadence, the same
semaphore, budget and spool as the sites, event windows, and traces only when allowed.

Real parts: the collector (control vantage and upload target) on a loopback port, HTTPS sites
with a test CA, the real platform checks and the real censor trace with raw sockets. Only time
is simulated (``VirtualClock``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import sqlite3
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme

from collector.config import CollectorConfig, Limits
from probe.cli import status
from probe.config.probe_config import Target
from probe.daemon import loop as probe_daemon
from probe.local import journal
from probe.netx import packet
from tests.helpers.collector import SwitchableCollector, issue_token
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_config, make_daemon
from tests.helpers.processes import without_net_raw
from tests.helpers.servers import SlowPages, page_app, serve_app, server_context
from tests.helpers.virtual_clock import VirtualClock
from tests.probe.daemon.test_heartbeat_answers import START as WINDOW_START
from tests.probe.daemon.test_heartbeat_answers import stand_in_collector

HOUR = 3600.0


def platforms_file(directory: Path, site_port: int, plain_port: int) -> str:
    """Telegram and YouTube, every endpoint on the loopback sites (HTTPS, and plain HTTP for
    the exchange with Telegram's data centres)."""
    path = directory / "platforms.yaml"
    path.write_text(json.dumps({
        "timeouts": {"dns": 1, "connect": 1, "tls": 1, "http": 2, "control": 5},
        "platforms": {
            "telegram": {"groups": {
                "datacenters": {"addresses": ["127.0.0.1"], "ports": [plain_port],
                                "exchange": "http", "need": "any"},
                "web": {"urls": [f"https://localhost:{site_port}/"]}}},
            "youtube": {"groups": {
                "web": {"urls": [f"https://localhost:{site_port}/"]},
                "api": {"addresses": ["127.0.0.1"], "ports": [site_port]}}},
        }}))
    return str(path)


def minutes(moment: datetime, stamp: str) -> float:
    taken = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    return (taken - moment).total_seconds() / 60


async def run_for(daemon: probe_daemon.Daemon, clock: VirtualClock, seconds: float) -> None:
    stop = asyncio.Event()

    async def finish() -> None:
        stop.set()

    clock.settle = daemon.settle
    clock.at(clock.elapsed + seconds, finish)
    await daemon.run(stop)


async def test_platforms_on_their_own_cadence_through_the_real_collector(
        fast_disk: Path, ca: trustme.CA, ca_file: str,
        collector_config: CollectorConfig) -> None:
    collector_config = dataclasses.replace(
        collector_config, limits=dataclasses.replace(Limits(), rate_per_minute=10**7))
    collector = SwitchableCollector(collector_config, free_port())
    token = await issue_token(collector_config, "p-platforms")
    await collector.start()
    # In the past, so the collector takes the measurements (it refuses the future).
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    clock = VirtualClock(start)
    try:
        async with serve_app(page_app(), server_context(ca, "localhost")) as port, \
                serve_app(page_app()) as plain:
            config = loopback_config(
                fast_disk, collector.base, token, [{"url": f"https://localhost:{port}/"}], port,
                ca_file=ca_file, control_url=collector.base,
                schedule={"interval": "1h", "jitter": 0.2},
                platforms={"file": platforms_file(fast_disk, port, plain), "interval": "30m"})
            daemon, db, spool = await make_daemon(config, fast_disk, clock=clock)
            await run_for(daemon, clock, 4 * HOUR)
            await db.close()
    finally:
        await collector.stop()

    telegram = [e for e in spool.recorded if e.test_name == "telegram"]
    youtube = [e for e in spool.recorded if e.test_name == "platform"]
    sites = [e for e in spool.recorded if e.test_name == "web_connectivity"]
    # Every 30 min +-20 % for four hours: about eight of each; the site hourly.
    assert 7 <= len(telegram) <= 10 and 7 <= len(youtube) <= 10, (len(telegram), len(youtube))
    assert 3 <= len(sites) <= 5
    assert {e.input for e in youtube} == {"youtube"} and {e.input for e in telegram} == {None}
    times = [minutes(start, e.start_time) for e in telegram]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert min(gaps) >= 24 - 1 / 60 and max(gaps) <= 36 + 1 / 60, gaps
    # The real check, with the real collector as control: everything answered.
    last = json.loads(telegram[-1].body)["test_keys"]
    assert last["analysis"]["verdict"] == "ok", last["analysis"]
    assert last["telegram_tcp_blocking"] is False and last["telegram_web_status"] == "ok"
    # Through the spool to the collector, exactly once.
    with sqlite3.connect(collector_config.database) as store:
        stored = dict(store.execute("SELECT uid, test_name FROM measurements"))
    assert {e.uid for e in telegram + youtube} <= set(stored)
    assert len(stored) == len(spool.recorded)
    # ``probe status`` lists the platforms beside the sites.
    report = status.gather(config, clock.now())
    assert report["recent"]["telegram"][0]["verdict"] == "ok"
    assert report["recent"]["youtube"][0]["verdict"] == "ok"


async def test_platform_endpoints_take_the_same_measurement_slots(fast_disk: Path) -> None:
    """Two slots: however many endpoints a platform has, no more than two fetches are ever
    under way at once, sites included, though ``run_once`` starts everything together."""
    pages = SlowPages(0.3)
    closed = f"http://127.0.0.1:{free_port()}"
    async with serve_app(pages.app) as port:
        file = fast_disk / "platforms.yaml"
        file.write_text(json.dumps({"platforms": {"x": {"groups": {
            "web": {"urls": [f"http://127.0.0.1:{port}/x{i}" for i in range(4)]}}}}}))
        config = loopback_config(fast_disk, closed, "t", [{"url": f"http://127.0.0.1:{port}/a"},
                                                          {"url": f"http://127.0.0.1:{port}/b"}],
                                 port, control_url=closed, schedule={"concurrency": 2},
                                 platforms={"file": str(file)})
        daemon, db, spool = await make_daemon(config, fast_disk)
        await daemon.run_once()
        await db.close()
    assert sorted(e.input or "" for e in spool.recorded if e.test_name != "connectivity") == [
        f"http://127.0.0.1:{port}/a", f"http://127.0.0.1:{port}/b", "x"]
    [platform] = [json.loads(e.body) for e in spool.recorded if e.input == "x"]
    assert len(platform["test_keys"]["x_endpoints"]) == 4
    assert pages.peak == 2


async def test_an_event_window_raises_the_platform_cadence(fast_disk: Path) -> None:
    received: dict[str, list[Any]] = {"heartbeats": [], "measurements": []}
    async with serve_app(stand_in_collector(received)) as port:
        base = f"http://127.0.0.1:{port}"
        file = fast_disk / "platforms.yaml"
        file.write_text(json.dumps({"platforms": {"tiktok": {"groups": {
            "web": {"urls": [f"http://127.0.0.1:{port}/tiktok"]}}}}}))
        config = loopback_config(fast_disk, base, "token", [], port, control_url=base,
                                 schedule={"jitter": 0.0, "event_speedup": 4.0},
                                 platforms={"file": str(file), "interval": "1h"})
        clock = VirtualClock(WINDOW_START)
        daemon, db, spool = await make_daemon(config, fast_disk, clock=clock)
        await run_for(daemon, clock, 6 * HOUR)
        await db.close()
    hours = [minutes(WINDOW_START, e.start_time) / 60 for e in spool.recorded
             if e.input == "tiktok"]
    inside = [h for h in hours if 2 <= h < 4]
    outside = [h for h in hours if h < 2 or h >= 4]
    # Hourly outside the window (about 2 + 2), every 15 minutes inside it (about 8).
    assert 7 <= len(inside) <= 9, hours
    assert 3 <= len(outside) <= 5, hours


async def test_a_restart_continues_the_platform_cadence(fast_disk: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    start = datetime(2026, 5, 9, tzinfo=UTC)
    async with serve_app(page_app()) as port:
        file = fast_disk / "platforms.yaml"
        file.write_text(json.dumps({"platforms": {"instagram": {"groups": {
            "web": {"urls": [f"http://127.0.0.1:{port}/"]}}}}}))
        config = loopback_config(fast_disk, closed, "t", [], port, control_url=closed,
                                 schedule={"jitter": 0.0},
                                 platforms={"file": str(file), "interval": "1h"})
        clock = VirtualClock(start)
        daemon, db, spool = await make_daemon(config, fast_disk, clock=clock)
        await run_for(daemon, clock, 20 * 60)
        await db.close()
        [first] = [e for e in spool.recorded if e.input == "instagram"]
        clock = VirtualClock(start + timedelta(minutes=20))
        daemon, db, spool = await make_daemon(config, fast_disk, clock=clock, seed=8)
        await run_for(daemon, clock, 2 * HOUR)
        await db.close()
    again = [e for e in spool.recorded if e.input == "instagram"]
    gap = minutes(start, again[0].start_time) - minutes(start, first.start_time)
    assert 60 - 1 / 60 <= gap <= 60 + 1 / 60


def require_raw_sockets() -> None:
    if packet.raw_socket_problem() is None:
        return
    reason = "needs CAP_NET_RAW (run as root): the censor trace reads raw sockets"
    if os.environ.get("CI") == "true":
        pytest.fail(f"must run in CI: {reason}")
    pytest.skip(reason)


def blocked_by_sni(url: str, config_targets: Callable[[Target, datetime], Any]
                   ) -> Callable[[Target, datetime], Any]:
    """The real web check, with ``url``'s verdict overwritten to a TLS reset.

    Loopback cannot make the probe and the control disagree (the namespace lab shows real
    blocking, tests/lab): here only the verdict is set, so that the daemon's reaction to it,
    planning a trace, is what is tested. Every other key is what the check observed.
    """

    async def measure(target: Target, started: datetime) -> dict[str, Any]:
        measurement: dict[str, Any] = await config_targets(target, started)
        if target.url == url:
            measurement["test_keys"]["analysis"] = {
                "verdict": "blocked", "layer": "tls", "mechanism": "reset", "confidence": 0.9,
                "evidence": ["stand_in"]}
        return measurement

    return measure


async def test_a_site_blocked_by_name_is_traced_within_the_limits(
        fast_disk: Path, ca: trustme.CA, ca_file: str) -> None:
    require_raw_sockets()
    closed = f"http://127.0.0.1:{free_port()}"
    start = datetime(2026, 5, 9, tzinfo=UTC)
    async with serve_app(page_app(), server_context(ca, "localhost")) as port:
        blocked = f"https://localhost:{port}/blocked"
        fine = f"https://localhost:{port}/fine"
        config = loopback_config(
            fast_disk, closed, "t", [{"url": blocked}, {"url": fine}], port, ca_file=ca_file,
            control_url=closed, schedule={"interval": "1h", "jitter": 0.0},
            censor_trace={"interval": "1h", "daily_max": 2, "max_ttl": 3,
                          "step_timeout": "300ms"})
        real_target, _ladder = probe_daemon.production_measures(config)
        clock = VirtualClock(start)
        daemon, db, spool = await make_daemon(config, fast_disk, clock=clock,
                                              measure_target=blocked_by_sni(blocked,
                                                                            real_target))
        await run_for(daemon, clock, 4.5 * HOUR)
        await db.close()
        first_run = [e for e in spool.recorded if e.test_name == "censor_trace"]

        # A restart the same day: today's two traces are remembered, none more.
        clock = VirtualClock(start + timedelta(hours=4.5))
        daemon, db, spool = await make_daemon(config, fast_disk, clock=clock,
                                              measure_target=blocked_by_sni(blocked,
                                                                            real_target))
        await run_for(daemon, clock, 3 * HOUR)
        saved = await daemon.journal.get(journal.CENSOR_TRACES)
        await db.close()
        second_run = [e for e in spool.recorded if e.test_name == "censor_trace"]
    # Blocked every hour; traced soon after the first block, not after the next one (the
    # interval counts from the trace, seconds after the block), then after the one after,
    # then the day's two are spent.
    assert len(first_run) == 2 and second_run == []
    assert {e.input for e in first_run} == {blocked}
    gap = minutes(start, first_run[1].start_time) - minutes(start, first_run[0].start_time)
    assert 2 * 60 - 1 <= gap <= 2 * 60 + 1
    # The real trace ran, to the address the measurement had connected to.
    keys = json.loads(first_run[0].body)["test_keys"]
    assert keys["address"] == "127.0.0.1" and keys["failure"] is None
    assert [h["response"] for h in keys["control_hops"]] == ["data"]
    assert keys["analysis"]["verdict"] == "ok"  # loopback: nothing between probe and server
    assert saved == "2026-05-09 2"
    report = status.gather(config, start + timedelta(hours=8))
    assert report["recent"][f"trace:{blocked}"][0]["verdict"] == "ok"
    assert report["recent"][blocked][0]["verdict"] == "blocked"  # its own verdict, apart


async def test_no_trace_without_raw_sockets(fast_disk: Path, ca: trustme.CA, ca_file: str,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """The daemon asks ``raw_capable`` once at start; a root test process cannot lose
    CAP_NET_RAW for one test, so the answer is given here (the check itself is proven in
    tests/probe/netx/test_packet.py and below, in a process without the capability)."""
    closed = f"http://127.0.0.1:{free_port()}"
    async with serve_app(page_app(), server_context(ca, "localhost")) as port:
        blocked = f"https://localhost:{port}/blocked"
        config = loopback_config(fast_disk, closed, "t", [{"url": blocked}], port,
                                 ca_file=ca_file, control_url=closed,
                                 schedule={"interval": "1h"})
        real_target, _ladder = probe_daemon.production_measures(config)
        clock = VirtualClock(datetime(2026, 5, 9, tzinfo=UTC))
        daemon, db, spool = await make_daemon(
            config, fast_disk, clock=clock, raw_capable=lambda: False,
            measure_target=blocked_by_sni(blocked, real_target))
        with caplog.at_level(logging.INFO, logger="probe.daemon.loop"):
            await run_for(daemon, clock, 3 * HOUR)
        await db.close()
    assert [e for e in spool.recorded if e.input == blocked]
    assert not [e for e in spool.recorded if e.test_name == "censor_trace"]
    assert "censor traces off: no CAP_NET_RAW" in caplog.text


async def test_the_capability_check_without_cap_net_raw() -> None:
    command = [sys.executable, "-c",
               "from probe.daemon.loop import raw_sockets_allowed; import sys; "
               "print(raw_sockets_allowed(), any('scapy' in m for m in sys.modules))"]
    command = without_net_raw(command)
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    out, _ = await process.communicate()
    # No capability, and finding that out did not load scapy.
    assert out.decode().split() == ["False", "False"]
