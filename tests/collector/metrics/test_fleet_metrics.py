"""Per-phase latency, outcomes per target, upload delay and fleet gauges: from what probes
submit over the real ingest and heartbeat API to the values Prometheus reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from collector.keys import registry_key
from collector.metrics.fleet import FleetMetrics, phase_durations
from tests.helpers.fleet import FAST, SLOW, running_collector, web_measurement


def test_phase_durations_of_a_complete_fetch() -> None:
    keys = web_measurement("https://kloop.kg/", "KG", "AS8449", phases=SLOW)["test_keys"]
    durations = phase_durations(keys)
    assert [p for p, _ in durations] == ["resolve", "connect", "tls", "processing", "transfer"]
    assert [s for _, s in durations] == pytest.approx([0.02, 0.04, 2.0, 3.0, 20.0])


@pytest.mark.parametrize(("layer", "phases"), [
    ("dns", []), ("tcp", ["resolve"]), ("tls", ["resolve", "connect"]),
])
def test_failed_operations_are_not_latencies(layer: str, phases: list[str]) -> None:
    keys = web_measurement("https://24.kg/", "KG", "AS8449", verdict="blocked", layer=layer,
                           mechanism="x")["test_keys"]
    assert [p for p, _ in phase_durations(keys)] == phases


def test_malformed_records_are_skipped_not_fatal() -> None:
    keys = {"queries": "nope", "tcp_connect": [1, {"status": {"success": True}, "t0": "a"}],
            "tls_handshakes": [{"failure": None, "t0": 2.0, "t": 1.0}], "requests": None}
    assert phase_durations(keys) == []


def test_target_label_is_capped() -> None:
    metrics = FleetMetrics(CollectorRegistry(), max_targets=2)
    assert [metrics._target(f"https://{i}.example/") for i in range(4)] == [
        "https://0.example/", "https://1.example/", "other", "other"]
    assert metrics._target("https://0.example/") == "https://0.example/"


async def test_ingest_and_heartbeats_fill_the_metrics(tmp_path: Path) -> None:
    async with running_collector(tmp_path) as collector:
        await collector.feed_wave(queue_depth=12)
        registry = collector.app[registry_key]

        def value(name: str, **labels: str) -> float | None:
            return registry.get_sample_value(name, labels)

        base = {"cc": "KZ", "asn": "AS9198", "target": "https://rus.azattyq.org/"}
        assert value("kuzot_phase_duration_seconds_count", **base, phase="tls") == 1
        assert value("kuzot_phase_duration_seconds_sum", **base, phase="tls") == \
            pytest.approx(SLOW["tls"])
        assert value("kuzot_phase_duration_seconds_sum", cc="KZ", asn="AS48716",
                     target="https://rus.azattyq.org/", phase="transfer") == \
            pytest.approx(FAST["transfer"])
        assert value("kuzot_target_measurements_total", cc="KZ", asn="AS9198",
                     target="https://vlast.kz/", verdict="blocked", layer="tls",
                     mechanism="timeout") == 1
        assert value("kuzot_target_measurements_total", **base, verdict="throttled", layer="",
                     mechanism="") == 1
        assert value("kuzot_probe_queue_depth", probe_id="kz-almaty-1") == 12
        assert value("kuzot_probe_last_heartbeat_timestamp_seconds",
                     probe_id="kg-bishkek-1") is not None
        # The measurements started 90 s before they arrived.
        assert value("kuzot_upload_delay_seconds_bucket", cc="KG", le="60.0") == 0
        assert value("kuzot_upload_delay_seconds_bucket", cc="KG", le="300.0") == 2
        # The rejected one (a lower-case country) is in no per-target series.
        assert value("kuzot_target_measurements_total", cc="kg", asn="AS8449",
                     target="https://kloop.kg/", verdict="ok", layer="", mechanism="") is None
