"""Prometheus metrics of the collector. One namespace, base units, bounded labels.

Counters for what the ingest path does are updated in the handlers; the state of what is
stored (measurements by verdict, latest verdict per target) is read from the store at scrape
time by ``StoreCollector`` rather than kept in thousands of mutated gauges.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

NAMESPACE = "kuzot"


class IngestMetrics:
    """Counters and histograms of the ingest path, registered on the app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "ingest_requests", "Ingest HTTP requests by outcome.", ["outcome"],
            namespace=NAMESPACE, registry=registry)
        self.measurements = Counter(
            "measurements_received", "Measurements accepted and stored, by test, country, "
            "network and verdict.", ["test_name", "cc", "asn", "verdict"],
            namespace=NAMESPACE, registry=registry)
        self.duplicates = Counter(
            "measurements_duplicate", "Measurements received again (retries); not stored twice.",
            namespace=NAMESPACE, registry=registry)
        self.rejected = Counter(
            "measurements_rejected", "Measurements rejected, by reason class.", ["reason"],
            namespace=NAMESPACE, registry=registry)
        self.store_seconds = Histogram(
            "store_write_duration_seconds", "Time to write one batch durably.",
            namespace=NAMESPACE, registry=registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.heartbeats = Counter(
            "heartbeats_received", "Heartbeats received from probes.",
            namespace=NAMESPACE, registry=registry)
        self.control_requests = Counter(
            "control_requests", "Control (test helper) requests by outcome.", ["outcome"],
            namespace=NAMESPACE, registry=registry)


class StoreSnapshot:
    """The store's state as last read; refreshed by the /metrics handler before rendering."""

    def __init__(self) -> None:
        self.latest: list[dict[str, Any]] = []
        self.total = 0


class StoreCollector(Collector):
    """Exports stored state, read at scrape time."""

    def __init__(self, snapshot: StoreSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        total = GaugeMetricFamily(f"{NAMESPACE}_measurements_stored",
                                  "Measurements in the store.")
        total.add_metric([], self.snapshot.total)
        yield total
        latest = GaugeMetricFamily(
            f"{NAMESPACE}_target_verdict",
            "Latest verdict per target and network: 1 for the current verdict.",
            labels=["cc", "asn", "test_name", "target", "verdict"])
        for row in self.snapshot.latest:
            latest.add_metric([row["probe_cc"], row["probe_asn"], row["test_name"],
                               row["input"] or "", row["verdict"] or "none"], 1)
        yield latest


async def refresh(snapshot: StoreSnapshot, store: Any) -> None:
    snapshot.total, snapshot.latest = await asyncio.gather(
        store.count_measurements(), store.latest_by_target())
