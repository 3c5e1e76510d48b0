"""HTTP handlers: parse and validate, call the domain, respond. Kept thin on purpose.

Every error is JSON ``{"error": reason}``. Domain exceptions map to status codes here:
``Invalid``/``BatchInvalid``/``BadQuery`` -> 400, ``StoreUnavailable`` -> 503 (through
``error_middleware``, so a probe retries later instead of dropping data).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from collector.api import openapi as openapi_document
from collector.api.auth import authenticate
from collector.api.auth import json_error as _error
from collector.api.geoip import GeoIP
from collector.api.list_health_web import note_control
from collector.api.query import (
    FEED_PARAMS,
    PAGE_PARAMS,
    BadQuery,
    encode_cursor,
    fold_categories,
    parse_aggregation,
    parse_events,
    parse_list,
)
from collector.api.validate import (
    Invalid,
    parse_json,
    validate_heartbeat,
)
from collector.events import feed, statuspage
from collector.events.i18n import Language, negotiate, parse_language, text
from collector.events.sentences import site
from collector.events.windows_api import event_windows
from collector.keys import (
    announcer_key,
    calendar_key,
    categories_key,
    config_key,
    control_gate_key,
    eventbook_key,
    fleet_key,
    geoip_key,
    ingest_workers_key,
    metrics_key,
    names_key,
    ratelimit_key,
    read_access_key,
    registry_key,
    served_lists_key,
    snapshot_key,
    store_key,
)
from collector.metrics.ingest import IngestMetrics, refresh
from collector.notify.event import EventView
from collector.store import (
    COUNT_COLUMNS,
    MEASUREMENT_COLUMNS,
    TIME_FORMAT,
    Filters,
    StoreUnavailable,
)
from collector.vantage import control
from probe.core.typed_config import ConfigError

if TYPE_CHECKING:
    from collector.api.served_lists import ServedLists

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RETRY_AFTER_UNAVAILABLE = 30
CONTROL_BODY_LIMIT = 64 * 1024
CONTROL_RETRY_AFTER = 5


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The store being unreachable is a 503 with Retry-After on every route."""
    try:
        return await handler(request)
    except StoreUnavailable as exc:
        raise _error(web.HTTPServiceUnavailable, "storage unavailable, retry later",
                     {"Retry-After": str(RETRY_AFTER_UNAVAILABLE)}) from exc


@contextmanager
def _timed(metrics: IngestMetrics, operation: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        metrics.store_time(operation, time.perf_counter() - started)


def client_address(request: web.Request) -> str | None:
    """The submitter's address: the configured proxy header's last entry, else the peer."""
    header = request.app[config_key].client_address_header
    if header:
        value = request.headers.get(header, "")
        entries = [e.strip() for e in value.split(",") if e.strip()]
        if entries:
            return entries[-1]
    return request.remote


def _too_large(limit: int, actual: int) -> web.HTTPException:
    return web.HTTPRequestEntityTooLarge(
        max_size=limit, actual_size=actual, content_type="application/json",
        text=json.dumps({"error": f"body larger than {limit} bytes"}))


async def _read_body(request: web.Request, limit: int) -> bytes:
    """The body's bytes; 413 past ``limit`` bytes (checked before reading when the length is
    declared)."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit, request.content_length)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise _too_large(limit, limit + 1) from exc
    if len(raw) > limit:
        raise _too_large(limit, len(raw))
    return raw


async def _read_json(request: web.Request, limit: int) -> Any:
    """The body as strict JSON; 413 past ``limit`` bytes, 400 when it is not JSON."""
    raw = await _read_body(request, limit)
    try:
        return parse_json(raw)
    except Invalid as exc:
        raise _error(web.HTTPBadRequest, str(exc)) from exc


_OUTCOMES = {web.HTTPUnauthorized: "unauthorized", web.HTTPForbidden: "forbidden",
             web.HTTPRequestEntityTooLarge: "too_large", web.HTTPTooManyRequests: "rate_limited",
             web.HTTPBadRequest: "invalid", web.HTTPServiceUnavailable: "unavailable"}


async def ingest(request: web.Request) -> web.Response:
    """POST /api/v1/measurements: one measurement or {"measurements": [...]}; idempotent."""
    metrics = request.app[metrics_key]
    try:
        response = await _ingest(request, metrics)
    except web.HTTPException as exc:
        metrics.requests.labels(_OUTCOMES.get(type(exc), "invalid")).inc()
        raise
    except StoreUnavailable:
        metrics.requests.labels("unavailable").inc()
        raise
    metrics.requests.labels("ok").inc()
    return response


async def _ingest(request: web.Request, metrics: IngestMetrics) -> web.Response:
    config = request.app[config_key]
    probe_id = await authenticate(request) or "anonymous"
    raw = await _read_body(request, config.limits.max_body_bytes)
    address = client_address(request)
    geoip = request.app[geoip_key]
    located = geoip.lookup(address) if geoip is not None else None
    # Off the event loop (a worker process for a large body, else a thread): parsing,
    # scrubbing every string and compressing a large batch take CPU time (about a second for
    # 2 MB made of nothing but address-like text), which must not stall every other client.
    prepared = await request.app[ingest_workers_key].prepare(
        raw, config.limits, datetime.now(UTC), probe_id, address, located)
    if prepared.refusal is not None:
        if prepared.refusal.counted:
            metrics.rejected.labels(prepared.refusal.reason).inc()
        raise _error(web.HTTPBadRequest, prepared.refusal.message)
    # The limit counts measurements, so it applies once the body is read as a batch (as it
    # did before the measurements were checked one by one).
    wait = request.app[ratelimit_key].take(probe_id, cost=prepared.count)
    if wait > 0:
        raise _error(web.HTTPTooManyRequests, "rate limit exceeded for this probe",
                     {"Retry-After": str(max(1, math.ceil(wait)))})
    if prepared.rejections:
        for rejection in prepared.rejections:
            metrics.rejected.labels(rejection.reason).inc()
        metrics.ingested.labels("rejected").inc(len(prepared.rejections))
        first = prepared.rejections[0]
        rejected = [{"index": r.index, "uid": r.uid, "reason": r.reason, "message": r.message}
                    for r in prepared.rejections]
        raise _error(web.HTTPBadRequest, f"measurements[{first.index}]: {first.message}",
                     rejected=rejected)
    rows = prepared.rows
    with _timed(metrics, "add_measurements"):
        inserted = set(await request.app[store_key].add_measurements(rows))
    now = datetime.now(UTC)
    stored = [(row, outcome) for row, outcome in zip(rows, prepared.outcomes, strict=True)
              if row.uid in inserted]
    metrics.ingested.labels("stored").inc(len(stored))
    metrics.ingested.labels("duplicate").inc(len(rows) - len(stored))
    for (test, cc, asn, verdict), count in Counter(
            (row.test_name, row.probe_cc, row.probe_asn, row.verdict or "none")
            for row, _ in stored).items():
        metrics.measurements.labels(test, cc, asn, verdict).inc(count)
    metrics.location_mismatches.inc(sum(1 for row, _ in stored if row.location_mismatch))
    request.app[fleet_key].record_many([outcome for _, outcome in stored], probe_id, now)
    return web.json_response({"stored": [r.uid for r in rows],
                              "duplicates": [r.uid for r in rows if r.uid not in inserted]})


async def heartbeat(request: web.Request) -> web.Response:
    """POST /api/v1/heartbeat: the probe's liveness, queue depth and version."""
    config = request.app[config_key]
    metrics = request.app[metrics_key]
    probe_id = await authenticate(request)
    body = await _read_json(request, config.limits.max_heartbeat_bytes)
    now = datetime.now(UTC)
    try:
        fields = validate_heartbeat(body, probe_id, client_address(request), now,
                                    config.limits)
    except ValueError as exc:
        raise _error(web.HTTPBadRequest, str(exc)) from exc
    with _timed(metrics, "add_heartbeat"):
        await request.app[store_key].add_heartbeat(
            fields.probe_id, fields.sent_at, now.strftime(TIME_FORMAT), fields.body,
            queue_depth=fields.queue_depth, software_version=fields.software_version)
    metrics.heartbeats.inc()
    request.app[fleet_key].heartbeat(fields.probe_id, body, now)
    # Inside an event window the probe is told to raise its cadence (its country's windows,
    # or every country's when it does not say where it is: it filters them itself).
    # observed_address: the address this heartbeat came from, returned so the probe can
    # scrub it (its public address behind NAT) from its measurements; never stored here.
    cc = body.get("probe_cc") if isinstance(body, dict) else None
    windows = event_windows(request.app[calendar_key], cc if isinstance(cc, str) else None,
                            now.timestamp())
    answer: dict[str, Any] = {"ok": True, "event_windows": windows,
                              "observed_address": client_address(request)}
    if probe_id is not None:
        # The name this collector knows the token by: init writes it into the probe's config,
        # so the probe has one name everywhere.
        answer["probe_id"] = probe_id
    # targets_version: the version of the lists GET /api/v1/targets serves this probe's
    # country, so a probe fetches a changed list at its next heartbeat, not its next start.
    version = _targets_version(request.app[served_lists_key], cc)
    if version is not None:
        answer["targets_version"] = version
    # endpoints_announcement: where the collector can also be reached, signed with the
    # operator's key (collector.announce), so probes follow a move without a config edit.
    announcer = request.app[announcer_key]
    if announcer is not None:
        answer["endpoints_announcement"] = announcer.current(now)
    return web.json_response(answer)


def _targets_version(lists: ServedLists | None, cc: object) -> str | None:
    if lists is None or not (isinstance(cc, str) and len(cc) == 2 and cc.isascii()
                             and cc.isalpha() and cc.isupper()):
        return None
    try:
        return str(lists.document(cc)["version"])
    except ConfigError:
        return None


def _asn_lookup(geoip: GeoIP | None) -> Callable[[str], int | None] | None:
    """The control's ASN of an address, from the GeoIP ASN database when one is configured."""
    if geoip is None:
        return None

    def asn_of(address: str) -> int | None:
        found = geoip.lookup(address)
        if found is None or found.asn is None:
            return None
        return int(found.asn.removeprefix("AS"))

    return asn_of


async def control_view(request: web.Request) -> web.Response:
    """POST /api/v1/control: measure a URL from here (the control vantage)."""
    config = request.app[config_key]
    metrics = request.app[metrics_key]
    try:
        url, endpoints = control.parse_request(
            await _read_json(request, CONTROL_BODY_LIMIT))
    except control.BadControlRequest as exc:
        metrics.control_requests.labels("invalid").inc()
        raise _error(web.HTTPBadRequest, str(exc)) from exc
    gate = request.app[control_gate_key]
    if not gate.try_enter():
        metrics.control_requests.labels("busy").inc()
        raise _error(web.HTTPServiceUnavailable, "control vantage busy, retry later",
                     headers={"Retry-After": str(CONTROL_RETRY_AFTER)})
    try:
        view = await control.measure(url, endpoints, config.control.timeout,
                                     config.control.allow_private_addresses,
                                     config.control.ca_file, config.control.resolver,
                                     _asn_lookup(request.app[geoip_key]))
    finally:
        gate.leave()
    metrics.control_requests.labels("ok").inc()
    note_control(request.app, url, view)
    return web.json_response(view)


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """One cell: empty for null; a text that a spreadsheet would run as a formula (it starts
    with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return: OWASP's list) gets a leading
    ``'`` so it is shown, not evaluated. Numbers are left alone (``-1`` stays a number)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def _csv(columns: list[str], rows: list[dict[str, Any]], name: str) -> web.Response:
    """Rows as CSV (RFC 4180, header line first, empty cell for null, formulas defused)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: csv_cell(row.get(k)) for k in columns})
    return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'inline; filename="{name}.csv"'})


def _operator(request: web.Request) -> bool:
    return request.app[read_access_key].is_operator(request.headers.get("Authorization"))


LIST_COLUMNS = [c for c in MEASUREMENT_COLUMNS if c != "body"]


async def list_measurements(request: web.Request) -> web.Response:
    """GET /api/v1/measurements: filters, newest first, keyset pagination; JSON or CSV."""
    config = request.app[config_key]
    try:
        query = parse_list(request.query, config.query.max_page_size,
                           request.app[categories_key])
    except BadQuery as exc:
        raise _error(web.HTTPBadRequest, str(exc)) from exc
    store = request.app[store_key]
    with _timed(request.app[metrics_key], "measurements"):
        rows = await store.measurements(query.filters, after=query.after, limit=query.limit + 1)
        page = rows[:query.limit]
        bodies = await store.measurement_bodies([r["uid"] for r in page]) \
            if query.full and query.format == "JSON" else {}
    access, operator = request.app[read_access_key], _operator(request)
    for row in page:
        if row["uid"] in bodies:
            row["measurement"] = access.document(json.loads(bodies[row["uid"]]), operator)
        access.row(row, operator)
    more = len(rows) > query.limit
    cursor = encode_cursor(page[-1]["start_time"], page[-1]["uid"]) if more else None
    if query.format == "CSV":
        response = _csv(LIST_COLUMNS, page, "measurements")
        if cursor is not None:
            response.headers["X-Next-Cursor"] = cursor
        return response
    return web.json_response({"measurements": page, "next_cursor": cursor})


_UID = re.compile(r"[A-Za-z0-9._-]{8,128}")


async def measurement(request: web.Request) -> web.Response:
    """GET /api/v1/measurement/{uid}: one measurement document, as stored (probe id
    pseudonymous unless the operator's token is sent)."""
    uid = request.match_info["uid"]
    if not _UID.fullmatch(uid):
        raise _error(web.HTTPBadRequest, "uid: 8-128 characters of [A-Za-z0-9._-]")
    with _timed(request.app[metrics_key], "measurements"):
        bodies = await request.app[store_key].measurement_bodies([uid])
    if uid not in bodies:
        raise _error(web.HTTPNotFound, "no measurement with this uid")
    document = request.app[read_access_key].document(json.loads(bodies[uid]),
                                                      _operator(request))
    return web.json_response(document)


async def aggregation(request: web.Request) -> web.Response:
    """GET /api/v1/aggregation: counts by verdict per group of up to two axes; JSON or CSV."""
    config = request.app[config_key]
    categories = request.app[categories_key]
    try:
        query = parse_aggregation(request.query, categories)
    except BadQuery as exc:
        raise _error(web.HTTPBadRequest, str(exc)) from exc
    limit = config.query.max_groups
    with _timed(request.app[metrics_key], "aggregate"):
        rows = await request.app[store_key].aggregate(query.filters, query.axes, limit)
    if len(rows) > limit:
        raise _error(web.HTTPBadRequest, f"more than {limit} groups: narrow the filters "
                                         f"or use fewer axes")
    result = fold_categories(rows, query, categories)
    if query.format == "CSV":
        return _csv([*query.names, *COUNT_COLUMNS], result, "aggregation")
    return web.json_response({"dimension_count": len(query.axes), "result": result})


async def list_events(request: web.Request) -> web.Response:
    """GET /api/v1/events: detected events, latest start first (design §4)."""
    config = request.app[config_key]
    try:
        query = parse_events(request.query, config.query.max_page_size)
    except BadQuery as exc:
        raise _error(web.HTTPBadRequest, str(exc)) from exc
    with _timed(request.app[metrics_key], "events"):
        events = await request.app[store_key].events(query)
    return web.json_response({"events": events})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document.document())


async def metrics_page(request: web.Request) -> web.Response:
    await refresh(request.app[snapshot_key], request.app[store_key], request.app[metrics_key])
    body = request.app[registry_key].render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def healthz(request: web.Request) -> web.Response:
    await request.app[store_key].count_measurements()
    return web.json_response({"ok": True})


def _start_time(text: str) -> datetime:
    return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)


_FEED_CC = re.compile(r"[A-Z]{2}")


def _page_query(request: web.Request, allowed: tuple[str, ...]) -> tuple[Language, bool]:
    """The page's language (``lang`` wins over Accept-Language) and whether it was chosen by
    a link; 400 JSON for unknown, repeated or bad parameters."""
    for key in request.query:
        if key not in allowed:
            raise _error(web.HTTPBadRequest,
                         f"{key}: unknown parameter (allowed: {', '.join(allowed)})")
        if len(request.query.getall(key)) > 1:
            raise _error(web.HTTPBadRequest, f"{key}: given more than once")
    if "lang" in request.query:
        try:
            return parse_language(request.query["lang"]), True
        except ValueError as exc:
            raise _error(web.HTTPBadRequest, str(exc)) from exc
    return negotiate(request.headers.get("Accept-Language")), False


def _settings(request: web.Request, language: Language) -> statuspage.PageSettings:
    config = request.app[config_key]
    return statuspage.PageSettings(
        language=language, names=request.app[names_key],
        categories=request.app[categories_key], countries=config.status.countries,
        path=request.path)


def _html(body: str, language: Language, status: int = 200) -> web.Response:
    # Vary: the same URL answers in the reader's language unless ?lang= says otherwise.
    return web.Response(text=body, content_type="text/html", status=status,
                        headers={"Content-Language": language, "Vary": "Accept-Language"})


async def status_page(request: web.Request) -> web.Response:
    """GET /: a plain page media partners can link to; no scripts, readable on a phone."""
    language, _ = _page_query(request, PAGE_PARAMS)
    now = datetime.now(UTC)
    latest = await request.app[store_key].latest_by_target()
    events = request.app[eventbook_key].events(since=now - timedelta(days=7))
    outside = await _outside_hourly(request, now)
    return _html(statuspage.status_page(events, latest, now, _settings(request, language),
                                        outside=outside), language)


async def _outside_hourly(request: web.Request,
                          now: datetime) -> dict[tuple[str, str], list[float | None]]:
    """The outside-in hourly signal saved by the prober (this collector's or another's on
    the same database); an unreadable document shows no chart rather than failing the page."""
    from collector.outside.hourly import STATE_NAME, HourlyShare

    try:
        saved = HourlyShare.from_json(await request.app[store_key].load_state(STATE_NAME))
    except ValueError:
        return {}
    return saved.shares(now.timestamp())


async def _samples(request: web.Request, event: EventView,
                   settings: statuspage.PageSettings) -> list[statuspage.Sample]:
    """Up to five measurements of the event's networks and targets that failed during it,
    with what the control saw."""
    if event.kind not in ("block", "throttling"):
        return []
    end = event.end
    filters = Filters(
        since=event.start.strftime(TIME_FORMAT),
        until=None if end is None else (end + timedelta(seconds=1)).strftime(TIME_FORMAT),
        cc=event.cc, asn=tuple(event.asns) or None,
        input=tuple(event.targets[:100]) or None, verdict=("blocked", "throttled"))
    store = request.app[store_key]
    rows = await store.measurements(filters, limit=5)
    bodies = await store.measurement_bodies([r["uid"] for r in rows])
    unknown_network = text(settings.language, "network.unknown")
    samples = []
    for row in rows:
        control_seen = "none"
        try:
            keys = json.loads(bodies.get(row["uid"], "{}")).get("test_keys") or {}
        except (ValueError, AttributeError):
            keys = {}
        if isinstance(keys, dict):
            if keys.get("control_failure"):
                control_seen = "failed"
            elif keys.get("control"):
                control_seen = "ok"
        samples.append(statuspage.Sample(
            uid=row["uid"], time=row["start_time"],
            network=settings.names.label(str(row.get("probe_asn") or ""), unknown_network),
            site=site(str(row.get("input") or row.get("test_name") or ""), settings.language,
                      settings.categories),
            verdict=str(row.get("verdict") or "inconclusive"), control=control_seen))
    return samples


async def event_page(request: web.Request) -> web.Response:
    """GET /events/{event_id}: one event in sentences with the measurements behind it (the
    link in alerts)."""
    language, _ = _page_query(request, PAGE_PARAMS)
    settings = _settings(request, language)
    now = datetime.now(UTC)
    event = request.app[eventbook_key].get(request.match_info["event_id"])
    if event is None:
        return _html(statuspage.not_found_page(now, settings), language, status=404)
    samples = await _samples(request, event, settings)
    return _html(statuspage.event_page(event, now, settings, samples), language)


async def atom_feed(request: web.Request) -> web.Response:
    """GET /events.atom[?cc=KG]: the events of the last week as an Atom feed."""
    language, _ = _page_query(request, FEED_PARAMS)
    cc = request.query.get("cc")
    if cc is not None and not _FEED_CC.fullmatch(cc):
        raise _error(web.HTTPBadRequest, "cc: two capital letters, such as KG")
    config = request.app[config_key]
    now = datetime.now(UTC)
    events = request.app[eventbook_key].events(since=now - timedelta(days=7))
    base = config.status_url
    self_url = f"{base}/events.atom" + (f"?cc={cc}" if cc else "")
    body = feed.atom(events, now, base=base, self_url=self_url, language=language,
                     names=request.app[names_key], categories=request.app[categories_key],
                     cc=cc)
    return web.Response(text=body, content_type="application/atom+xml", charset="utf-8",
                        headers={"Content-Language": language, "Vary": "Accept-Language"})
