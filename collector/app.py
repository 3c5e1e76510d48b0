"""Application factory. No side effects at import; every resource lives in cleanup_ctx."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

from aiohttp import web

from collector.announce import announcer
from collector.api.geoip import GeoIP
from collector.api.handlers import error_middleware
from collector.api.ingest_workers import IngestWorkers, auto_workers
from collector.api.list_health_web import list_health_ctx
from collector.api.pseudonyms import load_access
from collector.api.ratelimit import RateLimiter
from collector.api.security import setup_security_headers
from collector.api.served_lists import ServedLists
from collector.api.target_lists import served_lists
from collector.config import CollectorConfig
from collector.detect.outside_in import OutsideReading
from collector.events.book import EventBook, EventCollector
from collector.events.names import NetworkNames
from collector.events.windows import load_calendar
from collector.keys import (
    announcer_key,
    calendar_key,
    categories_key,
    config_key,
    control_gate_key,
    detection_metrics_key,
    event_snapshot_key,
    eventbook_key,
    fleet_key,
    geoip_key,
    ingest_workers_key,
    metrics_key,
    names_key,
    notifier_key,
    outside_key,
    pipeline_key,
    ratelimit_key,
    read_access_key,
    registry_key,
    served_lists_key,
    snapshot_key,
    store_key,
)
from collector.metrics.detection import DetectionCollector, DetectionMetrics, EventSnapshot
from collector.metrics.exposition import ExpositionRegistry
from collector.metrics.fleet import FleetMetrics
from collector.metrics.ingest import IngestMetrics, StoreCollector, StoreSnapshot
from collector.notify.dispatch import Notifier
from collector.pipeline import pipeline_ctx
from collector.routes import setup_routes
from collector.store import TIME_FORMAT, open_store
from collector.vantage.control import ControlGate
from collector.vantage.sni_ab import sni_ab_context
from probe.core.typed_config import ConfigError

log = logging.getLogger(__name__)


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[config_key]
    store = await open_store(config.database, pool_size=config.database_pool_size,
                             archive_dir=config.storage.archive_dir,
                             archive_s3=config.storage.s3_settings(),
                             archive_cache_bytes=config.storage.archive_cache_bytes,
                             coming=app[ingest_workers_key].coming,
                             commit_wait=config.ingest.commit_wait)
    app[store_key] = store
    yield
    await store.close()


async def _read_access_ctx(app: web.Application) -> AsyncIterator[None]:
    app[read_access_key] = await load_access(app[store_key],
                                             app[config_key].read_api.operator_token_file)
    yield


def _categories(config: CollectorConfig, lists: ServedLists | None) -> dict[str, str]:
    """URL -> category code, from the served lists and the collector's target files."""
    found: dict[str, str] = {}
    if lists is not None:
        for cc in config.status.countries:
            try:
                targets = lists.document(cc)["targets"]
            except ConfigError:
                continue
            found.update({t["url"]: t["category"] for t in targets if t.get("category")})
    found.update(dict(config.target_categories))
    return found


async def _geoip_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[config_key]
    paths = [p for p in (config.geoip_database, config.geoip_asn_database) if p]
    geoip = GeoIP(*paths) if paths else None
    app[geoip_key] = geoip
    yield
    if geoip is not None:
        geoip.close()


async def _ingest_workers_ctx(app: web.Application) -> AsyncIterator[None]:
    # No process starts here: the first large upload starts them (collector.api.ingest_workers).
    yield
    await app[ingest_workers_key].close()


async def _notifier_ctx(app: web.Application) -> AsyncIterator[None]:
    notifier = app[notifier_key]
    await notifier.start()
    yield
    await notifier.close()


def _outside(app: web.Application, registry: ExpositionRegistry) -> Callable[
        [web.Application], AsyncIterator[None]]:
    """The outside-in prober (``outside:``): its metrics now, its task after the pipeline,
    whose engine takes its readings (a round that ends before the pipeline starts is only
    counted in the metrics)."""
    from collector.outside import prober_state
    from collector.outside.hourly import STATE_NAME as HOURLY_STATE
    from collector.outside.hourly import HourlyShare
    from collector.outside.metrics import OutsideCollector
    from collector.outside.prober import Prober
    from collector.outside.service import OutsideService, outside_context
    from collector.outside.signal import STATE_NAME as HISTORY_STATE
    from collector.outside.signal import OutsideMonitor

    def to_engine(readings: list[OutsideReading]) -> None:
        pipeline = app.get(pipeline_key)
        # With detection off nothing evaluates the engine: readings would only pile up. The
        # pipeline adds them at its next run (``Pipeline.offer``): only its task touches the
        # engine, in a worker thread.
        if pipeline is not None and app[config_key].detection.enabled:
            pipeline.offer(list(readings))

    config = app[config_key]
    service = OutsideService(config.outside, on_readings=to_engine,
                             params=config.detection.outside)
    app[outside_key] = service
    registry.register(OutsideCollector(service))
    run = outside_context(service)

    async def save(hourly: HourlyShare) -> None:
        await app[store_key].save_state(HOURLY_STATE, hourly.to_json(),
                                        datetime.now(UTC).strftime(TIME_FORMAT))

    async def save_history(monitor: OutsideMonitor) -> None:
        await app[store_key].save_state(HISTORY_STATE, monitor.to_json(),
                                        datetime.now(UTC).strftime(TIME_FORMAT))

    async def save_prober(prober: Prober) -> None:
        await app[store_key].save_state(prober_state.STATE_NAME, prober_state.to_json(prober),
                                        datetime.now(UTC).strftime(TIME_FORMAT))

    async def context(app: web.Application) -> AsyncIterator[None]:
        # The prober's watch sets survive a restart (read by the service when its prober is
        # built, before the first round: a damaged document is refused there).
        service.saved_prober = await app[store_key].load_state(prober_state.STATE_NAME)
        service.save_prober = save_prober
        # The verdicts' history survives a restart (so a network that turns critical in the
        # first rounds after it is confirmed at once), and so does the hourly signal.
        try:
            service.monitor.load_json(await app[store_key].load_state(HISTORY_STATE))
        except ValueError as exc:
            log.warning("starting the outside-in history anew: %s", exc)
        service.save_history = save_history
        try:
            service.hourly = HourlyShare.from_json(await app[store_key].load_state(HOURLY_STATE))
        except ValueError as exc:
            log.warning("starting the outside-in hourly signal anew: %s", exc)
        service.save_hourly = save
        async for _ in run(app):
            yield

    return context


def create_app(config: CollectorConfig) -> web.Application:
    app = web.Application(client_max_size=config.limits.max_body_bytes,
                          middlewares=[error_middleware])
    app[config_key] = config
    registry = ExpositionRegistry()
    app[registry_key] = registry
    app[metrics_key] = IngestMetrics(registry)
    snapshot = StoreSnapshot(frozenset(config.targets))
    app[snapshot_key] = snapshot
    registry.register(StoreCollector(snapshot))
    app[ratelimit_key] = RateLimiter(config.limits.rate_per_minute)
    app[control_gate_key] = ControlGate(config.control.max_concurrent)
    app[fleet_key] = FleetMetrics(registry)
    workers = config.ingest.workers
    app[ingest_workers_key] = IngestWorkers(auto_workers() if workers is None else workers,
                                            config.ingest.process_min_bytes)
    notifier = Notifier(config.notifications, config.status_url, registry)
    app[notifier_key] = notifier
    book = EventBook(sinks=[notifier])
    app[eventbook_key] = book
    app[served_lists_key] = served_lists(config.target_lists)
    app[announcer_key] = announcer(config.announce)
    app[names_key] = NetworkNames.load(config.status.asn_names)
    app[categories_key] = _categories(config, app[served_lists_key])
    notifier.names, notifier.categories = app[names_key], app[categories_key]
    registry.register(EventCollector(book, app[names_key], app[categories_key]))
    app[calendar_key] = load_calendar(config.detection.event_windows)
    app[detection_metrics_key] = DetectionMetrics(registry)
    windows = EventSnapshot()
    app[event_snapshot_key] = windows
    registry.register(DetectionCollector(book, windows))
    outside = _outside(app, registry) if config.outside.enabled else None
    app.cleanup_ctx.append(_geoip_ctx)
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_ingest_workers_ctx)
    app.cleanup_ctx.append(_read_access_ctx)
    app.cleanup_ctx.append(_notifier_ctx)
    app.cleanup_ctx.append(sni_ab_context)
    app.cleanup_ctx.append(pipeline_ctx)
    if outside is not None:
        app.cleanup_ctx.append(outside)
    app.cleanup_ctx.append(list_health_ctx)
    setup_routes(app)
    setup_security_headers(app)
    return app
