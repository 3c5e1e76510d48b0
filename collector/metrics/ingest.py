"""Prometheus metrics of the collector. One namespace, base units, bounded labels.

Counters for what the ingest path does are updated in the handlers (per-probe liveness and
per-target outcomes live in ``fleet_metrics``). The state of what is stored (latest verdict
per target, row count) is read from the store at scrape time by ``StoreCollector`` rather than
kept in thousands of mutated gauges: the ``/metrics`` handler refreshes a ``StoreSnapshot``
(async) and the collector renders it (as text, caching the verdict lines: see
``collector.metrics.exposition``).

Labels take bounded values only: outcome and reason come from closed sets, cc and asn from
validated measurements, and ``target`` is a configured target URL,
"" for tests without an input (platforms), or "other". No raw URLs outside the configured list
and no error text.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from collector.metrics.exposition import header, sample_line
from collector.store import StoreUnavailable

NAMESPACE = "kuzot"
INGEST_OUTCOMES = ("ok", "invalid", "unauthorized", "forbidden", "too_large", "rate_limited",
                   "unavailable")
STORE_WRITES = ("add_measurements", "add_heartbeat")
STORE_READS = ("measurements", "aggregate", "scrape")
OTHER_TARGET = "other"
UP_HELP = "1 if the store answered the last scrape, else 0."
STORED_HELP = "Measurements in the store."
VERDICT_HELP = ("Targets whose latest measurement in this country and network has this verdict "
                "(0 or 1 for a configured target; a count for target=\"other\").")
VERDICT_LABELS = ("cc", "asn", "test_name", "target", "verdict")


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
        self.verdicts: list[tuple[str, str, str, str, str | None]] = []


class StoreCollector(Collector):
    """Exports stored state, read at scrape time."""

    def __init__(self, snapshot: StoreSnapshot) -> None:
        self.snapshot = snapshot
        self._rendered_from: list[tuple[str, str, str, str, str | None]] | None = None
        self._rendered = ""
        self._lines: dict[tuple[tuple[str, str, str, str, str], int], str] = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(f"{NAMESPACE}_store_up", UP_HELP)
        up.add_metric([], 1 if self.snapshot.up else 0)
        yield up
        if not self.snapshot.up:
            return  # Scrape-time failures are soft: fewer metrics, never an error page.
        total = GaugeMetricFamily(f"{NAMESPACE}_measurements_stored", STORED_HELP)
        total.add_metric([], self.snapshot.total)
        yield total
        latest = GaugeMetricFamily(f"{NAMESPACE}_target_verdict", VERDICT_HELP,
                                   labels=list(VERDICT_LABELS))
        for labels, count in self.verdict_counts():
            latest.add_metric(list(labels), count)
        yield latest

    def verdict_counts(self) -> list[tuple[tuple[str, str, str, str, str], int]]:
        """((cc, asn, test_name, target, verdict), count), sorted; unlisted targets fold into
        target="other". Runs on every scrape whose rows changed, hence the plain loop."""
        targets = self.snapshot.targets
        counts: dict[tuple[str, str, str, str, str], int] = {}
        for cc, asn, test_name, target, verdict in self.snapshot.verdicts:
            label = target if not target or target in targets else OTHER_TARGET
            key = (cc, asn, test_name, label, verdict or "none")
            counts[key] = counts.get(key, 0) + 1
        return sorted(counts.items())

    def exposition(self) -> str:
        """The same families as ``collect``, as text. 10,000 targets are 10,000 lines: they are
        reused while the rows read from the store are unchanged, and otherwise only the lines
        whose labels or count changed are rendered again."""
        up = header(f"{NAMESPACE}_store_up", UP_HELP, "gauge") + sample_line(
            f"{NAMESPACE}_store_up", {}, 1 if self.snapshot.up else 0)
        if not self.snapshot.up:
            return up
        total = header(f"{NAMESPACE}_measurements_stored", STORED_HELP, "gauge") + sample_line(
            f"{NAMESPACE}_measurements_stored", {}, self.snapshot.total)
        if self._rendered_from != self.snapshot.verdicts:
            name = f"{NAMESPACE}_target_verdict"
            previous, lines = self._lines, {}
            for key in self.verdict_counts():
                line = previous.get(key)
                if line is None:
                    labels, count = key
                    line = sample_line(name, dict(zip(VERDICT_LABELS, labels, strict=True)),
                                       count)
                lines[key] = line
            self._lines = lines  # only the lines in use are kept
            self._rendered = header(name, VERDICT_HELP, "gauge") + "".join(lines.values())
            self._rendered_from = self.snapshot.verdicts
        return up + total + self._rendered


async def refresh(snapshot: StoreSnapshot, store: Any, metrics: IngestMetrics) -> None:
    """Read what the collector exports from the store; marks the snapshot down on failure."""
    started = time.perf_counter()
    try:
        snapshot.total = await store.count_measurements()
        snapshot.verdicts = await store.target_verdicts()
        snapshot.up = True
    except StoreUnavailable:
        snapshot.up = False
    finally:
        metrics.store_time("scrape", time.perf_counter() - started)
