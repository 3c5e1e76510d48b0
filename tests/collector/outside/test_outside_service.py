"""The outside-in service end to end: raw sockets in the lab, rounds, metrics, engine signals;
and the collector going on without CAP_NET_RAW."""

from __future__ import annotations

import asyncio
import random
import socket
from dataclasses import replace
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from collector.detect.engine import Engine
from collector.detect.outside import OutsideParams
from collector.detect.outside_in import OutsideDetector, OutsideReading
from collector.detect.params import DetectionConfig
from collector.outside.config import OutsideConfig, resolve
from collector.outside.metrics import OutsideCollector
from collector.outside.service import OutsideService
from collector.outside.signal import OutsideMonitor
from tests.helpers.outsidelab import (
    SEED,
    OutsideLab,
    first_samples_find_a_host,
    write_block_file,
)


def config(tmp_path: Path) -> OutsideConfig:
    write_block_file(tmp_path)
    # 4,000 packets/s: discovery's half of a one-second round covers 20 blocks (32 addresses
    # by ICMP and two SYNs each), so every block has had its pass after the first round.
    base = OutsideConfig(enabled=True, block_files=("blocks.txt",), rate=4000, burst=20,
                         round=1.0, timeout=1.0, discovery_sample=32, max_in_flight=512)
    return resolve(base, tmp_path)


@pytest.mark.lab
async def test_rounds_reach_the_metrics_and_the_engine(lab: OutsideLab, tmp_path: Path) -> None:
    received: list[list[OutsideReading]] = []
    # The lab's networks are eight blocks each: under IODA's minimum baseline of 20.
    engine = Engine(DetectionConfig(outside=OutsideParams(min_baseline=2, min_history=3)))

    def to_engine(readings: list[OutsideReading]) -> None:
        received.append(readings)
        for reading in readings:
            engine.add(reading)

    cfg = config(tmp_path)
    assert cfg.discovery_blocks_per_round == 20
    service = OutsideService(cfg, make_socket=lab.collector_socket, on_readings=to_engine,
                             params=engine.config.outside, rng=random.Random(SEED))
    registry = CollectorRegistry()
    registry.register(OutsideCollector(service))
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    while service.rounds < 4:
        await asyncio.sleep(0.1)
    await asyncio.to_thread(lab.cut, "198.18.0.0/20")
    seen = service.rounds
    while service.rounds < seen + 2:
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, 60)

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(f"kuzot_outside_{name}", labels)

    assert first_samples_find_a_host(service, lab)
    assert sample("up") == 0  # stopped
    assert sample("blocks_configured") == 17
    assert (sample("probes_total", method="icmp") or 0) > 100
    assert (sample("probes_total", method="tcp") or 0) > 0
    assert (sample("replies_total") or 0) > 100
    assert sample("blocks", country="KZ", network="AS64500", state="down") == 8
    assert sample("blocks", country="KZ", network="AS64501", state="up") == 8
    # The block where nothing answers was set aside: the signal counts the watched blocks.
    assert sample("blocks", country="KZ", network="AS64500", state="unjudged") == 0
    assert sample("network_blocks_configured", country="KZ", network="AS64500") == 9
    assert sample("blocks_watched", country="KZ", network="AS64500") == 8
    assert sample("blocks_watched", country="KZ", network="AS64501") == 8
    assert sample("blocks_up_ratio", country="KZ", network="AS64501") == 1.0
    assert sample("verdict", country="KZ", network="AS64500", level="critical") == 1
    assert sample("verdict", country="KZ", network="AS64501", level="none") == 1
    assert sample("baseline_blocks_up", country="KZ", network="AS64500") == 8
    # The round that saw AS64500 dark was followed by its confirmation, which found it dark.
    assert sample("confirmations_total", result="dark") == 1
    assert sample("confirmations_total", result="recovered") == 0
    last = {r.asn: r for r in received[-1]}
    assert (last["AS64500"].blocks_up, last["AS64501"].blocks_up) == (0, 8)
    assert service.report is not None
    assert last["AS64500"].cc == "KZ" and last["AS64500"].t == service.report.started
    # The registered outside detector took every round (its own 7-day history and verdict)
    # but the first, whose report came before discovery had found a block to watch.
    assert [len(r) for r in received[:2]] == [0, 2]
    detector = engine.detector("outside")
    assert isinstance(detector, OutsideDetector)
    assert len(detector.networks["KZ|AS64501"].history) == service.rounds - 1
    assert detector.networks["KZ|AS64500"].level == "critical"
    assert detector.networks["KZ|AS64501"].level == "none"


@pytest.mark.lab
async def test_a_restarted_service_confirms_a_cut_in_its_first_rounds(
        lab: OutsideLab, tmp_path: Path) -> None:
    # The verdict needs MIN_HISTORY rounds of history. The first service saves its history
    # after each round; the second, started on the saved document, sees AS64500 cut after its
    # first round and confirms it after the round that sees the cut (its second or third):
    # without the saved history no verdict, so no confirmation, before round MIN_HISTORY + 1.
    min_history = 4
    params = OutsideParams(min_baseline=2, min_history=min_history)
    cfg = replace(config(tmp_path), confirm_after=0.1)
    saved: dict[str, str] = {}

    async def save(monitor: OutsideMonitor) -> None:
        saved["history"] = monitor.to_json()

    first = OutsideService(cfg, make_socket=lab.collector_socket, params=params,
                           rng=random.Random(SEED))
    first.save_history = save
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop))
    while first.rounds < min_history + 1:
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(task, 60)
    assert first.confirmations == {"dark": 0, "recovered": 0}

    second = OutsideService(cfg, make_socket=lab.collector_socket, params=params,
                            rng=random.Random(SEED))
    second.monitor.load_json(saved["history"])
    stop = asyncio.Event()
    task = asyncio.create_task(second.run(stop))
    try:
        while second.rounds < 1:
            await asyncio.sleep(0.05)
        await asyncio.to_thread(lab.cut, "198.18.0.0/20")
        async with asyncio.timeout(60):
            while second.last_confirmation is None:
                await asyncio.sleep(0.02)
        confirmed_after = second.rounds
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    assert confirmed_after <= 3 < min_history + 1
    assert first_samples_find_a_host(first, lab) and first_samples_find_a_host(second, lab)
    assert second.confirmations == {"dark": 1, "recovered": 0}
    result = second.last_confirmation
    assert (result.country, result.network, result.blocks_up) == ("KZ", "AS64500", 0)
    latest = second.monitor.latest[("KZ", "AS64500")].verdict
    assert latest.level.value == "critical" and latest.baseline == 8


async def test_without_raw_sockets_the_service_stays_down_and_says_why(tmp_path: Path) -> None:
    def refuse(family: int, kind: int, protocol: int) -> socket.socket:
        if kind == socket.SOCK_RAW:
            raise PermissionError(1, "Operation not permitted")
        return socket.socket(family, kind, protocol)

    service = OutsideService(config(tmp_path), make_socket=refuse)
    await asyncio.wait_for(service.run(asyncio.Event()), 5)
    assert service.up is False and service.rounds == 0
    assert service.problem is not None and "Operation not permitted" in service.problem
    registry = CollectorRegistry()
    registry.register(OutsideCollector(service))
    assert registry.get_sample_value("kuzot_outside_up") == 0
    assert registry.get_sample_value("kuzot_outside_probes_total", {"method": "icmp"}) == 0


def test_the_app_registers_the_component_only_when_enabled(tmp_path: Path) -> None:
    # The app is built, not started: no cleanup context runs, so nothing is sent.
    from collector.app import create_app
    from collector.config import CollectorConfig
    from collector.keys import outside_key, registry_key

    enabled = create_app(CollectorConfig(outside=config(tmp_path)))
    service = enabled[outside_key]
    assert service.up is False and len(service.blocks) == 17
    registry = enabled[registry_key]
    assert registry.get_sample_value("kuzot_outside_up") == 0
    assert registry.get_sample_value("kuzot_outside_blocks_configured") == 17
    disabled = create_app(CollectorConfig())
    assert outside_key not in disabled
    assert disabled[registry_key].get_sample_value("kuzot_outside_up") is None


async def test_the_app_hands_readings_to_the_engine_only_inside_a_detection_run(
        tmp_path: Path) -> None:
    # The pipeline feeds and evaluates its engine in a worker thread, and replaces it when it
    # takes the detection lease: a reading added to the engine from the event loop at the end
    # of a round could change it in the middle of an evaluation, or be dropped with it. The
    # app's hand-off keeps the readings for the pipeline's next run instead.
    from collector.app import create_app
    from collector.config import CollectorConfig
    from collector.detect.windows import Calendar
    from collector.keys import outside_key, pipeline_key
    from collector.metrics.detection import DetectionMetrics, EventSnapshot
    from collector.pipeline import Pipeline
    from collector.store import open_store

    app = create_app(CollectorConfig(outside=config(tmp_path)))
    store = await open_store(str(tmp_path / "kuzot.sqlite"))
    try:
        detection = DetectionConfig(outside=OutsideParams(min_baseline=2, min_history=3))
        pipeline = Pipeline(store, detection, Calendar(), DetectionMetrics(CollectorRegistry()),
                            EventSnapshot())
        app[pipeline_key] = pipeline
        await pipeline.start()
        service = app[outside_key]
        assert service.on_readings is not None
        service.on_readings([OutsideReading(cc="KZ", asn="AS64500", t=pipeline.started_at,
                                            blocks_up=8, blocks_total=9)])

        def outside(engine: Engine) -> OutsideDetector:
            detector = engine.detector("outside")
            assert isinstance(detector, OutsideDetector)
            return detector

        assert outside(pipeline.engine).networks == {}  # not touched outside a run
        await pipeline.run_once(pipeline.started_at + 1)
        view = outside(pipeline.engine).networks["KZ|AS64500"]
        assert (view.up, view.total, view.at) == (8.0, 9, pipeline.started_at)
        await pipeline.run_once(pipeline.started_at + 2)  # taken once
        assert len(outside(pipeline.engine).networks["KZ|AS64500"].history) == 1
    finally:
        await store.close()
