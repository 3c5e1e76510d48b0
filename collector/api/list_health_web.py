"""List health in the collector: recorded from control fetches, kept in the store, shown to
operators by ``GET /api/v1/targets/health`` and the page ``/targets/health``.

Only URLs of the served lists are recorded (anyone with a token can make the control fetch any
URL, and those must not grow the document). The health lives in memory and is saved as the
store's named state ``list_health.STATE_NAME`` every ``target_lists.health_save_interval``
when it changed, and when the collector stops; saving folds in what another collector on the
same database saved since, so their views add up. Both the API and the page take a probe
token, like the lists themselves: which canaries and baselines a list holds is not for
everyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from collector.api.auth import authenticate
from collector.api.list_health import STATE_NAME, ListHealth, fetch_failure
from collector.keys import config_key, list_health_key, served_lists_key, store_key
from collector.store import TIME_FORMAT, StoreUnavailable
from probe.core.typed_config import ConfigError

log = logging.getLogger(__name__)
STATUSES = ("flagged", "failing", "unchecked", "ok")


def note_control(app: web.Application, url: str, view: Mapping[str, Any],
                 at: datetime | None = None) -> None:
    """Record a control fetch of ``url`` when ``url`` is on a served list."""
    health = app.get(list_health_key)
    lists = app[served_lists_key]
    if health is None or lists is None:
        return
    try:
        listed = url in lists.listed()
    except ConfigError:  # a list that never loaded: the target API reports it
        return
    if listed:
        health.record(url, at or datetime.now(UTC), fetch_failure(view))


async def save(app: web.Application) -> None:
    """Merge the stored health into ours and store the result (when ours changed)."""
    health = app.get(list_health_key)
    if health is None or not health.dirty:
        return
    store = app[store_key]
    saved = await store.load_state(STATE_NAME)
    if saved is not None:
        health.merge(ListHealth.from_document(_json(saved)))
    health.dirty = False
    try:
        await store.save_state(STATE_NAME, json.dumps(health.to_document()),
                               datetime.now(UTC).strftime(TIME_FORMAT))
    except BaseException:
        health.dirty = True
        raise


def _json(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return None


async def list_health_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load the saved health at start, save it periodically and at the end."""
    if app[served_lists_key] is None:
        app[list_health_key] = None
        yield
        return
    saved = await app[store_key].load_state(STATE_NAME)
    app[list_health_key] = ListHealth.from_document(_json(saved) if saved else None)
    interval = app[config_key].target_lists.health_save_interval

    async def saver() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await save(app)
            except StoreUnavailable as exc:
                log.warning("list health not saved, retrying later: %s", exc)

    task = asyncio.create_task(saver())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    try:
        await save(app)
    except StoreUnavailable as exc:
        log.warning("list health not saved at shutdown: %s", exc)


def _bad(reason: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": reason}), content_type="application/json")


def health_report(app: web.Application, query: Mapping[str, str]) -> dict[str, Any]:
    """The report of ``GET /api/v1/targets/health`` for the query's ``probe_cc``, ``days``
    and ``status``; HTTPBadRequest naming the parameter otherwise."""
    lists, health = app[served_lists_key], app.get(list_health_key)
    if lists is None or health is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "this collector serves no target "
                                                "lists (target_lists.directory)"}),
                               content_type="application/json")
    days = app[config_key].target_lists.health_days
    if "days" in query:
        try:
            days = float(query["days"])
        except ValueError:
            days = -1.0
        if not 0 < days <= 3650:
            raise _bad("days: a number of days, more than 0 and at most 3650")
    cc = query.get("probe_cc")
    if cc is not None and not (len(cc) == 2 and cc.isascii() and cc.isalpha() and cc.isupper()):
        raise _bad("probe_cc: not a two-letter upper-case country code")
    status = query.get("status")
    if status is not None and status not in STATUSES:
        raise _bad(f"status: one of {', '.join(STATUSES)}")
    listed = [(url, t.cc, t.category) for url, t in lists.listed().items()
              if cc is None or t.cc in (cc, "*")]
    rows = health.report(listed, days)
    counts = {name: sum(1 for r in rows if r["status"] == name) for name in STATUSES}
    if status is not None:
        rows = [r for r in rows if r["status"] == status]
    return {"days": days, "probe_cc": cc, "counts": counts, "entries": rows}


async def get_health(request: web.Request) -> web.Response:
    """GET /api/v1/targets/health[?probe_cc=CC&days=N&status=flagged] (bearer token)."""
    await authenticate(request)
    return web.json_response(health_report(request.app, request.query))


async def health_page(request: web.Request) -> web.Response:
    """GET /targets/health: the same report as a plain page (bearer token)."""
    await authenticate(request)
    report = health_report(request.app, request.query)
    return web.Response(text=render(report), content_type="text/html")


def render(report: Mapping[str, Any]) -> str:
    """A plain HTML table of a health report, every value escaped."""
    esc = html.escape
    counts = ", ".join(f"{n} {name}" for name, n in report["counts"].items())
    rows = []
    for row in report["entries"]:
        rows.append(
            "<tr>" + "".join(f"<td>{esc(str(v if v is not None else ''))}</td>" for v in (
                row["status"], row["url"], row["cc"], row["category"], row["failing_days"],
                row["last_failure"], row["last_ok"], row["failing_since"])) + "</tr>")
    scope = f" for {esc(report['probe_cc'])}" if report["probe_cc"] else ""
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Target list health"
        "</title></head><body>"
        f"<h1>Target list health{scope}</h1>"
        f"<p>Flagged: every control fetch failed over at least {report['days']:g} days "
        f"(site gone, moved or parked, or refusing the control). {esc(counts)}.</p>"
        "<table><tr><th>status</th><th>url</th><th>cc</th><th>category</th>"
        "<th>failing days</th><th>last failure</th><th>last ok</th><th>failing since</th>"
        "</tr>" + "".join(rows) + "</table></body></html>")
