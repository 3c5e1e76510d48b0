"""End to end over HTTP: measurements submitted to a real collector (its background detection
task running) come back as exactly the expected event from ``GET /api/v1/events``, with the
contract's fields and filters, in ``/metrics``, and in the heartbeat reply's event windows."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector.api.tokens import new_token, token_hash
from collector.app import create_app
from collector.config import CollectorConfig
from collector.detect.params import DetectionConfig, NetworkRoles
from collector.keys import pipeline_key, store_key
from probe.daemon import windows as probe_windows
from tests.collector import scenarios

SCENARIO = {
    "cc": "KZ", "asns": {"AS9198": 3, "AS64501": 3}, "targets": 5, "duration": "60m",
    "incidents": [{"type": "block", "asns": "all", "targets": [0, 1, 2], "from": "20m",
                   "to": "120m", "layer": "tls", "mechanism": "timeout",
                   "evidence": ["probe_tls:generic_timeout_error", "control_tls:ok"]}],
}


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[TestClient]:
    today = datetime.now(UTC).strftime("%m-%d")
    calendar = tmp_path / "events.yaml"
    calendar.write_text(f'windows:\n  - {{name: test-window, cc: KZ, date: "{today}"}}\n')
    config = CollectorConfig(
        database=str(tmp_path / "kuzot.sqlite"),
        detection=dataclasses.replace(
            DetectionConfig(), interval=3600.0, event_windows=str(calendar),
            networks={"KZ": NetworkRoles(incumbent=("AS9198",))}))
    async with TestClient(TestServer(create_app(config))) as client:
        yield client


async def submit(client: TestClient) -> None:
    """Issue a token per probe and post its last hour of measurements, as probes do."""
    store = client.app[store_key]
    base = time.time() - 3600
    by_probe: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for arrival in scenarios.expand(SCENARIO, base=base):
        if arrival.measurement is not None:
            by_probe[arrival.probe_id].append(arrival.measurement)
    for probe_id, measurements in sorted(by_probe.items()):
        token = new_token()
        await store.add_token(probe_id, token_hash(token), "2026-01-01 00:00:00")
        headers = {"Authorization": f"Bearer {token}"}
        for start in range(0, len(measurements), 500):
            response = await client.post("/api/v1/measurements", headers=headers,
                                         json={"measurements": measurements[start:start + 500]})
            assert response.status == 200, await response.text()
        response = await client.post("/api/v1/heartbeat", headers=headers, json={
            "probe_id": probe_id, "sent_at": datetime.now(UTC).isoformat(), "queue_depth": 0,
            "probe_cc": "KZ"})
        assert response.status == 200
        windows = (await response.json())["event_windows"]
        assert [w["name"] for w in windows] == ["test-window"]
        assert windows[0]["heartbeat_interval"] == 30.0
        # The probe daemon reads the answer with its own parser: in force for a KZ probe,
        # not for a KG one.
        [told] = probe_windows.parse(windows, "KZ")
        assert told.name == "test-window" and told.contains(datetime.now(UTC))
        assert probe_windows.parse(windows, "KG") == []


async def events(client: TestClient, query: str = "") -> list[dict[str, Any]]:
    response = await client.get("/api/v1/events" + query)
    assert response.status == 200, await response.text()
    result: list[dict[str, Any]] = (await response.json())["events"]
    return result


async def startup_run_done(client: TestClient) -> None:
    """Wait (bounded) for the background task's start-up run over the empty store: on a busy
    machine it could otherwise start half-way through the uploads and judge bins early."""
    for _ in range(200):
        metrics = await (await client.get("/metrics")).text()
        if 'kuzot_detection_runs_total{outcome="ok"} 1.0' in metrics:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the start-up detection run did not finish")


async def test_measurements_over_http_become_one_event(collector: TestClient) -> None:
    await startup_run_done(collector)
    assert await events(collector) == []
    await submit(collector)
    # The background task ran once at start-up and sleeps for an hour; run it now, once
    # everything is stored (an hour of data uploaded at once is all "late" for bins a run
    # already judged, so it must not run half-way through the uploads).
    await collector.app[pipeline_key].run_once()
    found = await events(collector)
    assert len(found) == 1, found
    [event] = found
    assert set(event) == {"id", "kind", "tier", "status", "start", "end", "updated_at", "cc",
                          "asns", "targets", "mechanism", "probes", "evidence"}
    assert (event["kind"], event["tier"], event["status"], event["end"]) == (
        "block", "confirmed", "open", None)
    assert event["cc"] == "KZ" and event["asns"] == ["AS64501", "AS9198"]
    assert event["targets"] == [scenarios.target_url(i) for i in range(3)]
    assert event["mechanism"] == "timeout" and event["probes"] == 6
    assert event["evidence"]["scope"] == "national"
    assert event["evidence"]["event_window"] == "test-window"
    assert event["start"].endswith("Z") and event["updated_at"] >= event["start"]

    for query, count in [("?cc=KZ", 1), ("?cc=kz", 1), ("?cc=KG", 0), ("?asn=AS64501", 1),
                         ("?asn=64501", 1), ("?asn=AS1", 0), ("?limit=1", 1),
                         ("?kind=block", 1), ("?kind=shutdown", 0), ("?status=open", 1),
                         ("?status=closed", 0), ("?tier=confirmed", 1),
                         (f"?since={event['start']}", 1), ("?until=2020-01-01T00:00:00Z", 0),
                         ("?since=2020-01-01%2000:00:00&until=2999-01-01T00:00:00Z", 1)]:
        assert len(await events(collector, query)) == count, query
    for query, reason in [("?cc=KAZ", "cc: two letters (ISO 3166-1 alpha-2)"),
                          ("?kind=outage", "kind: one of shutdown, block, throttling"),
                          ("?tier=sure", "tier: one of suspected, likely, confirmed"),
                          ("?since=yesterday", "since: expected a date or time"),
                          ("?limit=0", "limit: an integer from 1 to 1000"),
                          ("?kind=block&kind=shutdown", "kind: given more than once"),
                          ("?country=KZ", "country: unknown parameter")]:
        response = await collector.get("/api/v1/events" + query)
        assert response.status == 400
        assert (await response.json())["error"].startswith(reason)

    metrics = await (await collector.get("/metrics")).text()
    assert 'kuzot_events_open{cc="KZ",kind="block",tier="confirmed"} 1.0' in metrics
    assert 'kuzot_events_open{cc="KZ",kind="shutdown",tier="likely"} 0.0' in metrics
    # Published to the event book: alerting's series, the status page and the event's page.
    for asn in ("AS9198", "AS64501"):
        assert (f'kuzot_event_active{{asn="{asn}",cc="KZ",event_id="{event["id"]}",'
                f'kind="block",mechanism="timeout",scope="network",tier="confirmed"}} 1.0'
                ) in metrics
    page = await (await collector.get("/")).text()
    assert event["id"] in page
    response = await collector.get(f"/events/{event['id']}")
    assert response.status == 200 and "Connections hang until they time out" in \
        await response.text()
    assert 'kuzot_event_window_active{cc="KZ",window="test-window"} 1.0' in metrics
    assert 'kuzot_detection_runs_total{outcome="ok"}' in metrics
