"""Prometheus families of the outside-in component, computed at scrape time from the service.

Labels are bounded: country and network come from the operator's block files (networks by
ASN), ``state`` and ``level`` from closed lists, ``method`` is icmp or tcp. The whole-country
group has ``network=""``.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from collector.detect.outside import Level
from collector.metrics.ingest import NAMESPACE
from collector.outside.service import OutsideService

PREFIX = f"{NAMESPACE}_outside"
STATES = ("up", "down", "uncertain", "unjudged")


class OutsideCollector(Collector):
    def __init__(self, service: OutsideService) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        service = self.service
        up = GaugeMetricFamily(f"{PREFIX}_up", "1 while the outside-in prober runs (raw "
                               "sockets open), else 0.")
        up.add_metric([], 1 if service.up else 0)
        yield up
        rate = GaugeMetricFamily(f"{PREFIX}_rate_limit_packets_per_second",
                                 "The configured bound on the prober's packets per second.")
        rate.add_metric([], service.config.rate)
        yield rate
        configured = GaugeMetricFamily(f"{PREFIX}_blocks_configured",
                                       "Configured /24 blocks (after the opt-out list).")
        configured.add_metric([], len(service.blocks))
        yield configured
        if service.prober is not None:
            listed = GaugeMetricFamily(f"{PREFIX}_network_blocks_configured",
                                       "Configured /24 blocks per network.",
                                       labels=["country", "network"])
            watched = GaugeMetricFamily(f"{PREFIX}_blocks_watched", "Blocks in the network's "
                                        "watch set (probed every round; the others get no "
                                        "packet).", labels=["country", "network"])
            for cc, network, count, watching in service.prober.watch_counts():
                listed.add_metric([cc, network], count)
                watched.add_metric([cc, network], watching)
            yield listed
            yield watched
        counters = service.counters
        sent = CounterMetricFamily(f"{PREFIX}_probes", "Probes sent, by method.",
                                   labels=["method"])
        for method in ("icmp", "tcp"):
            sent.add_metric([method], counters.by_method.get(method, 0))
        yield sent
        answered = CounterMetricFamily(f"{PREFIX}_replies", "Probes that were answered.")
        answered.add_metric([], counters.answered)
        yield answered
        rounds = CounterMetricFamily(f"{PREFIX}_rounds", "Probing rounds completed.")
        rounds.add_metric([], service.rounds)
        yield rounds
        confirmations = CounterMetricFamily(
            f"{PREFIX}_confirmations", "Second looks at a network that turned critical, by "
            "result (dark: still critical, recovered: it answers again).", labels=["result"])
        for result in ("dark", "recovered"):
            confirmations.add_metric([result], service.confirmations.get(result, 0))
        yield confirmations
        report = service.report
        if report is None:
            return
        last = GaugeMetricFamily(f"{PREFIX}_last_round_timestamp_seconds",
                                 "When the last complete round started (Unix time).")
        last.add_metric([], report.started)
        yield last
        duration = GaugeMetricFamily(f"{PREFIX}_round_duration_seconds",
                                     "How long the last round took.")
        duration.add_metric([], report.seconds)
        yield duration
        blocks = GaugeMetricFamily(f"{PREFIX}_blocks", "Blocks by Trinocular state in the "
                                   "last round, per network and country (network=\"\").",
                                   labels=["country", "network", "state"])
        share = GaugeMetricFamily(f"{PREFIX}_blocks_up_ratio", "Share of judged blocks that "
                                  "are up in the last round.", labels=["country", "network"])
        baseline = GaugeMetricFamily(f"{PREFIX}_baseline_blocks_up", "Median of blocks up "
                                     "over the history (IODA's baseline).",
                                     labels=["country", "network"])
        verdict = GaugeMetricFamily(f"{PREFIX}_verdict", "1 for the current outside-in "
                                    "verdict of each group (none, warning, critical, "
                                    "insufficient).", labels=["country", "network", "level"])
        for item in service.verdicts:
            group, labels = item.group, [item.group.country, item.group.network]
            for state, count in zip(STATES, (group.up, group.down, group.uncertain,
                                             group.unjudged), strict=True):
                blocks.add_metric([*labels, state], count)
            if group.share_up is not None:
                share.add_metric(labels, group.share_up)
            if item.verdict.baseline is not None:
                baseline.add_metric(labels, item.verdict.baseline)
            for level in Level:
                verdict.add_metric([*labels, level.value],
                                   1 if item.verdict.level is level else 0)
        yield from (blocks, share, baseline, verdict)
