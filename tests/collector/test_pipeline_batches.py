"""The pipeline over a backlog and beside other collectors: a backlog digested in small
batches over several runs ends with the events of the live run, a dark network's backlog is
judged in its own bins, the control lost by every probe is an outage of the monitor and no
shutdown, and a collector that does not lead serves the leader's events (from the store)
without notifying anyone."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from collector import pipeline as pipeline_module
from collector.api.validate import validate
from collector.config import Limits
from collector.detect import observed
from collector.detect.params import DetectionConfig, NetworkRoles
from collector.detect.windows import Calendar
from collector.events.book import EventBook
from collector.metrics.detection import DetectionMetrics, EventSnapshot
from collector.notify.event import EventView
from collector.pipeline import Pipeline
from collector.store import EventFilter, Store
from collector.store.sqlite import SQLiteStore
from probe.core.typed_config import parse_duration
from tests.collector import scenarios
from tests.collector.detect.test_detection_scenarios import run_scenario
from tests.collector.factory import stored
from tests.helpers.fleet import web_measurement

SCENARIO = "national_block_tls_timeout"
CONFIG = DetectionConfig(networks={"KZ": NetworkRoles(incumbent=("AS9198",),
                                                      mobile=("AS64510",))})


async def store_everything(store: SQLiteStore) -> float:
    """Store the whole scenario as it arrived (nothing judged yet); returns its end."""
    scenario = scenarios.load(SCENARIO)
    await scenarios.store_arrivals(store, scenarios.expand(scenario))
    return scenarios.BASE + parse_duration(scenario["duration"])


def fields(events: Iterable[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted((e["id"], e["kind"], e["tier"], e["status"], e["start"], e["asns"],
                   e["targets"]) for e in events)


async def test_a_backlog_digested_in_small_batches_ends_with_the_live_events(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    live, _ = await run_scenario(SCENARIO, tmp_path / "live.sqlite")
    assert live
    caplog.clear()
    caplog.set_level(logging.INFO, logger="kuzot.events")
    monkeypatch.setattr(pipeline_module, "FEED_CHUNK", 50)
    monkeypatch.setattr(pipeline_module, "MAX_ROWS_PER_RUN", 1000)
    store = await SQLiteStore.open(str(tmp_path / "backlog.sqlite"))
    registry = CollectorRegistry()
    try:
        end = await store_everything(store)
        stored = await store.count_measurements()
        assert stored > 3 * 1000  # several runs of many batches each
        pipeline = Pipeline(store, CONFIG, Calendar(), DetectionMetrics(registry),
                            EventSnapshot(), clock=lambda: scenarios.BASE)
        await pipeline.start()
        runs = 0
        lags = []
        while True:
            await pipeline.run_once(end)
            runs += 1
            lags.append(registry.get_sample_value("kuzot_detection_lag_seconds"))
            if pipeline.caught_up:
                break
        backlog = await store.events(EventFilter(limit=1000))
    finally:
        await store.close()
    assert runs > 3
    assert all(lag is not None and lag > 0 for lag in lags[:-1]) and lags[-1] == 0
    # The same incidents, judged bin by bin as they would have been live.
    assert fields(backlog) == fields(live)
    # One log line per event opened and ended (and raised, when its tier rose).
    lines = [r.getMessage() for r in caplog.records if r.name == "kuzot.events"]
    for event in backlog:
        opened = [line for line in lines if line.startswith(f"event opened: {event['id']} ")]
        ended = [line for line in lines if line.startswith(f"event ended: {event['id']} ")]
        assert len(opened) == 1 and len(ended) == (event["status"] == "closed"), lines
    assert any(line.startswith("event raised: ") for line in lines), lines


class Recorder:
    def __init__(self) -> None:
        self.got: list[str] = []

    async def publish(self, events: Iterable[EventView | Mapping[str, Any]]) -> None:
        self.got += [e.id if isinstance(e, EventView) else str(e["id"]) for e in events]


async def test_a_collector_that_does_not_lead_serves_the_leaders_events(tmp_path: Path) -> None:
    store = await SQLiteStore.open(str(tmp_path / "shared.sqlite"))
    try:
        end = await store_everything(store)
        books = [EventBook(sinks=[Recorder()]), EventBook(sinks=[Recorder()])]
        leader, standby = (Pipeline(store, CONFIG, Calendar(),
                                    DetectionMetrics(CollectorRegistry()), EventSnapshot(),
                                    book, clock=lambda: end) for book in books)
        for pipeline in (leader, standby):
            await pipeline.start()
        while not (await leader.run_once(end) == [] and leader.caught_up):
            pass
        assert await standby.run_once(end) == []  # the lease is the leader's
        assert not standby.leading
        stored = await store.events(EventFilter(limit=1000))
    finally:
        await store.close()
    assert stored
    served = [sorted((e.id, e.tier, e.status) for e in book.events()) for book in books]
    assert served[0] == served[1] == sorted((e["id"], e["tier"], e["status"]) for e in stored)
    leader_sink, standby_sink = (book.sinks[0] for book in books)
    assert isinstance(leader_sink, Recorder) and isinstance(standby_sink, Recorder)
    assert set(leader_sink.got) == {e["id"] for e in stored}
    assert standby_sink.got == []  # only the leader notifies


async def test_a_dark_networks_backlog_reaches_the_stored_events_with_its_true_start(
        tmp_path: Path) -> None:
    """Through the store and the pipeline: AS48716's probes measure in the dark (a block of
    one site begins there) and upload it all when they are back, while AS9198 reported all
    along; the block event starts when the probes saw it, not when the upload came."""
    base = 1_700_000_100.0  # the start of a 300-second bin
    lit, dark = "AS9198", "AS48716"
    targets = [f"https://s{i}.example/" for i in range(6)]
    dark_from, dark_to = base + 3600, base + 7200
    block_from, block_to = base + 4200, base + 9000
    probes = [(f"{asn.lower()}-{i}", asn) for asn in (lit, dark) for i in range(4)]
    store = await SQLiteStore.open(str(tmp_path / "dark.sqlite"))
    pipeline = Pipeline(store, DetectionConfig(), Calendar(),
                        DetectionMetrics(CollectorRegistry()), EventSnapshot(),
                        clock=lambda: base)
    held: list[Any] = []
    try:
        await pipeline.start()
        t = base
        while t < base + 12000:
            moment = datetime.fromtimestamp(t, UTC)
            stamp = moment.strftime("%Y-%m-%d %H:%M:%S")
            in_dark = dark_from <= t < dark_to
            rows = []
            for probe, asn in probes:
                made = []
                if int(t - base) % 300 == 0:
                    for target in targets:
                        blocked = asn == dark and target == targets[0] and \
                            block_from <= t < block_to
                        made.append(web_measurement(
                            target, "KZ", asn, verdict="blocked" if blocked else "ok",
                            layer="tls" if blocked else None,
                            mechanism="timeout" if blocked else None, started=moment))
                        made[-1]["measurement_uid"] = f"{probe}-{int(t)}-{len(made)}"
                if asn == dark and in_dark:
                    held += [(probe, m) for m in made]
                    continue
                await store.add_heartbeat(probe, stamp, stamp, json.dumps(
                    {"probe_id": probe, "probe_cc": "KZ", "probe_asn": asn}))
                rows += [validate(m, Limits(), moment, probe) for m in made]
            if not in_dark and held:
                rows += [validate(m, Limits(), moment, probe) for probe, m in held]
                held = []
            await store.add_measurements(rows)
            t += 60.0
            await pipeline.run_once(t)
        events = await store.events(EventFilter(kind="block", limit=100))
    finally:
        await store.close()
    assert [(e["asns"], e["targets"]) for e in events] == [([dark], [targets[0]])]
    start = datetime.fromisoformat(events[0]["start"].replace("Z", "+00:00")).timestamp()
    assert block_from <= start < block_from + 300  # in the dark, not at dark_to


async def test_the_control_lost_by_every_probe_is_a_monitor_outage_and_no_shutdown(
        tmp_path: Path) -> None:
    """For half an hour the control answers no probe on either network while uploads go on
    (and, the worst case, the probes' own attempts fail too): one ``control_unreachable``
    outage of the monitor, with its start and end, and no shutdown or block."""
    base = 1_700_000_100.0
    lost_from, lost_to = base + 1800, base + 3600
    targets = [f"https://s{i}.example/" for i in range(6)]
    probes = [(f"{asn.lower()}-{i}", asn) for asn in ("AS9198", "AS48716") for i in range(4)]
    store = await SQLiteStore.open(str(tmp_path / "control.sqlite"))
    registry = CollectorRegistry()
    pipeline = Pipeline(store, DetectionConfig(), Calendar(), DetectionMetrics(registry),
                        EventSnapshot(), clock=lambda: base)
    try:
        await pipeline.start()
        t = base
        while t < base + 5400:
            moment = datetime.fromtimestamp(t, UTC)
            stamp = moment.strftime("%Y-%m-%d %H:%M:%S")
            lost = lost_from <= t < lost_to
            rows = []
            for probe, asn in probes:
                await store.add_heartbeat(probe, stamp, stamp, json.dumps(
                    {"probe_id": probe, "probe_cc": "KZ", "probe_asn": asn}))
                if int(t - base) % 300:
                    continue
                for k, target in enumerate(targets):
                    m = web_measurement(target, "KZ", asn, started=moment)
                    if lost:
                        m["test_keys"]["control_failure"] = "generic_timeout_error"
                        m["test_keys"]["http_experiment_failure"] = "generic_timeout_error"
                        m["test_keys"]["analysis"] = {
                            "verdict": "inconclusive", "layer": "tcp", "mechanism": "timeout",
                            "confidence": 0.0,
                            "evidence": ["probe_tcp:generic_timeout_error",
                                         "control_failure:generic_timeout_error"]}
                    m["measurement_uid"] = f"{probe}-{int(t)}-{k}"
                    rows.append(validate(m, Limits(), moment, probe))
            await store.add_measurements(rows)
            t += 60.0
            await pipeline.run_once(t)
        events = await store.events(EventFilter(limit=100))
    finally:
        await store.close()
    assert [(e["kind"], e["mechanism"], e["status"], e["probes"]) for e in events] == [
        ("monitor_outage", "control_unreachable", "closed", 8)]
    assert (events[0]["start"], events[0]["end"]) == (
        datetime.fromtimestamp(lost_from, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        datetime.fromtimestamp(lost_to, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    assert registry.get_sample_value("kuzot_monitor_outages_total",
                                     {"cause": "control_unreachable"}) == 1


@pytest.mark.parametrize("with_observations", [False, True], ids=["bodies", "observations"])
async def test_one_run_reads_a_backlog_whose_batches_do_not_fill_a_chunk(
        store: Store, monkeypatch: pytest.MonkeyPatch, with_observations: bool) -> None:
    """Batches of 30 rows against chunks of 50: PostgreSQL's feed gives whole batches, and a
    chunk that ended short of 50 while rows waited was taken for the end of the feed, so a
    busy collector's detection read one chunk per run (30 s) and fell behind for good."""
    monkeypatch.setattr(pipeline_module, "FEED_CHUNK", 50)
    observation = observed.encode(None) if with_observations else None
    rows = [stored(start_time=f"2024-05-01 12:{i // 60:02d}:{i % 60:02d}",
                   observation=observation) for i in range(300)]
    for start in range(0, 300, 30):
        assert len(await store.add_measurements(rows[start:start + 30])) == 30
    registry = CollectorRegistry()
    now = datetime(2024, 5, 1, 12, 10, tzinfo=UTC).timestamp()
    pipeline = Pipeline(store, CONFIG, Calendar(), DetectionMetrics(registry),
                        EventSnapshot(), clock=lambda: now)
    await pipeline.start()
    await pipeline.run_once(now)
    assert registry.get_sample_value("kuzot_detection_inputs_total",
                                     {"kind": "measurement"}) == 300
    assert pipeline.caught_up
