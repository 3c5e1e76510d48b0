"""The scenario corpus pushed through ingest -> store -> detect, asserting the exact events.

Each scenario (``tests/scenarios/detection/<technique>.json``) is expanded into heartbeats and
measurements in the probe's own envelope. Measurements go through the collector's ingest
validation (``validate``) into a real SQLite store, heartbeats into the same store, and the
detection pipeline runs every simulated minute with its clock at that minute, exactly as the
background task does. The events it leaves in the store must be exactly the expected ones.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from collector.detect.params import DetectionConfig, NetworkRoles
from collector.detect.windows import Calendar
from collector.metrics.detection import DetectionMetrics, EventSnapshot
from collector.pipeline import Pipeline
from collector.store import EventFilter
from collector.store.sqlite import SQLiteStore
from probe.core.typed_config import parse_duration
from tests.collector import scenarios

TICK = 60.0


def _pipeline(store: SQLiteStore, config: DetectionConfig, start: float = scenarios.BASE,
              registry: CollectorRegistry | None = None) -> Pipeline:
    """A detection pipeline on ``store`` whose clock stands at ``start`` until it is run."""
    return Pipeline(store, config, Calendar(), DetectionMetrics(registry or CollectorRegistry()),
                    EventSnapshot(), clock=lambda: start)


async def _minutes(store: SQLiteStore, scenario: dict[str, Any]) -> AsyncIterator[float]:
    """Each simulated minute of ``scenario``, after storing what arrived by then as the
    collector's ingest would; the caller runs detection at that minute."""
    arrivals = scenarios.expand(scenario)
    end = scenarios.BASE + parse_duration(scenario["duration"])
    now, index = scenarios.BASE, 0
    while now < end:
        now += TICK
        arrived, index = scenarios.due(arrivals, index, now)
        await scenarios.store_arrivals(store, arrived)
        yield now


def _outcome(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What two runs of one scenario must agree on, event by event."""
    return [(e["id"], e["tier"], e["start"], e["end"], e["targets"]) for e in events]


async def run_scenario(name: str, database: Path) -> tuple[list[dict[str, Any]], Pipeline]:
    scenario = scenarios.load(name)
    networks = {cc: NetworkRoles(incumbent=tuple(r.get("incumbent", ())),
                                 mobile=tuple(r.get("mobile", ())))
                for cc, r in scenario["networks"].items()}
    store = await SQLiteStore.open(str(database))
    pipeline = _pipeline(store, DetectionConfig(networks=networks))
    try:
        await pipeline.start()
        async for now in _minutes(store, scenario):
            await pipeline.run_once(now)
        return await store.events(EventFilter(limit=1000)), pipeline
    finally:
        await store.close()


def _subset(actual: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """``actual`` restricted to the keys ``expected`` names (recursively for dicts)."""
    out = {}
    for key, value in expected.items():
        if isinstance(value, dict) and isinstance(actual.get(key), dict):
            out[key] = _subset(actual[key], value)
        else:
            out[key] = actual.get(key)
    return out


@pytest.mark.parametrize("name", scenarios.names())
async def test_scenario(name: str, tmp_path: Path) -> None:
    events, pipeline = await run_scenario(name, tmp_path / "kuzot.sqlite")
    expected = scenarios.load(name)["expected"]
    order = sorted(events, key=lambda e: (e["start"], e["asns"]))
    assert [_subset(e, x) for e, x in zip(order, expected, strict=False)] == expected, \
        json.dumps(order, indent=1)[:3000]
    assert len(events) == len(expected), [(e["kind"], e["tier"], e["asns"]) for e in events]
    # Event ids are deterministic and each event was written in place, never duplicated.
    assert len({e["id"] for e in events}) == len(events)
    # Stored in time order and read in batches: every observation reaches its bin before
    # the bin is judged, so none may count as late (a late count here is lost evidence).
    assert pipeline.engine.late == 0


async def test_a_restarted_pipeline_resumes_from_its_saved_state(tmp_path: Path) -> None:
    """Stopping the pipeline mid-scenario and starting a new one on the same store (state and
    cursors saved with it) ends with the same events as an uninterrupted run."""
    whole, _ = await run_scenario("national_block_tls_timeout", tmp_path / "whole.sqlite")
    store = await SQLiteStore.open(str(tmp_path / "split.sqlite"))
    config = DetectionConfig(networks={"KZ": NetworkRoles(incumbent=("AS9198",),
                                                          mobile=("AS64510",))})
    pipeline = _pipeline(store, config)
    await pipeline.start()
    restart_at = scenarios.BASE + parse_duration("80m")
    async for now in _minutes(store, scenarios.load("national_block_tls_timeout")):
        await pipeline.run_once(now)
        if now == restart_at:
            await pipeline.stop()  # saves its state and hands the detection lease back
            pipeline = _pipeline(store, config, restart_at)
            await pipeline.start()
    events = await store.events(EventFilter(limit=1000))
    await store.close()
    assert _outcome(events) == _outcome(whole)


async def test_a_failed_run_resumes_from_the_saved_state(tmp_path: Path) -> None:
    """A run that dies half-way (here: the store refuses to write events) is not half-applied:
    the next run reloads the saved state and replays, ending with the uninterrupted events."""
    whole, _ = await run_scenario("asn_block_dns_nxdomain", tmp_path / "whole.sqlite")
    store = await SQLiteStore.open(str(tmp_path / "broken.sqlite"))
    registry = CollectorRegistry()
    pipeline = _pipeline(store, DetectionConfig(), registry=registry)
    await pipeline.start()
    real_upsert = store.upsert_events
    failures = 0

    async def flaky(events: list[dict[str, Any]]) -> None:
        nonlocal failures
        if events and failures < 3:
            failures += 1
            raise RuntimeError("disk full")
        await real_upsert(events)

    store.upsert_events = flaky  # type: ignore[method-assign]
    async for now in _minutes(store, scenarios.load("asn_block_dns_nxdomain")):
        await pipeline.run_safely(now)
    events = await store.events(EventFilter(limit=1000))
    await store.close()
    assert failures == 3
    assert registry.get_sample_value("kuzot_detection_runs_total", {"outcome": "error"}) == 3
    assert _outcome(events) == _outcome(whole)
