"""The monitor blocked from a network: real heartbeats through the collector's HTTP API, the
detection pipeline, and ``GET /api/v1/events``.

Probes of one network say they reach the collector only at a fallback endpoint (or reach no
control), while another network's probes reach the first endpoint directly: an event of kind
``monitor_blocked`` for that network alone. When every network is on the fallback, the first
endpoint is down for everyone: that is no block, and nothing is reported.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector.api.tokens import new_token, token_hash
from collector.app import create_app
from collector.config import CollectorConfig
from collector.detect.monitor_reach import PathReading, reading
from collector.detect.params import DetectionConfig
from collector.keys import pipeline_key, store_key


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[TestClient]:
    config = CollectorConfig(database=str(tmp_path / "kuzot.sqlite"),
                             detection=dataclasses.replace(DetectionConfig(), interval=3600.0))
    async with TestClient(TestServer(create_app(config))) as client:
        for _ in range(200):  # the start-up run over the empty store, before any heartbeat
            if 'kuzot_detection_runs_total{outcome="ok"} 1.0' in \
                    await (await client.get("/metrics")).text():
                break
            await asyncio.sleep(0.05)
        yield client


async def heartbeat(client: TestClient, probe_id: str, asn: str, **path: Any) -> None:
    """A probe's heartbeat as the daemon sends it (``probe.daemon.loop._heartbeat_body``)."""
    token = new_token()
    await client.app[store_key].add_token(probe_id, token_hash(token), "2026-01-01 00:00:00")
    response = await client.post(
        "/api/v1/heartbeat", headers={"Authorization": f"Bearer {token}"},
        json={"sent_at": datetime.now(UTC).isoformat(), "queue_depth": 0, "probe_cc": "KZ",
              "probe_asn": asn, "software_version": "0.1.0", **path})
    assert response.status == 200, await response.text()


async def events(client: TestClient) -> list[dict[str, Any]]:
    await client.app[pipeline_key].run_once()
    response = await client.get("/api/v1/events")
    assert response.status == 200
    found: list[dict[str, Any]] = (await response.json())["events"]
    return found


DIRECT = {"collector_endpoint": "primary", "collector_path": "direct",
          "collector_fallback": False, "controls_blocked": False}
DETOUR = {"collector_endpoint": "second", "collector_path": "direct",
          "collector_fallback": True, "controls_blocked": False}


async def test_a_network_reaching_the_collector_only_by_a_fallback_is_a_finding(
        collector: TestClient) -> None:
    for index in range(2):
        await heartbeat(collector, f"kt-{index}", "AS9198", **DETOUR)
        await heartbeat(collector, f"beeline-{index}", "AS21299", **DIRECT)
    [event] = await events(collector)
    assert (event["kind"], event["cc"], event["asns"], event["status"]) == (
        "monitor_blocked", "KZ", ["AS9198"], "open")
    assert event["probes"] == 2 and event["mechanism"] == "collector_fallback"
    assert event["tier"] != "suspected"
    response = await collector.get("/api/v1/events?kind=monitor_blocked&asn=AS21299")
    assert (await response.json())["events"] == []
    # The status page and the event's page name it (its own words, not a shutdown's).
    for path in ("/", f"/events/{event['id']}"):
        response = await collector.get(path)
        assert response.status == 200 and "Monitor blocked" in await response.text(), path


async def test_every_network_on_the_fallback_is_an_outage_not_a_block(
        collector: TestClient) -> None:
    for index in range(2):
        await heartbeat(collector, f"kt-{index}", "AS9198", **DETOUR)
        await heartbeat(collector, f"beeline-{index}", "AS21299", **DETOUR)
    assert await events(collector) == []


async def test_every_control_blocked_from_one_network_is_a_finding(
        collector: TestClient) -> None:
    cut = {**DIRECT, "controls_blocked": True}
    for index in range(2):
        await heartbeat(collector, f"kt-{index}", "AS9198", **cut)
        await heartbeat(collector, f"beeline-{index}", "AS21299", **DIRECT)
    [event] = await events(collector)
    assert event["kind"] == "monitor_blocked" and event["asns"] == ["AS9198"]
    assert event["mechanism"] == "controls_blocked"


async def test_probes_that_do_not_say_count_for_nothing(collector: TestClient) -> None:
    for index in range(2):
        await heartbeat(collector, f"kt-{index}", "AS9198")
        await heartbeat(collector, f"beeline-{index}", "AS21299", **DIRECT)
    assert await events(collector) == []


def test_a_heartbeat_body_is_read_for_what_it_says() -> None:
    assert reading('{"collector_fallback": true, "collector_endpoint": "second"}', "p", 5.0) \
        == PathReading("p", 5.0, True, None, "second")
    assert reading('{"controls_blocked": false}', "p", 5.0) == PathReading(
        "p", 5.0, None, False)
    for body in ('{"collector_fallback": "yes"}', "[]", "not json", "{}"):
        assert reading(body, "p", 5.0) is None
