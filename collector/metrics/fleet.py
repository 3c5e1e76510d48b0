"""Metrics researchers chart in Grafana: per-phase latency and outcomes per target and network,
upload delay, and the health of the probe fleet.

Fed by the ingest and heartbeat handlers with what probes submit. Labels stay bounded: the
target label takes at most ``max_targets`` distinct values (a token holder sending endless new
URLs gets ``other`` after that), ASNs and countries are validated, probe ids are the issued
tokens' names. Phase names follow blackbox_exporter's: resolve, connect, tls, processing (request
sent to first byte), transfer (first byte to last).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from collector.metrics.exposition import TextCounter, TextHistogram

PHASES = ("resolve", "connect", "tls", "processing", "transfer")
PHASE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DELAY_BUCKETS = (10.0, 60.0, 300.0, 900.0, 3600.0, 6 * 3600.0, 86400.0, 7 * 86400.0)
OTHER = "other"


def _span(record: Mapping[str, Any], start: str, end: str) -> float | None:
    t0, t = record.get(start), record.get(end)
    if isinstance(t0, int | float) and isinstance(t, int | float) and t >= t0:
        return float(t) - float(t0)
    return None


def phase_durations(test_keys: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(phase, seconds) for each successful operation a web measurement recorded.

    Failed operations are not latencies (a timeout would read as a slow success); they are
    counted by verdict, layer and mechanism instead.
    """
    out: list[tuple[str, float]] = []

    def records(key: str) -> list[Mapping[str, Any]]:
        value = test_keys.get(key)
        return [r for r in value if isinstance(r, Mapping)] if isinstance(value, list) else []

    for query in records("queries"):
        if query.get("engine") == "getaddrinfo" and query.get("failure") is None:
            span = _span(query, "t0", "t")
            if span is not None:
                out.append(("resolve", span))
    for connect in records("tcp_connect"):
        status = connect.get("status")
        if isinstance(status, Mapping) and status.get("success") is True:
            span = _span(connect, "t0", "t")
            if span is not None:
                out.append(("connect", span))
    for handshake in records("tls_handshakes"):
        if handshake.get("failure") is None:
            span = _span(handshake, "t0", "t")
            if span is not None:
                out.append(("tls", span))
    for request in records("requests"):
        if request.get("failure") is None:
            processing = _span(request, "t0", "x_ttfb")
            transfer = _span(request, "x_ttfb", "t")
            if processing is not None:
                out.append(("processing", processing))
            if transfer is not None:
                out.append(("transfer", transfer))
    return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the fleet metrics record of one stored measurement: made where the measurement is
    validated (``collector.api.prepare``, on a worker thread or process), recorded on the
    event loop by ``FleetMetrics.record``."""

    cc: str
    asn: str
    input: str | None
    verdict: str
    layer: str
    mechanism: str
    phases: tuple[tuple[str, float], ...]
    start: datetime

    def __reduce__(self) -> tuple[type[Outcome], tuple[Any, ...]]:
        # Outcomes come back from the ingest's worker processes by pickle, a hundred a batch,
        # unpickled on the collector's own process: the fields in order cost half of what
        # the dataclass's own state methods do (they look the fields up for every outcome).
        return (Outcome, (self.cc, self.asn, self.input, self.verdict, self.layer,
                          self.mechanism, self.phases, self.start))


def outcome_of(measurement: Mapping[str, Any], cc: str, asn: str, input_: str | None,
               start: datetime) -> Outcome:
    """``measurement``'s outcome at its stored location (``cc``/``asn``, GeoIP-placed) and
    scrubbed ``input_``, not the raw upload's."""
    keys = measurement.get("test_keys")
    keys = keys if isinstance(keys, Mapping) else {}
    analysis = keys.get("analysis")
    analysis = analysis if isinstance(analysis, Mapping) else {}
    return Outcome(cc, asn, input_, str(analysis.get("verdict") or "none"),
                   str(analysis.get("layer") or ""), str(analysis.get("mechanism") or ""),
                   tuple(phase_durations(keys)), start)


class FleetMetrics:
    def __init__(self, registry: CollectorRegistry, max_targets: int = 1000) -> None:
        self.max_targets = max_targets
        self._targets: set[str] = set()
        # The two families that grow with targets x networks render incrementally; the
        # upload delay too, which every measurement observes (a prometheus-client histogram
        # takes a lock and walks its buckets for each value).
        self.phase = TextHistogram(
            "kuzot_phase_duration_seconds", "Duration of each successful phase of a web "
            "measurement, by country, network, target and phase.",
            ["cc", "asn", "target", "phase"], buckets=PHASE_BUCKETS, registry=registry)
        self.outcomes = TextCounter(
            "kuzot_target_measurements", "Measurements per target and network by verdict, "
            "failing layer and mechanism (empty when none).",
            ["cc", "asn", "target", "verdict", "layer", "mechanism"], registry=registry)
        self.upload_delay = TextHistogram(
            "kuzot_upload_delay_seconds", "Time from a measurement's start to its arrival; "
            "long delays are uploads held back by a shutdown.", ["cc"],
            buckets=DELAY_BUCKETS, registry=registry)
        self.last_measurement = Gauge(
            "kuzot_probe_last_measurement_timestamp_seconds", "Arrival of the latest "
            "measurement from each probe (Unix time).", ["probe_id", "cc", "asn"],
            registry=registry)
        self.last_heartbeat = Gauge(
            "kuzot_probe_last_heartbeat_timestamp_seconds", "Arrival of the latest heartbeat "
            "from each probe (Unix time).", ["probe_id"], registry=registry)
        self.queue_depth = Gauge(
            "kuzot_probe_queue_depth", "Measurements waiting on each probe to be uploaded, as "
            "its latest heartbeat said.", ["probe_id"], registry=registry)

    def _target(self, value: object) -> str:
        target = value if isinstance(value, str) else ""
        if target in self._targets or not target:
            return target
        if len(self._targets) >= self.max_targets:
            return OTHER
        self._targets.add(target)
        return target

    def observe(self, measurement: Mapping[str, Any], probe_id: str, start: datetime,
                received: datetime) -> None:
        """Record one newly stored measurement (already validated)."""
        self.record(outcome_of(measurement, str(measurement.get("probe_cc", "")),
                               str(measurement.get("probe_asn", "")),
                               measurement.get("input"), start), probe_id, received)

    def record(self, outcome: Outcome, probe_id: str, received: datetime) -> None:
        """Record the outcome of one newly stored measurement."""
        self.record_many([outcome], probe_id, received)

    def record_many(self, outcomes: list[Outcome], probe_id: str, received: datetime) -> None:
        """Record the outcomes of a batch's newly stored measurements: each labelled series
        looked up once a batch, not once a measurement (a batch of one probe's measurements
        repeats its country, network and most targets)."""
        counts: Counter[tuple[str, str, str, str, str, str]] = Counter()
        phases: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
        delays: dict[str, list[float]] = defaultdict(list)
        networks: set[tuple[str, str]] = set()
        for outcome in outcomes:
            cc, asn, target = outcome.cc, outcome.asn, self._target(outcome.input)
            counts[cc, asn, target, outcome.verdict, outcome.layer, outcome.mechanism] += 1
            for phase, seconds in outcome.phases:
                phases[cc, asn, target, phase].append(seconds)
            delays[cc].append(max(0.0, (received - outcome.start).total_seconds()))
            networks.add((cc, asn))
        for labels, count in counts.items():
            self.outcomes.labels(*labels).inc(count)
        for phase_labels, values in phases.items():
            self.phase.labels(*phase_labels).observe_many(values)
        for cc, values in delays.items():
            self.upload_delay.labels(cc).observe_many(values)
        for cc, asn in networks:
            self.last_measurement.labels(probe_id, cc, asn).set(received.timestamp())

    def heartbeat(self, probe_id: str, body: Mapping[str, Any], received: datetime) -> None:
        self.last_heartbeat.labels(probe_id).set(received.timestamp())
        depth = body.get("queue_depth")
        if isinstance(depth, int) and not isinstance(depth, bool) and depth >= 0:
            self.queue_depth.labels(probe_id).set(depth)
