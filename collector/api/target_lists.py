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
entries, once a day). The operator overrides an entry's priority with ``collector targets
set-priority`` (``priorities.csv`` in the directory, watched like the lists): ``high`` makes
the probe measure it at its cadence whatever its category, ``low`` leaves it to the rotating
sample whatever its category (``probe.daemon.pacing``).
"""

from __future__ import annotations

import csv
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
from probe.core.targets import Target, load_targets_csv
from probe.core.typed_config import ConfigError

log = logging.getLogger(__name__)

FIELDS = ("url", "category", "cc", "role", "baseline", "date_added", "source", "notes")
PRIORITIES_FILE = "priorities.csv"
PRIORITY_COLUMNS = ("url", "priority")
PRIORITIES = ("high", "low")
"""The priorities an operator may set; ``normal`` (no override) is the default's name."""


def entry(target: Target, override: str | None = None) -> dict[str, Any]:
    """One served entry: the target's fields, its cadence in seconds and its priority (the
    operator's override, else ``high`` at the probe's cadence and ``normal`` otherwise)."""
    data: dict[str, Any] = {name: getattr(target, name) for name in FIELDS}
    data["interval_s"] = target.interval
    data["priority"] = override or ("high" if target.interval is None else "normal")
    return data


def load_priorities(path: Path) -> dict[str, str]:
    """``url -> high|low`` from a priorities file; ConfigError naming the row otherwise."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path.name, f"cannot read: {exc}") from exc
    reader = csv.DictReader(line for line in text.splitlines()
                            if line.strip() and not line.startswith("#"))
    if tuple(reader.fieldnames or ()) != PRIORITY_COLUMNS:
        raise ConfigError(path.name, f"header must be {','.join(PRIORITY_COLUMNS)}")
    found: dict[str, str] = {}
    for index, row in enumerate(reader):
        url, priority = (row.get("url") or "").strip(), (row.get("priority") or "").strip()
        if not url or priority not in PRIORITIES:
            raise ConfigError(f"{path.name}[{index}]",
                              f"needs a url and a priority of {'|'.join(PRIORITIES)}")
        found[url] = priority
    return found


@dataclass(slots=True)
class _Loaded:
    signature: tuple[int, int] | None
    targets: tuple[Target, ...]


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


@dataclass(slots=True)
class ServedLists:
    """The lists of one directory, read again when a file changes."""

    directory: Path
    global_list: str
    _cache: dict[str, _Loaded] = field(default_factory=dict)
    _priorities: tuple[tuple[int, int] | None, dict[str, str]] = (None, {})
    _listed: tuple[tuple[object, ...], dict[str, Target]] = ((), {})

    def priorities(self) -> dict[str, str]:
        """The operator's priority overrides (``priorities.csv``); a file that no longer
        loads keeps the last good overrides in service, as a list does."""
        path = self.directory / PRIORITIES_FILE
        signature = _signature(path)
        if signature is not None and signature == self._priorities[0]:
            return self._priorities[1]
        try:
            loaded = load_priorities(path)
        except ConfigError as exc:
            log.error("%s no longer loads, still using its last good version: %s",
                      PRIORITIES_FILE, exc)
            return self._priorities[1]
        self._priorities = (signature, loaded)
        return loaded

    def _file(self, name: str) -> tuple[Target, ...]:
        path = self.directory / name
        signature = _signature(path)
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
        for path in self.country_files():
            self._file(path.name)
        load_priorities(self.directory / PRIORITIES_FILE)

    def country_files(self) -> list[Path]:
        return sorted(p for p in self.directory.glob("*.csv")
                      if len(p.stem) == 2 and p.stem.isalpha())

    def listed(self) -> dict[str, Target]:
        """Every entry of every list served (country lists first), each URL once."""
        names = [path.name for path in self.country_files()] + [self.global_list]
        files = [self._file(name) for name in names]
        key = tuple((name, self._cache[name].signature) for name in names)
        if key == self._listed[0]:
            return self._listed[1]
        found: dict[str, Target] = {}
        for targets in files:
            for target in targets:
                found.setdefault(target.url, target)
        self._listed = (key, found)
        return found

    def document(self, cc: str) -> dict[str, Any]:
        """The country's list and the global one, each URL once (the country's entry first),
        with the version of exactly these entries."""
        country = [t for t in self._file(f"{cc.lower()}.csv") if t.cc in (cc, "*")]
        shared = [t for t in self._file(self.global_list) if t.cc in (cc, "*")]
        overrides = self.priorities()
        entries: dict[str, dict[str, Any]] = {}
        for target in country + shared:
            if target.url not in entries:
                entries[target.url] = entry(target, overrides.get(target.url))
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
