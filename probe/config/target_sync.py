"""Target lists from the collector, so a list changes once at the collector and not on every
volunteer's machine.

When ``probe run`` starts it asks ``GET /api/v1/targets?probe_cc=CC`` (with its token, and the
version it has in ``If-None-Match``). A good answer is checked entry by entry and written,
atomically, to the cache file; ``probe.config.probe_config.load`` then measures the cached lists
instead of the config's ``target_files``. Nothing the collector says or fails to say removes the
last good copy: a probe started during a shutdown keeps measuring the lists it had, and one that
never reached its collector measures its shipped files.
"""

from __future__ import annotations

import json
import os
import sqlite3
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from probe.core.targets import Target
from probe.core.typed_config import ConfigError, build
from probe.daemon.endpoints import Endpoint, EndpointList, configured, route
from probe.daemon.uploader import UploadError
from probe.netx import proxy

if TYPE_CHECKING:
    from probe.config.probe_config import ProbeConfig

CACHE_NAME = "targets-cache.json"
FIELDS = ("url", "category", "cc", "role", "baseline", "date_added", "source", "notes")
"""Target fields taken from each served entry (``interval_s`` becomes ``interval``; a
``priority`` of ``high`` or ``low`` is kept, ``normal`` leaves the pacing to the category)."""


class BadDocument(ValueError):
    """The collector's answer is not a target list for this probe."""


def cache_path(config: ProbeConfig) -> Path:
    if config.target_sync.cache_file:
        return Path(config.target_sync.cache_file)
    return Path(config.spool_path).parent / CACHE_NAME


def parse(document: object, cc: str) -> tuple[str, tuple[Target, ...]]:
    """The version and targets of a served document for country ``cc``; BadDocument with the
    reason otherwise (an entry's error names it: ``targets[3].url: not an http(s) URL``)."""
    if not isinstance(document, dict):
        raise BadDocument("not a JSON object")
    if document.get("probe_cc") != cc:
        raise BadDocument(f"a list for {document.get('probe_cc')!r}, not {cc}")
    version, entries = document.get("version"), document.get("targets")
    if not isinstance(version, str) or not version or not isinstance(entries, list):
        raise BadDocument("no version or no targets")
    targets = []
    for index, item in enumerate(entries):
        if not isinstance(item, dict):
            raise BadDocument(f"targets[{index}]: not an object")
        data: dict[str, Any] = {k: item[k] for k in FIELDS if item.get(k) is not None}
        if item.get("interval_s") is not None:
            data["interval"] = item["interval_s"]
        if item.get("priority") in ("high", "low"):
            data["priority"] = item["priority"]
        try:
            targets.append(build(Target, data, f"targets[{index}]"))
        except ConfigError as exc:
            raise BadDocument(str(exc)) from exc
    return version, tuple(targets)


def _read_cache(config: ProbeConfig) -> dict[str, Any] | None:
    try:
        data = json.loads(cache_path(config).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def cached_targets(config: ProbeConfig) -> tuple[Target, ...] | None:
    """The last good lists for this probe's country, or None (no copy, another country's,
    or a damaged file: the config's own lists apply)."""
    data = _read_cache(config)
    if data is None:
        return None
    try:
        return parse(data, config.identity.country)[1]
    except BadDocument:
        return None


def cached_version(config: ProbeConfig) -> str | None:
    """The version of the good copy kept for this probe's country, or None."""
    data = _read_cache(config)
    if data is None or cached_targets(config) is None:
        return None
    return str(data["version"])


def describe(config: ProbeConfig) -> dict[str, Any]:
    """Which lists the probe measures, for ``probe status``: the collector's kept copy (its
    version and when it was fetched) or the config's own files."""
    data = _read_cache(config)
    if config.target_sync.enabled and data is not None and cached_targets(config) is not None:
        return {"source": "collector", "version": str(data["version"]),
                "fetched_at": data.get("fetched_at")}
    return {"source": "files", "version": None, "fetched_at": None}


def _write_cache(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".new")
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)


def _fallback(config: ProbeConfig) -> str:
    data = _read_cache(config)
    if data is not None and cached_targets(config) is not None:
        return f"measuring the copy of version {data['version']} from {data.get('fetched_at')}"
    return "measuring the lists of target_files"


# Request line, headers and the answer's headers, roughly: what a fetch costs besides its body.
EXCHANGE_OVERHEAD = 600


def known_endpoints(config: ProbeConfig, now: datetime | None = None) -> EndpointList:
    """The collector's endpoints as the daemon knows them: the configured ones, then those of
    the last signed announcement kept in the spool file, starting from the one that worked
    last (``probe.daemon.endpoints``). ``probe run`` fetches its lists with these before the
    daemon starts, so a collector that moved, or whose first endpoint is blocked, still
    serves the lists. Without a spool file (a first start), the configured ones."""
    from probe.daemon import announce
    from probe.local import journal
    from probe.local.localdb import open_readonly

    link = config.collector
    endpoints = EndpointList(configured(link.url, link.endpoints), link.retry_first_after)
    if not Path(config.spool_path).exists():
        return endpoints
    try:
        db = open_readonly(config.spool_path)
        try:
            state = journal.read_state(db)
        finally:
            db.close()
    except sqlite3.Error:
        return endpoints  # a spool another version wrote, or damaged: the daemon says so
    try:
        endpoints.announce(announce.kept(state[journal.ANNOUNCED]).endpoints)
    except (KeyError, announce.AnnouncementError):
        pass
    last = _last_endpoint(state.get(journal.COLLECTOR_PATH), now or datetime.now(UTC),
                          link.retry_first_after)
    if last is not None:
        endpoints.remember(last)
    return endpoints


def _last_endpoint(saved: str | None, now: datetime, within: float) -> str | None:
    try:
        found = json.loads(saved or "null")
        at = datetime.strptime(found["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (ValueError, TypeError, KeyError):
        return None
    name = found.get("endpoint")
    return name if isinstance(name, str) and 0 <= (now - at).total_seconds() < within else None


async def refresh(config: ProbeConfig, token: str | None,
                  now: datetime | None = None,
                  traffic: Callable[[int], None] | None = None,
                  endpoints: EndpointList | None = None) -> str:
    """Ask the collector for this probe's lists and keep a good answer; returns one line
    saying what happened and which lists the probe will measure. ``traffic`` is told the
    bytes the exchange cost (the daemon counts them against the data budget). ``endpoints``:
    the daemon's own list (configured, then announced), whose failover memory the fetch
    shares with uploads and heartbeats; default ``known_endpoints``."""
    settings = config.target_sync
    cc = config.identity.country
    if not settings.enabled or cc == "ZZ":
        return "target lists: not fetched (target_sync off or no identity.country)"
    previous = _read_cache(config) if cached_targets(config) is not None else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if previous is not None:
        headers["If-None-Match"] = f'"{previous["version"]}"'
    context = ssl.create_default_context()
    if config.collector.ca_file:
        context.load_verify_locations(cafile=config.collector.ca_file)
    link = config.collector
    missed: list[str] = []
    answer: tuple[int, bytes] | None = None
    used: Endpoint | None = None
    endpoints = endpoints if endpoints is not None else known_endpoints(config, now)
    async with aiohttp.ClientSession(connector=proxy.connector(link.proxy, context)) as session:

        async def attempt(endpoint: Endpoint) -> tuple[int, bytes]:
            base, options, _path = route(endpoint, link.proxy)
            request_headers = {**headers, **options.pop("headers", {})}
            try:
                async with session.get(
                        base + "/api/v1/targets", params={"probe_cc": cc},
                        headers=request_headers,
                        timeout=aiohttp.ClientTimeout(total=settings.timeout),
                        **options) as response:
                    if traffic is not None:
                        traffic(EXCHANGE_OVERHEAD)
                    body = b""
                    if response.status == 200:
                        body = await response.content.read(settings.max_bytes + 1)
                        if traffic is not None:
                            traffic(len(body))
                    return response.status, body
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                missed.append(f"{endpoint.name}: {type(exc).__name__}")
                raise UploadError(missed[-1]) from exc  # a network failure: the next one

        # The collector's endpoints in order, the one that worked last first: a censor that
        # blocks the first must not cut the probe off its lists.
        try:
            answer, used = await endpoints.call(attempt)
        except UploadError:
            answer = None
    if answer is None:
        return (f"target lists: the collector did not answer ({'; '.join(missed)}); "
                f"{_fallback(config)}")
    status, body = answer
    if status == 304 and previous is not None:
        return f"target lists: version {previous['version']} is current"
    if status != 200:
        return f"target lists: the collector answered {status}; {_fallback(config)}"
    if len(body) > settings.max_bytes:
        return (f"target lists: the answer is larger than target_sync.max_bytes; "
                f"{_fallback(config)}")
    try:
        document = json.loads(body)
        version, targets = parse(document, cc)
    except (ValueError, BadDocument) as exc:
        return f"target lists: bad answer ({exc}); {_fallback(config)}"
    fetched_at = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    _write_cache(cache_path(config), {"probe_cc": cc, "version": version,
                                      "fetched_at": fetched_at,
                                      "targets": document["targets"]})
    via = f" from {used.name}" if used is not None else ""
    return f"target lists: fetched version {version}, {len(targets)} targets{via}"
