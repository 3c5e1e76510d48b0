"""HTTP handlers: parse and validate, call the domain, respond. Kept thin on purpose."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from collector import control, statuspage
from collector.keys import (
    config_key,
    eventbook_key,
    fleet_key,
    metrics_key,
    ratelimit_key,
    registry_key,
    store_key,
)
from collector.metrics import StoreSnapshot, refresh
from collector.tokens import token_hash
from collector.validate import Invalid, validate

snapshot_key = web.AppKey("snapshot", StoreSnapshot)


def _error(status: type[web.HTTPException], reason: str) -> web.HTTPException:
    return status(text=json.dumps({"error": reason}), content_type="application/json")


async def authenticate(request: web.Request) -> str:
    """The probe id behind the bearer token; 401 without a token, 403 for a bad one."""
    config = request.app[config_key]
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        if not config.auth.require_token:
            return "anonymous"
        raise _error(web.HTTPUnauthorized, "missing bearer token")
    found = await request.app[store_key].probe_for_token(token_hash(header[7:].strip()))
    if found is None:
        raise _error(web.HTTPForbidden, "unknown token")
    probe_id, revoked = found
    if revoked:
        raise _error(web.HTTPForbidden, "revoked token")
    return probe_id


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json(loads=json.loads)
    except web.HTTPRequestEntityTooLarge:
        raise
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _error(web.HTTPBadRequest, f"body is not valid JSON: {exc}") from exc


async def ingest(request: web.Request) -> web.Response:
    """POST /api/v1/measurements: one measurement or {"measurements": [...]}; idempotent."""
    metrics = request.app[metrics_key]
    config = request.app[config_key]
    probe_id = await authenticate(request)
    body = await _json_body(request)
    batch = body["measurements"] if isinstance(body, dict) and "measurements" in body else [body]
    if not isinstance(batch, list) or not batch:
        metrics.requests.labels("invalid").inc()
        raise _error(web.HTTPBadRequest, "measurements: non-empty list required")
    if len(batch) > config.limits.max_batch:
        metrics.requests.labels("invalid").inc()
        raise _error(web.HTTPBadRequest, f"batch larger than {config.limits.max_batch}")
    if not request.app[ratelimit_key].allow(probe_id, cost=len(batch)):
        metrics.requests.labels("rate_limited").inc()
        raise _error(web.HTTPTooManyRequests, "rate limit exceeded for this probe")
    now = datetime.now(UTC)
    rows = []
    for index, item in enumerate(batch):
        try:
            rows.append(validate(item, config.limits, now, probe_id, request.remote))
        except Invalid as exc:
            metrics.requests.labels("invalid").inc()
            metrics.rejected.labels(str(exc).split(":", 1)[0][:40]).inc()
            prefix = f"measurements[{index}]: " if len(batch) > 1 else ""
            raise _error(web.HTTPBadRequest, prefix + str(exc)) from exc
    with metrics.store_seconds.time():
        inserted = set(await request.app[store_key].add_measurements(rows))
    fleet = request.app[fleet_key]
    for row, item in zip(rows, batch, strict=True):
        if row.uid in inserted:
            metrics.measurements.labels(row.test_name, row.probe_cc, row.probe_asn,
                                        row.verdict or "none").inc()
            fleet.observe(item, probe_id, _start_time(row.start_time), now)
        else:
            metrics.duplicates.inc()
    metrics.requests.labels("ok").inc()
    return web.json_response({"stored": [r.uid for r in rows],
                              "duplicates": [r.uid for r in rows if r.uid not in inserted]})


async def heartbeat(request: web.Request) -> web.Response:
    probe_id = await authenticate(request)
    body = await _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("sent_at"), str):
        raise _error(web.HTTPBadRequest, "sent_at: required string")
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
    await request.app[store_key].add_heartbeat(probe_id, body["sent_at"][:32], now,
                                               json.dumps(body)[:4096])
    request.app[metrics_key].heartbeats.inc()
    request.app[fleet_key].heartbeat(probe_id, body, datetime.now(UTC))
    return web.json_response({"ok": True, "event_windows": []})


async def control_view(request: web.Request) -> web.Response:
    """POST /api/v1/control: measure a URL from here (the control vantage)."""
    config = request.app[config_key]
    metrics = request.app[metrics_key]
    try:
        url, endpoints = control.parse_request(await _json_body(request))
    except control.BadControlRequest as exc:
        metrics.control_requests.labels("invalid").inc()
        raise _error(web.HTTPBadRequest, str(exc)) from exc
    view = await control.measure(url, endpoints, config.control.timeout,
                                 config.control.allow_private_addresses, config.control.ca_file,
                                 config.control.resolver)
    metrics.control_requests.labels("ok").inc()
    return web.json_response(view)


async def list_measurements(request: web.Request) -> web.Response:
    query = request.query
    try:
        limit = min(int(query.get("limit", "100")), 1000)
    except ValueError as exc:
        raise _error(web.HTTPBadRequest, "limit: integer") from exc
    rows = await request.app[store_key].measurements(
        since=query.get("since"), until=query.get("until"), cc=query.get("cc"),
        asn=query.get("asn"), test_name=query.get("test_name"), input=query.get("input"),
        limit=limit)
    full = query.get("full") == "true"
    out = []
    for row in rows:
        body = row.pop("body")
        if full:
            row["measurement"] = json.loads(body)
        out.append(row)
    return web.json_response({"measurements": out})


async def list_events(request: web.Request) -> web.Response:
    return web.json_response({"events": []})


async def aggregation(request: web.Request) -> web.Response:
    counts = await request.app[store_key].verdict_counts()
    return web.json_response({"result": [
        {"test_name": t, "probe_cc": cc, "probe_asn": asn, "verdict": v, "count": n}
        for t, cc, asn, v, n in counts]})


async def metrics_page(request: web.Request) -> web.Response:
    await refresh(request.app[snapshot_key], request.app[store_key])
    body = generate_latest(request.app[registry_key])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    await request.app[store_key].count_measurements()
    return web.json_response({"ok": True})


def _start_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


async def status_page(request: web.Request) -> web.Response:
    """GET /: a plain page media partners can link to; no scripts, readable on a phone."""
    now = datetime.now(UTC)
    latest = await request.app[store_key].latest_by_target()
    events = request.app[eventbook_key].events(since=now - timedelta(days=7))
    return web.Response(text=statuspage.status_page(events, latest, now),
                        content_type="text/html")


async def event_page(request: web.Request) -> web.Response:
    """GET /events/{event_id}: one event with its full evidence (the link in alerts)."""
    event = request.app[eventbook_key].get(request.match_info["event_id"])
    if event is None:
        raise web.HTTPNotFound(text="No such event (it may have ended more than a week ago).")
    return web.Response(text=statuspage.event_page(event, datetime.now(UTC)),
                        content_type="text/html")

