"""Prometheus metrics of detection: open-event counts and event windows read at scrape time,
and the pipeline's own counters. Bounded labels only: kind, tier, country, window name."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from collector.events.book import EventBook
from collector.events.kinds import DETECTED
from collector.metrics.ingest import NAMESPACE

TIERS = ("suspected", "likely", "confirmed")


class EventSnapshot:
    """The event windows in force, as the pipeline last saw them."""

    def __init__(self) -> None:
        self.windows: list[tuple[str, str]] = []  # (cc, name)


class DetectionCollector(Collector):
    """Counts of open events from the event book (what detection published), and the event
    windows in force. The book also exports one series per open event and network
    (``kuzot_event_active``), which alerting groups on."""

    def __init__(self, book: EventBook, snapshot: EventSnapshot) -> None:
        self.book = book
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = GaugeMetricFamily(
            f"{NAMESPACE}_events_open", "Open events by kind, tier and country.",
            labels=["kind", "tier", "cc"])
        open_events = self.book.open_events()
        tally: Tally[tuple[str, str, str]] = Tally((e.kind, e.tier, e.cc) for e in open_events)
        for cc in sorted({e.cc for e in open_events}):
            for kind in DETECTED:
                for tier in TIERS:
                    counts.add_metric([kind, tier, cc], tally.get((kind, tier, cc), 0))
        yield counts
        windows = GaugeMetricFamily(
            f"{NAMESPACE}_event_window_active",
            "1 for each event window (sensitive date) in force, by country and name.",
            labels=["cc", "window"])
        for cc, name in self.snapshot.windows:
            windows.add_metric([cc, name], 1)
        yield windows


class DetectionMetrics:
    """Counters of the detection pipeline, on the app's own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.runs = Counter(
            "detection_runs", "Detection pipeline runs by outcome.", ["outcome"],
            namespace=NAMESPACE, registry=registry)
        self.duration = Histogram(
            "detection_run_duration_seconds", "Time of one detection run (read, judge, write).",
            namespace=NAMESPACE, registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.inputs = Counter(
            "detection_inputs", "Stored rows read by detection, by kind.", ["kind"],
            namespace=NAMESPACE, registry=registry)
        self.late = Gauge(
            "detection_late_observations",
            "Observations that arrived after their bin was judged (kept for backfill only).",
            namespace=NAMESPACE, registry=registry)
        self.blind = Gauge(
            "detection_blind_evaluations",
            "Evaluations skipped because nearly every probe everywhere went silent at once "
            "(the collector's own connectivity is the likelier cause).",
            namespace=NAMESPACE, registry=registry)
        self.updates = Counter(
            "event_updates", "Event writes (opened, grown, escalated or closed), by kind and "
            "tier.", ["kind", "tier"], namespace=NAMESPACE, registry=registry)
        self.state_resets = Counter(
            "detection_state_resets", "Parts of the saved detection state converted or reset "
            "on load because their parameters or the code's state version changed.",
            ["detector", "reason", "action"], namespace=NAMESPACE, registry=registry)
        self.last_run = Gauge(
            "detection_last_run_timestamp_seconds", "When the last successful detection run "
            "ended, Unix time.", namespace=NAMESPACE, registry=registry)
        self.lag = Gauge(
            "detection_lag_seconds", "How far behind the stored rows detection is: now minus "
            "the collector's time of the last row judged, while a backlog remains; 0 when "
            "caught up.", namespace=NAMESPACE, registry=registry)
        self.monitor_outages = Counter(
            "monitor_outages", "Outages of the monitor itself (collector_down, "
            "control_unreachable): shown to researchers as such, never notified.", ["cause"],
            namespace=NAMESPACE, registry=registry)
