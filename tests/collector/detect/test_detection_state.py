"""Changing ``detection.block.bin`` between two runs of the collector's pipeline: the saved
state is converted, one line per part says so, the reset counter shows it, and the block in
the data is still detected (before, every later observation counted as late)."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from collector.detect.params import DetectionConfig
from collector.detect.windows import Calendar
from collector.metrics.detection import DetectionMetrics, EventSnapshot
from collector.pipeline import Pipeline
from collector.store import EventFilter
from collector.store.sqlite import SQLiteStore
from probe.core.typed_config import parse_duration
from tests.collector import scenarios

TICK = 60.0


@pytest.mark.parametrize("new_bin", [900.0, 60.0], ids=["15m", "1m"])
async def test_a_new_bin_is_taken_up_and_said(new_bin: float, tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    scenario = scenarios.load("asn_block_dns_nxdomain")  # three sites blocked 1h to 2h
    arrivals = scenarios.expand(scenario)
    end = scenarios.BASE + parse_duration(scenario["duration"])
    restart_at = scenarios.BASE + parse_duration("70m")  # mid-block
    store = await SQLiteStore.open(str(tmp_path / "kuzot.sqlite"))
    first = DetectionConfig()
    second = dataclasses.replace(first, block=dataclasses.replace(first.block, bin=new_bin))
    registry = CollectorRegistry()
    pipeline = Pipeline(store, first, Calendar(), DetectionMetrics(CollectorRegistry()),
                        EventSnapshot(), clock=lambda: scenarios.BASE)
    await pipeline.start()
    now, index = scenarios.BASE, 0
    try:
        while now < end:
            now += TICK
            arrived, index = scenarios.due(arrivals, index, now)
            await scenarios.store_arrivals(store, arrived)
            with caplog.at_level(logging.WARNING, logger="collector.pipeline"):
                await pipeline.run_once(now)
            if now == restart_at:
                await pipeline.stop()  # saves its state
                pipeline = Pipeline(store, second, Calendar(), DetectionMetrics(registry),
                                    EventSnapshot(), clock=lambda: restart_at)
                await pipeline.start()
        events = await store.events(EventFilter(limit=1000))
    finally:
        await store.close()
    lines = [r.getMessage() for r in caplog.records if "detection state of" in r.getMessage()]
    assert f"detection state of bins converted: params changed (bin 300.0 -> {new_bin})" \
        in lines
    assert len(lines) == len(set(lines)) == 5  # bins, block, collapse, throttle, slowdown
    assert registry.get_sample_value(
        "kuzot_detection_state_resets_total",
        {"detector": "bins", "reason": "params", "action": "converted"}) == 1
    assert registry.get_sample_value(
        "kuzot_detection_state_resets_total",
        {"detector": "collapse", "reason": "params", "action": "reset"}) == 1
    assert pipeline.engine.late == 0
    [event] = events
    assert (event["kind"], event["tier"], event["status"], event["asns"]) == \
        ("block", "likely", "closed", ["AS8449"])
    assert event["targets"] == [scenarios.target_url(i) for i in range(3)]
    assert event["start"] == "2024-03-01T01:00:10Z"
