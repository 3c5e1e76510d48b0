"""The single route table of the collector."""

from __future__ import annotations

from aiohttp import web

from collector.api import handlers, list_health_web, target_lists
from collector.vantage import sni_ab


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/measurements", handlers.ingest)
    app.router.add_get("/api/v1/measurements", handlers.list_measurements)
    app.router.add_get("/api/v1/measurement/{uid}", handlers.measurement)
    app.router.add_post("/api/v1/heartbeat", handlers.heartbeat)
    app.router.add_post("/api/v1/control", handlers.control_view)
    app.router.add_get("/api/v1/sni-ab", sni_ab.describe)
    app.router.add_get("/api/v1/targets", target_lists.get_targets)
    app.router.add_get("/api/v1/targets/health", list_health_web.get_health)
    app.router.add_get("/api/v1/events", handlers.list_events)
    app.router.add_get("/api/v1/aggregation", handlers.aggregation)
    app.router.add_get("/api/v1/openapi.json", handlers.openapi)
    app.router.add_get("/metrics", handlers.metrics_page)
    app.router.add_get("/healthz", handlers.healthz)
    app.router.add_get("/", handlers.status_page)
    app.router.add_get("/events/{event_id}", handlers.event_page)
    app.router.add_get("/events.atom", handlers.atom_feed)
    app.router.add_get("/targets/health", list_health_web.health_page)
