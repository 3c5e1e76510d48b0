"""The target lists the collector serves, read from the directory the operator edits
(``target_lists.directory``): the country's list (``kg.csv``) plus the global one, in either CSV
format the probe reads, and the operator's priority overrides (``priorities.csv``).

The directory is watched by looking at the files' size and modification time on each request;
a changed file is read again, and a file that no longer loads leaves the last good version in
service (logged), so a typo never takes the lists away from the probes. Apart from the HTTP
route (``collector.api.target_lists``) so that the configuration loader can check the lists at
load without importing the API.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
