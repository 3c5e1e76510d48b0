"""What the heartbeat answer changes: event windows raise the cadence, and the address the
collector saw joins the scrub list.

The collector's calendar of event windows is built elsewhere; here a small real aiohttp
server stands in for it and answers with the same wire fields (``event_windows``,
``observed_address``) the collector uses.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from collector.api.tokens import new_token, token_hash
from collector.keys import store_key
from tests.helpers.probe_setup import loopback_config, make_daemon
from tests.helpers.servers import serve_app
from tests.helpers.virtual_clock import VirtualClock

START = datetime(2026, 1, 4, 0, 0, tzinfo=UTC)
PUBLIC = "198.51.100.77"


def stand_in_collector(received: dict[str, list[Any]]) -> web.Application:
    window = {"start": (START + timedelta(hours=2)).isoformat(),
              "end": (START + timedelta(hours=4)).isoformat(), "name": "election day",
              "cc": "KG"}

    async def heartbeat(request: web.Request) -> web.Response:
        received["heartbeats"].append(await request.json())
        return web.json_response({"ok": True, "event_windows": [window],
                                  "observed_address": PUBLIC})

    async def measurements(request: web.Request) -> web.Response:
        batch = (await request.json())["measurements"]
        received["measurements"].extend(batch)
        return web.json_response({"stored": [m["measurement_uid"] for m in batch],
                                  "duplicates": []})

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=f"<title>you are {PUBLIC}</title>", content_type="text/html")

    app = web.Application()
    app.router.add_post("/api/v1/heartbeat", heartbeat)
    app.router.add_post("/api/v1/measurements", measurements)
    app.router.add_get("/{tail:.*}", echo)
    return app


async def test_event_window_raises_cadence_and_observed_address_is_scrubbed(
        fast_disk: Path) -> None:
    received: dict[str, list[Any]] = {"heartbeats": [], "measurements": []}
    async with serve_app(stand_in_collector(received)) as port:
        base = f"http://127.0.0.1:{port}"
        targets = [{"url": f"http://localhost:{port}/page"}]
        config = loopback_config(fast_disk, base, "token", targets, port, control_url=base,
                                 schedule={"interval": "1h", "jitter": 0.0,
                                           "event_speedup": 4.0})
        clock = VirtualClock(START)
        daemon, db, spool = await make_daemon(config, fast_disk, clock=clock)
        clock.settle = daemon.settle
        stop = asyncio.Event()

        async def finish() -> None:
            stop.set()

        clock.at(6 * 3600.0, finish)
        await daemon.run(stop)
        await db.close()

    def hour(stamp: str) -> float:
        moment = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        return (moment - START).total_seconds() / 3600

    site = sorted(hour(e.start_time) for e in spool.recorded if e.test_name != "connectivity")
    inside = [h for h in site if 2 <= h < 4]
    outside = [h for h in site if h < 2 or h >= 4]
    # Hourly outside the window (about 2 + 2), every 15 minutes inside it (about 8).
    assert 7 <= len(inside) <= 9, site
    assert 3 <= len(outside) <= 5, site
    beats = [hour(b["sent_at"]) for b in received["heartbeats"]]
    gaps_inside = {round((b - a) * 3600) for a, b in zip(beats, beats[1:], strict=False)
                   if 2.05 <= a < 3.95}
    gaps_outside = {round((b - a) * 3600) for a, b in zip(beats, beats[1:], strict=False)
                    if a < 1.9 or a >= 4.1}
    assert gaps_inside == {30} and gaps_outside == {60}
    # The token names the probe; the body does not repeat it (the collector would refuse a
    # probe_id that differs from the token's).
    assert all(b["queue_depth"] >= 0 and "probe_id" not in b for b in received["heartbeats"])
    assert any(b["in_event_window"] for b in received["heartbeats"])
    # The address the collector saw never left again, though the site showed it every time.
    uploaded = json.dumps(received["measurements"])
    assert len(received["measurements"]) == len(spool.recorded)
    assert PUBLIC not in uploaded and "you are [scrubbed]" in uploaded


async def test_the_collector_tells_the_probe_the_address_it_saw(
        collector_client: TestClient) -> None:
    token = new_token()
    await collector_client.app[store_key].add_token("p1", token_hash(token),
                                                    "2026-01-01 00:00:00")
    response = await collector_client.post(
        "/api/v1/heartbeat", json={"probe_id": "p1", "sent_at": "2026-01-01 00:00:00"},
        headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    answer = await response.json()
    assert answer["observed_address"] == "127.0.0.1"
    assert answer["event_windows"] == []


async def test_uploads_back_off_even_while_heartbeats_are_answered(fast_disk: Path) -> None:
    """A collector (or a censor in front of it) that answers the small heartbeats but fails
    every upload: the probe must back off, not retry after every heartbeat."""
    attempts: list[float] = []
    clock = VirtualClock(START)

    async def heartbeat(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "event_windows": []})

    async def measurements(request: web.Request) -> web.Response:
        attempts.append(clock.elapsed)
        return web.json_response({"error": "storage unavailable"}, status=500)

    app = web.Application()
    app.router.add_post("/api/v1/heartbeat", heartbeat)
    app.router.add_post("/api/v1/measurements", measurements)
    async with serve_app(app) as port:
        base = f"http://127.0.0.1:{port}"
        config = loopback_config(fast_disk, base, "token", [], port, control_url=base)
        daemon, db, spool = await make_daemon(config, fast_disk, clock=clock)
        clock.settle = daemon.settle
        stop = asyncio.Event()

        async def finish() -> None:
            stop.set()

        clock.at(2 * 3600.0, finish)
        await daemon.run(stop)
        depth = await spool.depth()
        await db.close()
    # 30 s doubling to 15 min (+-20 %) over two hours: about a dozen tries, not 120.
    assert 6 <= len(attempts) <= 15, attempts
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert gaps[-1] >= 0.8 * 900
    assert depth.measurements == len(spool.recorded) >= 24  # a ladder every 5 min, all kept
