"""The daemon's clock check: a device without a real-time clock, compared with the collector's
HTTP ``Date``. Measurements keep their own timestamps; the offset, or the lack of a check,
travels with them as annotations, and ``probe status`` shows it.

Real parts: the collector on a loopback port, sites, the daemon with its spool. Time is
simulated (``VirtualClock``), which also makes the device's clock wrong on purpose. The
collector's ``Date`` is real time, and simulated time runs faster than real time: the
offset the probe measures shrinks by a simulated second per simulated second, and the
expected offsets below account for that. The last test uses a stand-in collector whose
``Date`` follows the simulated clock, for exact offsets around a jump of the clock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import sqlite3
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from collector.config import CollectorConfig, Limits
from collector.store.body import unpack
from probe.cli import status
from probe.local import journal
from tests.helpers.collector import SwitchableCollector, issue_token
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_config, make_daemon
from tests.helpers.servers import page_app, serve_app
from tests.helpers.virtual_clock import VirtualClock

HOUR = 3600.0


def taken(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def collector_documents(config: CollectorConfig) -> dict[str, dict[str, Any]]:
    with sqlite3.connect(config.database) as store:
        return {uid: json.loads(unpack(body)) for uid, body in
                store.execute("SELECT uid, body FROM measurements")}


def unlimited(config: CollectorConfig) -> CollectorConfig:
    """The collector's rate limit counts real seconds; simulated hours arrive in a few."""
    return dataclasses.replace(config, limits=dataclasses.replace(Limits(),
                                                                  rate_per_minute=10**7))


async def test_a_clock_hours_behind_is_measured_and_travels_with_each_measurement(
        fast_disk: Path, collector_config: CollectorConfig) -> None:
    collector_config = unlimited(collector_config)
    collector = SwitchableCollector(collector_config, free_port())
    token = await issue_token(collector_config, "p-clock")
    await collector.start()
    real = datetime.now(UTC)
    start = real.replace(microsecond=0) - timedelta(hours=3)  # the device is 3 h behind
    clock = VirtualClock(start)
    stop = asyncio.Event()

    async def finish() -> None:
        stop.set()

    try:
        async with serve_app(page_app()) as port:
            config = loopback_config(fast_disk, collector.base, token,
                                     [{"url": f"http://127.0.0.1:{port}/"}], port,
                                     control_url=collector.base,
                                     schedule={"interval": "5m", "upload_interval": "1m"})
            daemon, db, spool = await make_daemon(config, fast_disk, clock=clock)
            clock.settle = daemon.settle
            clock.at(40 * 60, finish)
            await daemon.run(stop)
            state = await daemon.journal.state()
            await db.close()
    finally:
        await collector.stop()
    elapsed_real = (datetime.now(UTC) - real).total_seconds()

    stored = collector_documents(collector_config)
    assert set(stored) == {e.uid for e in spool.recorded} and len(stored) >= 15
    for entry in spool.recorded:
        document = stored[entry.uid]
        # The original time, never rewritten: three hours before the collector's clock.
        assert document["measurement_start_time"] == entry.start_time
        since_start = (taken(entry.start_time) - start).total_seconds()
        # Checked at most a minute before (heartbeats), or just after for the first ones;
        # +-2 s: the start lost its fraction of a second, Date its half second.
        expected = 3 * HOUR - since_start
        offset = float(document["annotations"]["clock_offset_s"])
        assert expected - 2 <= offset <= expected + 60 + 2 + elapsed_real, (entry, offset)
    assert state[journal.CLOCK_STATUS] == "off"
    assert 3 * HOUR - 40 * 60 - 2 <= float(state[journal.CLOCK_OFFSET]) <= 3 * HOUR
    report = status.gather(config, clock.now())
    assert report["clock"]["status"] == "off"
    assert "behind the collector's" in status.render(report, clock.now())


async def test_a_reboot_during_a_shutdown_leaves_the_clock_unverified_until_the_collector_answers(
        fast_disk: Path, collector_config: CollectorConfig) -> None:
    """A Pi restarts with the time it saved a day ago and no NTP: the collector is away for
    the first two hours. Measurements of those hours are marked unverified, and once the
    collector answers they get the offset too, before they are uploaded."""
    collector_config = unlimited(collector_config)
    collector = SwitchableCollector(collector_config, free_port())
    token = await issue_token(collector_config, "p-reboot")
    real = datetime.now(UTC)
    start = real.replace(microsecond=0) - timedelta(days=1)
    clock = VirtualClock(start)
    stop = asyncio.Event()
    during: dict[str, Any] = {}

    async def finish() -> None:
        stop.set()

    try:
        async with serve_app(page_app()) as port:
            config = loopback_config(fast_disk, collector.base, token,
                                     [{"url": f"http://127.0.0.1:{port}/"}], port,
                                     control_url=collector.base,
                                     schedule={"interval": "10m"})
            daemon, db, spool = await make_daemon(config, fast_disk, clock=clock)

            async def look() -> None:
                report = status.gather(config, clock.now())
                during["status"] = report["clock"]["status"]
                during["text"] = status.render(report, clock.now())

            clock.settle = daemon.settle
            clock.at(1 * HOUR, look)
            clock.at(2 * HOUR, collector.start)
            clock.at(2.5 * HOUR, finish)
            await daemon.run(stop)
            await db.close()
    finally:
        await collector.stop()
    elapsed_real = (datetime.now(UTC) - real).total_seconds()

    assert during["status"] == "unverified"
    assert "unverified: not compared with the collector's clock" in during["text"]
    stored = collector_documents(collector_config)
    assert set(stored) == {e.uid for e in spool.recorded}
    before = [e for e in spool.recorded if taken(e.start_time) < start + timedelta(hours=2)]
    after = [e for e in spool.recorded
             if taken(e.start_time) >= start + timedelta(hours=2, minutes=2)]
    assert len(before) >= 120 and after  # the ladder every minute while offline
    # Checked when the collector came back, two simulated hours in: a day minus two hours.
    expected = 24 * HOUR - 2 * HOUR
    for entry in before:
        annotations = stored[entry.uid]["annotations"]
        assert annotations["clock_unverified"] == "true"
        offset = float(annotations["clock_offset_s"])
        # (+2: the start lost its fraction of a second, and Date's half second.)
        assert expected - 62 <= offset <= expected + elapsed_real + 2
        assert stored[entry.uid]["measurement_start_time"] == entry.start_time
    for entry in after:
        annotations = stored[entry.uid]["annotations"]
        assert "clock_unverified" not in annotations and "clock_offset_s" in annotations


def stand_in(clock: VirtualClock, ahead: dict[str, float],
             uploaded: list[dict[str, Any]]) -> web.Application:
    """A collector that answers heartbeats and uploads with a ``Date`` of the simulated
    clock plus ``ahead["seconds"]``: the true offset is known exactly."""

    def date() -> dict[str, str]:
        moment = clock.now() + timedelta(seconds=ahead["seconds"])
        return {"Date": format_datetime(moment, usegmt=True)}

    async def heartbeat(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "event_windows": []}, headers=date())

    async def measurements(request: web.Request) -> web.Response:
        batch = (await request.json())["measurements"]
        uploaded.extend(batch)
        return web.json_response({"stored": [m["measurement_uid"] for m in batch],
                                  "duplicates": []}, headers=date())

    async def site(request: web.Request) -> web.Response:
        return web.Response(text="<title>site</title>", content_type="text/html")

    app = web.Application()
    app.router.add_post("/api/v1/heartbeat", heartbeat)
    app.router.add_post("/api/v1/measurements", measurements)
    app.router.add_get("/{tail:.*}", site)
    return app


async def test_a_jump_of_the_clock_makes_measurements_unverified_until_the_next_check(
        fast_disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An hour behind, then NTP steps the clock right half an hour in. Uploads every 30 min
    only, so what is taken between the jump and the next heartbeat is still spooled when
    the clock is checked again."""
    start = datetime(2026, 5, 9, 6, 0, tzinfo=UTC)
    clock = VirtualClock(start)
    ahead = {"seconds": 3600.0}  # the device is an hour behind
    uploaded: list[dict[str, Any]] = []
    stop = asyncio.Event()

    async def ntp_steps_the_clock() -> None:
        clock.start += timedelta(hours=1)
        ahead["seconds"] = 0.0

    async def finish() -> None:
        stop.set()

    async with serve_app(stand_in(clock, ahead, uploaded)) as port:
        base = f"http://127.0.0.1:{port}"
        config = loopback_config(fast_disk, base, "token", [{"url": f"{base}/site"}], port,
                                 control_url=base,
                                 schedule={"interval": "2m", "jitter": 0.0,
                                           "heartbeat_interval": "10m",
                                           "upload_interval": "30m"})
        daemon, db, spool = await make_daemon(config, fast_disk, clock=clock)
        clock.settle = daemon.settle
        clock.at(30.5 * 60, ntp_steps_the_clock)
        clock.at(65 * 60, finish)
        with caplog.at_level(logging.INFO, logger="probe.daemon.loop"):
            await daemon.run(stop)
        state = await daemon.journal.state()
        await db.close()

    def since(document: dict[str, Any]) -> float:
        """Simulated seconds since the start, whatever the device's clock said (an hour
        more after the jump)."""
        moment = taken(document["measurement_start_time"])
        shift = 3600.0 if moment >= start + timedelta(hours=1) else 0.0
        return (moment - start).total_seconds() - shift

    def offset(document: dict[str, Any]) -> float | None:
        value = document["annotations"].get("clock_offset_s")
        return None if value is None else float(value)

    # Everything but what was taken after the last upload (at 60 min) went out.
    assert {m["measurement_uid"] for m in uploaded} == {
        e.uid for e in spool.recorded if since({"measurement_start_time": e.start_time})
        < 60 * 60}
    marks = sorted((since(m), m["annotations"].get("clock_unverified"), offset(m))
                   for m in uploaded)
    checked = [(t, u, o) for t, u, o in marks if 1 < t < 30 * 60]
    jumped = [(t, u, o) for t, u, o in marks if 31 * 60 < t < 40 * 60]
    fixed = [(t, u, o) for t, u, o in marks if t > 41 * 60]
    assert checked and jumped and fixed
    # An hour behind, checked: each measurement says so (within the Date's half second).
    assert all(u is None and o is not None and abs(o - 3600) <= 0.5
               for _, u, o in checked), checked
    # After the jump and before the next heartbeat: unverified, then given the offset found
    # at that heartbeat (the corrected clock).
    assert all(u == "true" and o is not None and abs(o) <= 0.5 for _, u, o in jumped), jumped
    # Right, and checked: nothing to say.
    assert all(u is None and o is None for _, u, o in fixed), fixed
    assert "the system clock jumped by +60 min" in caplog.text
    assert state[journal.CLOCK_STATUS] == "ok" and abs(float(state[journal.CLOCK_OFFSET])) <= 0.5
