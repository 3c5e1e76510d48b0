"""``GET /api/v1/targets?probe_cc=KG``: the target lists a probe of that country measures.

Changing a list used to mean editing files on every volunteer's machine. The collector serves
them from a directory the operator edits (``target_lists.directory``, e.g. a copy of
``configs/targets``): the country's list (``kg.csv``) plus the global one
(``target_lists.global_list``), in either CSV format the probe reads. The directory is watched
by looking at the two files' size and modification time on each request; a changed file is
read again, and a file that no longer loads leaves the last good version in service (logged),
so a typo never takes the lists away from the probes.

Each answer has a ``version`` (a digest of its entries) sent as a strong ``ETag``: a probe
that sends it back in ``If-None-Match`` gets ``304 Not Modified`` and no body. Every entry
carries its cadence (``interval_s``; null: the probe's ``schedule.interval``) and a
``priority``: ``high`` for entries measured at the probe's cadence (the curated sites,
platforms and canaries), ``normal`` for those with a cadence of their own (Citizen Lab's
entries, once a day).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from collector.api.handlers import authenticate
from collector.config import TargetListsConfig
from collector.keys import served_lists_key
from probe.config.probe_config import Target, load_targets_csv
from probe.core.typed_config import ConfigError

log = logging.getLogger(__name__)

FIELDS = ("url", "category", "cc", "role", "baseline", "date_added", "source", "notes")


def entry(target: Target) -> dict[str, Any]:
    """One served entry: the target's fields, its cadence in seconds and its priority."""
    data: dict[str, Any] = {name: getattr(target, name) for name in FIELDS}
    data["interval_s"] = target.interval
    data["priority"] = "high" if target.interval is None else "normal"
    return data


@dataclass(slots=True)
class _Loaded:
    signature: tuple[int, int] | None
    targets: tuple[Target, ...]


@dataclass(slots=True)
class ServedLists:
    """The lists of one directory, read again when a file changes."""

    directory: Path
    global_list: str
    _cache: dict[str, _Loaded] = field(default_factory=dict)

    def _file(self, name: str) -> tuple[Target, ...]:
        path = self.directory / name
        try:
            stat = path.stat()
            signature: tuple[int, int] | None = (stat.st_mtime_ns, stat.st_size)
        except OSError:
            signature = None
        cached = self._cache.get(name)
        if cached is not None and cached.signature == signature:
            return cached.targets
        if signature is None:
            targets: tuple[Target, ...] = ()
        else:
            try:
                targets = load_targets_csv(path, name)
            except ConfigError as exc:
                if cached is None:
                    raise
                log.error("target list %s no longer loads, still serving its last good "
                          "version: %s", name, exc)
                return cached.targets
        self._cache[name] = _Loaded(signature, targets)
        return targets

    def check(self) -> None:
        """Load the global list and every country list now: errors name the file and row."""
        self._file(self.global_list)
        for path in sorted(self.directory.glob("*.csv")):
            if len(path.stem) == 2:
                self._file(path.name)

    def document(self, cc: str) -> dict[str, Any]:
        """The country's list and the global one, each URL once (the country's entry first),
        with the version of exactly these entries."""
        country = [t for t in self._file(f"{cc.lower()}.csv") if t.cc in (cc, "*")]
        shared = [t for t in self._file(self.global_list) if t.cc in (cc, "*")]
        entries: dict[str, dict[str, Any]] = {}
        for target in country + shared:
            entries.setdefault(target.url, entry(target))
        listed = list(entries.values())
        digest = hashlib.sha256(json.dumps(listed, sort_keys=True).encode()).hexdigest()
        return {"probe_cc": cc, "version": digest[:20], "targets": listed}


def served_lists(config: TargetListsConfig) -> ServedLists | None:
    if config.directory is None:
        return None
    return ServedLists(Path(config.directory), config.global_list)


def _json_error(status: type[web.HTTPException], reason: str) -> web.HTTPException:
    return status(text=json.dumps({"error": reason}), content_type="application/json")


async def get_targets(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/targets?probe_cc=CC (authenticated like uploads)."""
    await authenticate(request)
    cc = request.query.get("probe_cc", "")
    if not (len(cc) == 2 and cc.isascii() and cc.isalpha() and cc.isupper()):
        raise _json_error(web.HTTPBadRequest, "probe_cc: not a two-letter upper-case country "
                                              "code")
    lists = request.app[served_lists_key]
    if lists is None:
        raise _json_error(web.HTTPNotFound, "this collector serves no target lists "
                                            "(target_lists.directory)")
    try:
        document = lists.document(cc)
    except ConfigError as exc:
        raise _json_error(web.HTTPNotFound, f"no target list for {cc}: {exc}") from exc
    etag = f'"{document["version"]}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in [t.strip() for t in request.headers.get("If-None-Match", "").split(",")]:
        return web.Response(status=304, headers=headers)
    return web.json_response(document, headers=headers)
