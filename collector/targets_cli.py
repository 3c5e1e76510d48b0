"""``collector targets list|import|set-priority|health``: the operator's hands on the lists.

The collector serves the lists of ``target_lists.directory`` and re-reads a file when it
changes, so these commands only edit that directory (each write is a whole new file renamed
into place, so a running collector never reads half a file) and read the database for the
list health. Every input is checked before anything is written; a refusal exits 2 with the
reason and leaves the directory as it was.

* ``list --cc KG``: what a probe of that country is served (version, then one entry a line:
  priority, cadence, category, URL).
* ``import --test-lists CHECKOUT``: rebuild ``kg.csv``, ``kz.csv`` and ``global.csv`` from a
  Citizen Lab test-lists checkout and the directory's ``curated/`` additions
  (``probe.config.targets_import``); ``import FILE [--name kg.csv]``: put one list in either format
  into the directory. Both print what changed: entries added and removed per list.
* ``set-priority URL high|low|normal``: the operator's override of the pacing for one
  entry (``priorities.csv``); ``normal`` removes the override.
* ``health [--cc KG] [--days N] [--status flagged]``: the list health (``list_health``).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

from collector.api.list_health import STATE_NAME, ListHealth
from collector.api.served_lists import (
    PRIORITIES,
    PRIORITIES_FILE,
    PRIORITY_COLUMNS,
    ServedLists,
    load_priorities,
)
from collector.config import CollectorConfig
from collector.store import StoreUnavailable, open_store
from probe.config import targets_import
from probe.core.targets import load_targets_csv
from probe.core.typed_config import ConfigError

BAD_INPUT = 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    targets = sub.add_parser("targets", help="manage the served target lists")
    targets.add_argument("--config")
    targets.add_argument("--database")
    actions = targets.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the entries served to a country")
    listing.add_argument("--cc", required=True, help="two-letter country code, e.g. KG")
    listing.add_argument("--json", action="store_true", help="the served JSON document")
    imports = actions.add_parser("import", help="import lists into the directory")
    imports.add_argument("file", nargs="?", type=Path, help="one list, in either format")
    imports.add_argument("--name", help="its name in the directory (default: the file's)")
    imports.add_argument("--test-lists", type=Path,
                         help="a checkout of github.com/citizenlab/test-lists")
    imports.add_argument("--interval", default="24h",
                         help="cadence of each Citizen Lab entry (default 24h)")
    imports.add_argument("--commit", help="the checkout's commit, when not a git checkout")
    imports.add_argument("--commit-date", help="that commit's date, YYYY-MM-DD")
    priority = actions.add_parser("set-priority", help="override one entry's pacing")
    priority.add_argument("url")
    priority.add_argument("priority", choices=[*PRIORITIES, "normal"])
    health = actions.add_parser("health", help="entries the control fails to fetch")
    health.add_argument("--cc")
    health.add_argument("--days", type=float)
    health.add_argument("--status", choices=["flagged", "failing", "unchecked", "ok"])


def _lists(config: CollectorConfig) -> ServedLists:
    if config.target_lists.directory is None:
        raise ConfigError("target_lists.directory", "not set: this collector serves no lists")
    return ServedLists(Path(config.target_lists.directory), config.target_lists.global_list)


def _urls(directory: Path) -> dict[str, set[str]]:
    """The URLs of every CSV list directly in ``directory``, by file name."""
    found = {}
    for path in sorted(directory.glob("*.csv")):
        if path.name == PRIORITIES_FILE:
            continue
        try:
            found[path.name] = {t.url for t in load_targets_csv(path, path.name)}
        except ConfigError:
            found[path.name] = set()
    return found


def _changes(before: dict[str, set[str]], after: dict[str, set[str]]) -> list[str]:
    lines = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name, set()), after.get(name, set())
        if old != new or name not in before:
            lines.append(f"{name}: {len(new)} entries, {len(new - old)} added, "
                         f"{len(old - new)} removed")
    return lines or ["no list changed"]


def _list(lists: ServedLists, cc: str, as_json: bool) -> int:
    if not (len(cc) == 2 and cc.isascii() and cc.isalpha()):
        raise ConfigError("--cc", "not a two-letter country code")
    document = lists.document(cc.upper())
    if as_json:
        print(json.dumps(document, indent=1, ensure_ascii=False))
        return 0
    print(f"# {document['probe_cc']} version {document['version']}: "
          f"{len(document['targets'])} entries")
    for item in document["targets"]:
        cadence = "cadence" if item["interval_s"] is None else f"{item['interval_s']:g}s"
        print(f"{item['priority']}\t{cadence}\t{item['category']}\t{item['url']}")
    return 0


def _import(lists: ServedLists, args: argparse.Namespace) -> int:
    directory = lists.directory
    before = _urls(directory)
    if args.test_lists is not None:
        if args.file is not None:
            raise ConfigError("import", "give either a FILE or --test-lists, not both")
        try:
            counts = targets_import.run(args.test_lists, directory, args.interval, args.commit,
                                        args.commit_date)
        except (targets_import.ListImportError, ValueError) as exc:
            raise ConfigError("--test-lists", str(exc)) from exc
        for name, (curated, imported) in counts.items():
            print(f"{name}.csv: {curated} curated + {imported} from Citizen Lab")
    elif args.file is not None:
        name = args.name or args.file.name
        if Path(name).name != name or not name.endswith(".csv"):
            raise ConfigError("--name", "a file name ending in .csv, without a directory")
        temporary = directory / f".{name}.new"
        try:
            with tempfile.TemporaryDirectory() as scratch:
                # Checked under its final name: a Citizen Lab list's country is its name.
                staged = Path(scratch) / name
                shutil.copyfile(args.file, staged)
                targets = load_targets_csv(staged, name)
                shutil.copyfile(staged, temporary)
        except OSError as exc:
            raise ConfigError("import", f"cannot read {args.file}: {exc.strerror}") from exc
        temporary.replace(directory / name)
        print(f"{name}: {len(targets)} entries imported")
    else:
        raise ConfigError("import", "give a FILE or --test-lists CHECKOUT")
    for line in _changes(before, _urls(directory)):
        print(line)
    return 0


def _set_priority(lists: ServedLists, url: str, priority: str) -> int:
    if url not in lists.listed():
        raise ConfigError("url", f"{url} is on no served list")
    path = lists.directory / PRIORITIES_FILE
    overrides = load_priorities(path)
    if priority == "normal":
        overrides.pop(url, None)
    else:
        overrides[url] = priority
    out = io.StringIO()
    out.write("# Priority overrides of the served lists: `collector targets set-priority`.\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PRIORITY_COLUMNS)
    writer.writerows(sorted(overrides.items()))
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(out.getvalue(), encoding="utf-8")
    temporary.replace(path)
    print(f"{url}: {priority}")
    return 0


async def _health(lists: ServedLists, config: CollectorConfig,
                  args: argparse.Namespace) -> int:
    try:
        store = await open_store(config.database, pool_size=2)
    except StoreUnavailable as exc:
        print(f"error: database unavailable: {exc}", file=sys.stderr)
        return 1
    try:
        saved = await store.load_state(STATE_NAME)
    finally:
        await store.close()
    health = ListHealth.from_document(json.loads(saved) if saved else None)
    days = args.days if args.days is not None else config.target_lists.health_days
    if days <= 0:
        raise ConfigError("--days", "must be positive")
    cc = args.cc.upper() if args.cc else None
    listed = [(url, t.cc, t.category) for url, t in lists.listed().items()
              if cc is None or t.cc in (cc, "*")]
    rows = health.report(listed, days)
    if args.status:
        rows = [r for r in rows if r["status"] == args.status]
    for row in rows:
        print(f"{row['status']}\t{row['failing_days']:g}d\t{row['last_failure'] or ''}\t"
              f"{row['url']}")
    return 0


async def run(args: argparse.Namespace, config: CollectorConfig) -> int:
    """One ``targets`` command; ConfigError for bad input (the caller exits 2)."""
    lists = _lists(config)
    if args.action == "list":
        return _list(lists, args.cc, args.json)
    if args.action == "import":
        return _import(lists, args)
    if args.action == "set-priority":
        return _set_priority(lists, args.url, args.priority)
    return await _health(lists, config, args)
