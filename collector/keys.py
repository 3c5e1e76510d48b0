"""Typed application keys, in one place."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from aiohttp import web

from collector.metrics.exposition import ExpositionRegistry

if TYPE_CHECKING:
    from collector.announce import Announcer
    from collector.api.geoip import GeoIP
    from collector.api.ingest_workers import IngestWorkers
    from collector.api.list_health import ListHealth
    from collector.api.pseudonyms import ReadAccess
    from collector.api.ratelimit import RateLimiter
    from collector.api.served_lists import ServedLists
    from collector.config import CollectorConfig
    from collector.detect.windows import Calendar
    from collector.events.book import EventBook
    from collector.events.names import NetworkNames
    from collector.metrics.detection import DetectionMetrics, EventSnapshot
    from collector.metrics.fleet import FleetMetrics
    from collector.metrics.ingest import IngestMetrics, StoreSnapshot
    from collector.notify.dispatch import Notifier
    from collector.outside.service import OutsideService
    from collector.pipeline import Pipeline
    from collector.store import Store
    from collector.vantage.control import ControlGate

config_key: web.AppKey[CollectorConfig] = web.AppKey("config")
store_key: web.AppKey[Store] = web.AppKey("store")
registry_key = web.AppKey("registry", ExpositionRegistry)
metrics_key: web.AppKey[IngestMetrics] = web.AppKey("metrics")
ratelimit_key: web.AppKey[RateLimiter] = web.AppKey("ratelimit")
snapshot_key: web.AppKey[StoreSnapshot] = web.AppKey("snapshot")
geoip_key: web.AppKey[GeoIP | None] = web.AppKey("geoip")
eventbook_key: web.AppKey[EventBook] = web.AppKey("eventbook")
fleet_key: web.AppKey[FleetMetrics] = web.AppKey("fleet")
ingest_workers_key: web.AppKey[IngestWorkers] = web.AppKey("ingest_workers")
notifier_key: web.AppKey[Notifier] = web.AppKey("notifier")
calendar_key: web.AppKey[Calendar] = web.AppKey("calendar")
detection_metrics_key: web.AppKey[DetectionMetrics] = web.AppKey("detection_metrics")
event_snapshot_key: web.AppKey[EventSnapshot] = web.AppKey("event_snapshot")
pipeline_key: web.AppKey[Pipeline] = web.AppKey("pipeline")
control_gate_key: web.AppKey[ControlGate] = web.AppKey("control_gate")
served_lists_key: web.AppKey[ServedLists | None] = web.AppKey("served_lists")
names_key: web.AppKey[NetworkNames] = web.AppKey("names")
categories_key: web.AppKey[Mapping[str, str]] = web.AppKey("categories")
read_access_key: web.AppKey[ReadAccess] = web.AppKey("read_access")
outside_key: web.AppKey[OutsideService] = web.AppKey("outside")
list_health_key: web.AppKey[ListHealth | None] = web.AppKey("list_health")
announcer_key: web.AppKey[Announcer | None] = web.AppKey("announcer")
