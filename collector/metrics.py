"""Prometheus metrics of the collector. One namespace, base units, bounded labels.

Counters for what the ingest path does are updated in the handlers (per-probe liveness and
per-target outcomes live in ``fleet_metrics``). The state of what is stored (latest verdict
per target, row count) is read from the store at scrape time by ``StoreCollector`` rather than
kept in thousands of mutated gauges: the ``/metrics`` handler refreshes a ``StoreSnapshot``
(async) and the collector renders it.

Labels take bounded values only: outcome and reason come from closed sets, cc and asn from
validated measurements, and ``target`` is a configured target URL,
"" for tests without an input (platforms), or "other". No raw URLs outside the configured list
and no error text.
"""

from __future__ import annotations

import time
from collections import Counter as Tally
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from collector.store import StoreUnavailable

NAMESPACE = "kuzot"
INGEST_OUTCOMES = ("ok", "invalid", "unauthorized", "forbidden", "too_large", "rate_limited",
                   "unavailable")
STORE_WRITES = ("add_measurements", "add_heartbeat")
STORE_READS = ("measurements", "aggregate", "scrape")
OTHER_TARGET = "other"


class IngestMetrics:
    """Counters and histograms of the request paths, registered on the app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "ingest_requests", "Measurement upload requests by outcome.", ["outcome"],
            namespace=NAMESPACE, registry=registry)
        self.ingested = Counter(
            "ingest_measurements", "Measurements in upload requests by result: stored (new), "
            "duplicate (already stored, not stored twice) or rejected (invalid).", ["result"],
            namespace=NAMESPACE, registry=registry)
        self.measurements = Counter(
            "measurements_received", "Measurements accepted and stored, by test, country, "
            "network and verdict.", ["test_name", "cc", "asn", "verdict"],
            namespace=NAMESPACE, registry=registry)
        self.rejected = Counter(
            "measurements_rejected", "Measurements rejected, by reason (a closed set).",
            ["reason"], namespace=NAMESPACE, registry=registry)
        self.location_mismatches = Counter(
            "measurements_location_mismatch", "Measurements whose declared country or network "
            "disagreed with the GeoIP database.", namespace=NAMESPACE, registry=registry)
        buckets = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
        self.store_writes = Histogram(
            "store_write_duration_seconds", "Time the store took to write durably, by "
            "operation.", ["operation"], namespace=NAMESPACE, registry=registry,
            buckets=buckets)
        self.store_reads = Histogram(
            "store_read_duration_seconds", "Time the store took to answer a read, by "
            "operation.", ["operation"], namespace=NAMESPACE, registry=registry,
            buckets=buckets)
        self.heartbeats = Counter(
            "heartbeats_received", "Heartbeats received from probes.",
            namespace=NAMESPACE, registry=registry)
        self.control_requests = Counter(
            "control_requests", "Control (test helper) requests by outcome.", ["outcome"],
            namespace=NAMESPACE, registry=registry)
        for outcome in INGEST_OUTCOMES:
            self.requests.labels(outcome)
        for result in ("stored", "duplicate", "rejected"):
            self.ingested.labels(result)

    def store_time(self, operation: str, seconds: float) -> None:
        histogram = self.store_writes if operation in STORE_WRITES else self.store_reads
        histogram.labels(operation).observe(seconds)


class StoreSnapshot:
    """The store's state as last read; refreshed by the /metrics handler before rendering."""

    def __init__(self, targets: frozenset[str] = frozenset()) -> None:
        self.targets = targets
        self.up = True
        self.total = 0
        self.latest: list[dict[str, Any]] = []


class StoreCollector(Collector):
    """Exports stored state, read at scrape time."""

    def __init__(self, snapshot: StoreSnapshot) -> None:
        self.snapshot = snapshot

    def target_label(self, input_: str | None) -> str:
        if not input_:
            return ""
        return input_ if input_ in self.snapshot.targets else OTHER_TARGET

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(f"{NAMESPACE}_store_up",
                               "1 if the store answered the last scrape, else 0.")
        up.add_metric([], 1 if self.snapshot.up else 0)
        yield up
        if not self.snapshot.up:
            return  # Scrape-time failures are soft: fewer metrics, never an error page.
        total = GaugeMetricFamily(f"{NAMESPACE}_measurements_stored",
                                  "Measurements in the store.")
        total.add_metric([], self.snapshot.total)
        yield total
        counts: Tally[tuple[str, str, str, str, str]] = Tally()
        for row in self.snapshot.latest:
            counts[(row["probe_cc"], row["probe_asn"], row["test_name"],
                    self.target_label(row["input"]), row["verdict"] or "none")] += 1
        latest = GaugeMetricFamily(
            f"{NAMESPACE}_target_verdict",
            "Targets whose latest measurement in this country and network has this verdict "
            "(0 or 1 for a configured target; a count for target=\"other\").",
            labels=["cc", "asn", "test_name", "target", "verdict"])
        for labels, count in sorted(counts.items()):
            latest.add_metric(list(labels), count)
        yield latest


async def refresh(snapshot: StoreSnapshot, store: Any, metrics: IngestMetrics) -> None:
    """Read what the collector exports from the store; marks the snapshot down on failure."""
    started = time.perf_counter()
    try:
        snapshot.total = await store.count_measurements()
        snapshot.latest = await store.latest_by_target()
        snapshot.up = True
    except StoreUnavailable:
        snapshot.up = False
    finally:
        metrics.store_time("scrape", time.perf_counter() - started)
