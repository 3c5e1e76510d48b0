"""Optional local ``/metrics`` for volunteers who run Prometheus next to their probe.

Off unless ``metrics_listen`` is set (keep it on 127.0.0.1: the page shows which sites the
probe finds blocked). Values are read from the daemon's state (``probe.daemon.state``) at
scrape time by one custom collector, on a registry of its own; nothing is mutated per
measurement. Labels are bounded: test names, configured targets and verdicts.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from probe.daemon.state import Stateful

NAMESPACE = "kuzot_probe"


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{NAMESPACE}_{name}", documentation, value=value)


def _flag(value: bool | None) -> float:
    return 1.0 if value else 0.0


class DaemonCollector(Collector):
    """Reads the daemon's state when Prometheus scrapes."""

    def __init__(self, daemon: Stateful) -> None:
        self.daemon = daemon

    def collect(self) -> Iterator[Metric]:
        d = self.daemon.state()
        yield _gauge("spool_measurements", "Measurements waiting in the spool for upload.",
                     d.depth.measurements)
        yield _gauge("spool_bytes", "Bytes of measurements waiting in the spool.", d.depth.bytes)
        for name, help_text in (
            ("uploaded", "Measurements the collector acknowledged as stored, since install."),
            ("evicted", "Measurements evicted (oldest first) because the spool was full."),
            ("evicted_bytes", "Bytes evicted because the spool was full."),
            ("quarantined", "Measurements the collector refused as malformed, set aside."),
        ):
            yield CounterMetricFamily(f"{NAMESPACE}_{name}", help_text,
                                      value=d.counters.get(name, 0))
        measured = CounterMetricFamily(f"{NAMESPACE}_measurements",
                                       "Measurements taken since the daemon started, by test.",
                                       labels=["test_name"])
        for test_name, count in sorted(d.measured.items()):
            measured.add_metric([test_name], count)
        yield measured
        heartbeats = CounterMetricFamily(f"{NAMESPACE}_heartbeats",
                                         "Heartbeats sent since start, by outcome.",
                                         labels=["outcome"])
        for outcome, count in sorted(d.heartbeats.items()):
            heartbeats.add_metric([outcome], count)
        yield heartbeats
        skipped = CounterMetricFamily(f"{NAMESPACE}_skipped",
                                      "Measurements not taken since start, by reason.",
                                      labels=["reason"])
        skipped.add_metric(["budget"], d.skipped_budget)
        skipped.add_metric(["offline"], d.skipped_offline)
        yield skipped
        yield _gauge("upload_failures", "Consecutive failed uploads (0 after a success).",
                     d.upload_failures)
        for name, help_text, moment in (
            ("last_upload_timestamp_seconds", "Time of the last successful upload.",
             d.last_upload),
            ("last_heartbeat_timestamp_seconds", "Time of the last answered heartbeat.",
             d.last_heartbeat),
        ):
            yield _gauge(name, help_text, moment.timestamp() if moment else 0.0)
        yield _gauge("collector_reachable", "1 when the last heartbeat was answered.",
                     _flag(d.reachable))
        yield _gauge("network_online", "1 when the last connectivity ladder found the "
                     "Internet reachable.", _flag(d.online))
        yield _gauge("event_window", "1 inside an event window told by the collector.",
                     _flag(d.in_event_window))
        yield _gauge("clock_verified", "1 while the clock's offset from the collector's is "
                     "known (checked, no jump since, not too old).", _flag(d.clock_verified))
        yield _gauge("clock_offset_seconds", "The collector's clock minus this device's at "
                     "the last check (0 before any).",
                     d.clock_offset if d.clock_offset is not None else 0.0)
        yield _gauge("data_used_today_bytes", "Estimated bytes used today (UTC).", d.used_today)
        yield _gauge("data_budget_bytes", "Daily data budget in bytes (0 = no cap).",
                     d.budget or 0)
        verdicts = GaugeMetricFamily(f"{NAMESPACE}_target_verdict",
                                     "Latest verdict per target (1 = current).",
                                     labels=["target", "verdict"])
        for target, verdict in sorted(d.latest.items()):
            verdicts.add_metric([target, verdict], 1.0)
        yield verdicts


def registry_for(daemon: Stateful) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(DaemonCollector(daemon))
    return registry


class MetricsServer:
    """A tiny aiohttp server with one route, ``GET /metrics``."""

    def __init__(self, daemon: Stateful, listen: str) -> None:
        self.registry = registry_for(daemon)
        host, _, port = listen.rpartition(":")
        self.host = host.strip("[]")
        self.port = int(port)
        self._runner: web.AppRunner | None = None

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
