"""Heartbeats and /metrics: liveness per probe, ingest counters, state read at scrape time."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from collector.config import Auth
from tests.collector.factory import measurement
from tests.helpers.collector_app import running


async def test_heartbeats_feed_liveness_and_metrics(database: str) -> None:
    async with running(database) as c:
        headers = await c.token("bishkek-1")
        before = datetime.now(UTC).replace(microsecond=0).timestamp()
        response = await c.client.post("/api/v1/heartbeat", headers=headers, json={
            "probe_id": "bishkek-1", "sent_at": "2024-05-01T12:00:00Z", "queue_depth": 17,
            "software_version": "0.1.0", "battery": 80})
        assert response.status == 200
        # probe_id: the name the collector knows the token by (probe init writes it).
        assert await response.json() == {"ok": True, "event_windows": [],
                                         "observed_address": "127.0.0.1",
                                         "probe_id": "bishkek-1"}
        [probe] = await c.store.probes()
        assert (probe["probe_id"], probe["sent_at"], probe["queue_depth"],
                probe["software_version"]) == ("bishkek-1", "2024-05-01 12:00:00", 17, "0.1.0")
        await c.client.get("/metrics")
        seen = c.sample("kuzot_probe_last_heartbeat_timestamp_seconds",
                        {"probe_id": "bishkek-1"})
        assert seen is not None and before <= seen <= before + 60
        assert c.sample("kuzot_probe_queue_depth", {"probe_id": "bishkek-1"}) == 17
        assert c.sample("kuzot_heartbeats_received_total") == 1
        response = await c.client.post("/api/v1/heartbeat", headers=headers, json={
            "probe_id": "someone-else", "sent_at": "2024-05-01T12:00:00Z"})
        assert (response.status, await response.json()) == (
            400, {"error": "probe_id: does not match the token"})
        assert (await c.client.post("/api/v1/heartbeat", json={"sent_at": "x"})).status == 401
        big = {"sent_at": "2024-05-01T12:00:00Z", "pad": "x" * 20000}
        response = await c.client.post("/api/v1/heartbeat", headers=headers, json=big)
        assert response.status == 413


async def test_anonymous_heartbeats_name_their_probe(tmp_path: Path) -> None:
    async with running(f"{tmp_path}/k.sqlite", auth=Auth(require_token=False)) as c:
        response = await c.client.post("/api/v1/heartbeat", json={
            "probe_id": "lab-1", "sent_at": "2024-05-01 12:00:00"})
        assert response.status == 200
        assert [p["probe_id"] for p in await c.store.probes()] == ["lab-1"]


async def test_metrics_follow_the_house_style(database: str) -> None:
    async with running(database) as c:
        headers = await c.token()
        listed = measurement(test_keys={"analysis": {"verdict": "blocked", "layer": "tls",
                                                     "mechanism": "reset"}})
        unlisted = [measurement(input=f"https://unlisted-{i}.kg/?q=secret") for i in range(3)]
        platform = measurement(input=None, test_name="telegram")
        response = await c.client.post("/api/v1/measurements", headers=headers, json={
            "measurements": [listed, *unlisted, platform]})
        assert response.status == 200
        await c.client.post("/api/v1/measurements", headers=headers,
                            json=measurement(probe_cc="k"))
        page = await (await c.client.get("/metrics")).text()
        families = {f.name: f for f in text_string_to_metric_families(page)}
        # Names: one namespace (besides the client library's process and Python
        # collectors), base units, counters with _total.
        foreign = sorted(name for name in families
                         if not name.startswith(("kuzot_", "process_", "python_")))
        assert foreign == [], foreign
        assert sum(name.startswith("kuzot_") for name in families) >= 20
        for name, family in families.items():
            if name.startswith("kuzot_") and family.type == "counter":
                assert all(s.name.endswith(("_total", "_created")) for s in family.samples)
            if name.startswith("kuzot_"):
                assert family.documentation.endswith("."), name
        assert families["kuzot_store_write_duration_seconds"].type == "histogram"
        assert families["kuzot_store_read_duration_seconds"].type == "histogram"
        # Labels stay bounded: configured targets by name, others folded into "other".
        targets = {s.labels["target"] for s in families["kuzot_target_verdict"].samples}
        assert targets == {"https://kloop.kg/", "other", ""}
        assert c.sample("kuzot_target_verdict", {
            "cc": "KG", "asn": "AS8449", "test_name": "web_connectivity",
            "target": "https://kloop.kg/", "verdict": "blocked"}) == 1
        assert c.sample("kuzot_target_verdict", {
            "cc": "KG", "asn": "AS8449", "test_name": "web_connectivity", "target": "other",
            "verdict": "ok"}) == 3
        assert c.sample("kuzot_measurements_received_total", {
            "test_name": "telegram", "cc": "KG", "asn": "AS8449", "verdict": "ok"}) == 1
        assert c.sample("kuzot_measurements_stored") == 5
        assert c.sample("kuzot_store_up") == 1
        assert c.sample("kuzot_ingest_requests_total", {"outcome": "ok"}) == 1
        assert c.sample("kuzot_ingest_requests_total", {"outcome": "invalid"}) == 1
        assert c.sample("kuzot_measurements_rejected_total", {"reason": "probe_cc"}) == 1
        assert c.sample("kuzot_store_write_duration_seconds_count",
                        {"operation": "add_measurements"}) == 1
        assert c.sample("kuzot_store_read_duration_seconds_count",
                        {"operation": "scrape"}) == 1
        # No error text in any label value.
        for family in families.values():
            for sample in family.samples:
                assert all(len(v) < 100 and " " not in v for v in sample.labels.values())
