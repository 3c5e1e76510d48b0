"""Command line of the collector: ``serve``, ``token issue|revoke|list``, ``reanalyze``,
``archive``, ``endpoints-key generate|public`` (``collector.announce``) and
``targets list|import|set-priority|health`` (``collector.targets_cli``)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sqlite3
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector import announce, reanalyze, targets_cli
from collector import config as collector_config
from collector.api.geoip import GeoIP
from collector.api.tokens import new_token, token_hash, valid_probe_id
from collector.app import create_app
from collector.server import StartupError, serve
from collector.store import TIME_FORMAT, Store, StoreUnavailable, archive, open_store
from collector.store.archive_targets import TargetError
from probe.core.typed_config import ConfigError, is_host_port

BAD_INPUT = 2
ACCESS_LOG_FORMAT = '%t "%r" %s %b %Tfs'
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _log_to_stderr() -> None:
    """The server's log on standard error (journald under systemd), from INFO up, with time
    and level: the lines the README promises (events opened, raised and ended; notifications
    sent; the outside-in prober started, its confirmations, and why it is off). Without a
    handler Python would print only warnings and errors, bare. aiohttp's loggers stay at
    WARNING: its access log would be a line per upload and heartbeat."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("aiohttp").setLevel(logging.WARNING)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m collector")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the collector")
    serve.add_argument("--config")
    serve.add_argument("--listen", help="HOST:PORT (default 127.0.0.1:8080)")
    serve.add_argument("--database", help="SQLite path or postgresql:// DSN")
    token = sub.add_parser("token", help="manage probe tokens")
    token.add_argument("action", choices=["issue", "revoke", "list"])
    token.add_argument("--probe-id")
    token.add_argument("--config")
    token.add_argument("--database")
    targets_cli.add_parser(sub)
    keys = sub.add_parser("endpoints-key", help="the key that signs endpoint announcements "
                          "(collector.announce)")
    keys.add_argument("action", choices=["generate", "public"],
                      help="generate: write a new private key and print its public half; "
                      "public: print the public half of an existing key")
    keys.add_argument("--key-file", required=True, help="the private key file (PEM)")
    again = sub.add_parser(
        "reanalyze", help="re-run the current verdict rules on stored measurements "
                          "recorded under older ones")
    again.add_argument("--since", required=True, help="ISO 8601 start time (inclusive)")
    again.add_argument("--until", help="ISO 8601 start time (exclusive; default: no bound)")
    again.add_argument("--dry-run", action="store_true", help="count, write nothing")
    again.add_argument("--config")
    again.add_argument("--database")
    keep = sub.add_parser(
        "archive", help="move the bodies of measurements older than storage.archive_after "
                        "to archive files (the summary rows stay)")
    keep.add_argument("--dry-run", action="store_true", help="count, write nothing")
    keep.add_argument("--config")
    keep.add_argument("--database")
    return parser


def _config(args: argparse.Namespace) -> collector_config.CollectorConfig:
    config = collector_config.load(args.config)
    changes = {}
    if getattr(args, "listen", None):
        if is_host_port(args.listen):
            raise ConfigError("--listen", "not HOST:PORT")
        changes["listen"] = args.listen
    if args.database:
        problem = collector_config.check_database(args.database)
        if problem:
            raise ConfigError("--database", problem)
        changes["database"] = args.database
    return dataclasses.replace(config, **changes)


def _check_geoip(config: collector_config.CollectorConfig) -> None:
    """Open the GeoIP files once before serving, so a bad file is a config error."""
    for key in ("geoip_database", "geoip_asn_database"):
        path = getattr(config, key)
        if path:
            try:
                GeoIP(path).close()
            except (OSError, ValueError, RuntimeError) as exc:  # InvalidDatabaseError too
                raise ConfigError(key, f"not a readable MaxMind DB file: {exc}") from exc


async def _token(args: argparse.Namespace, config: collector_config.CollectorConfig) -> int:
    if args.probe_id is not None and not valid_probe_id(args.probe_id):
        print("error: --probe-id: 1-64 characters of [A-Za-z0-9._-]", file=sys.stderr)
        return BAD_INPUT
    try:
        store = await open_store(config.database, pool_size=2)
    except StoreUnavailable as exc:
        print(f"error: database unavailable: {exc}", file=sys.stderr)
        return 1
    try:
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        if args.action == "list":
            for row in await store.tokens():
                state = f"revoked {row['revoked_at']}" if row["revoked_at"] else "active"
                print(f"{row['probe_id']}\t{row['created_at']}\t{state}")
            return 0
        if not args.probe_id:
            print("error: --probe-id is required", file=sys.stderr)
            return BAD_INPUT
        if args.action == "issue":
            token = new_token()
            await store.add_token(args.probe_id, token_hash(token), now)
            print(token)
            return 0
        if await store.revoke_token(args.probe_id, now):
            print(f"revoked {args.probe_id}")
            return 0
        print(f"error: no active token for {args.probe_id}", file=sys.stderr)
        return 1
    finally:
        await store.close()


def _missing_sqlite(database: str) -> str | None:
    """Why a SQLite ``database`` cannot be the one to re-read, or None.

    Opening a SQLite path creates it: a mistyped ``--database`` would otherwise become a new,
    empty database, and the command would report zero measurements as a success.
    """
    if database.startswith(("postgresql://", "postgres://")) or Path(database).is_file():
        return None
    return f"{database} does not exist (give the collector's --config or --database)"


async def _open_store(config: collector_config.CollectorConfig,
                      unavailable: str) -> Store | None:
    """The configured store with its archive target, for ``reanalyze`` and ``archive``; or None
    once why not is printed. A store or target that fails to open is printed as ``error: ``,
    ``unavailable``, then the reason: each command keeps the words it has always printed."""
    missing = _missing_sqlite(config.database)
    if missing:
        print(f"error: database unavailable: {missing}", file=sys.stderr)
        return None
    try:
        return await open_store(config.database, pool_size=2,
                                archive_dir=config.storage.archive_dir,
                                archive_s3=config.storage.s3_settings(),
                                archive_cache_bytes=config.storage.archive_cache_bytes)
    except (StoreUnavailable, TargetError) as exc:
        print(f"error: {unavailable}{exc}", file=sys.stderr)
        return None
    except sqlite3.DatabaseError as exc:
        # A file that is not a SQLite database, or one on a read-only file system: one line,
        # naming the file, not a traceback.
        print(f"error: database unavailable: {config.database}: {exc}", file=sys.stderr)
        return None


async def _reanalyze(args: argparse.Namespace, config: collector_config.CollectorConfig) -> int:
    try:
        since = reanalyze.parse_time(args.since)
        until = reanalyze.parse_time(args.until) if args.until else None
    except ValueError as exc:
        print(f"error: --since/--until: {exc}", file=sys.stderr)
        return BAD_INPUT
    if until is not None and until <= since:
        print("error: --until must be after --since", file=sys.stderr)
        return BAD_INPUT
    store = await _open_store(config, "database unavailable: ")
    if store is None:
        return 1
    try:
        report = await reanalyze.reanalyze(store, since, until, dry_run=args.dry_run)
    except StoreUnavailable as exc:
        print(f"error: database unavailable: {exc}", file=sys.stderr)
        return 1
    except (archive.ArchiveError, TargetError) as exc:
        # Archived rows keep their old verdict until their new file is written and verified.
        print(f"error: archive: {exc}", file=sys.stderr)
        return 1
    finally:
        await store.close()
    print(json.dumps({"dry_run": args.dry_run, "since": since, "until": until,
                      **report.as_json()}, ensure_ascii=False))
    return 0


async def _archive(args: argparse.Namespace, config: collector_config.CollectorConfig) -> int:
    age = config.storage.archive_after
    if age is None:
        print("error: storage.archive_after is not set: archiving is off", file=sys.stderr)
        return BAD_INPUT
    before = (datetime.now(UTC) - timedelta(seconds=age)).strftime(TIME_FORMAT)
    store = await _open_store(config, "")
    if store is None:
        return 1
    try:
        target = store.archive_target
        assert target is not None  # open_store always sets one when a directory is given
        report = await archive.archive(store, target, before, dry_run=args.dry_run)
    except (StoreUnavailable, archive.ArchiveError, TargetError, OSError) as exc:
        # Rows are emptied only after their file is verified: the rest keep their bodies.
        print(f"error: archiving stopped (bodies not yet verified stay in the database): "
              f"{exc}", file=sys.stderr)
        return 1
    finally:
        await store.close()
    print(json.dumps({"dry_run": args.dry_run, "before": before, "bodies": report.bodies,
                      "emptied": report.emptied, "files": len(report.files),
                      "partitions_dropped": list(report.dropped)}))
    return 0


def _endpoints_key(args: argparse.Namespace) -> int:
    """Print the public key probes take as ``--announce-key`` at ``init``."""
    path = Path(args.key_file)
    try:
        if args.action == "generate":
            public = announce.generate(path)
        else:
            public = announce.public_half(announce.load_key(path))
    except FileExistsError:
        print(f"error: {path} exists: a key is never overwritten", file=sys.stderr)
        return BAD_INPUT
    except (OSError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    print(public)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "endpoints-key":
        return _endpoints_key(args)
    try:
        config = _config(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return BAD_INPUT
    if args.command == "token":
        return asyncio.run(_token(args, config))
    if args.command == "targets":
        try:
            return asyncio.run(targets_cli.run(args, config))
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return BAD_INPUT
    if args.command == "reanalyze":
        return asyncio.run(_reanalyze(args, config))
    if args.command == "archive":
        return asyncio.run(_archive(args, config))
    try:
        _check_geoip(config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return BAD_INPUT
    def listening() -> None:
        print(f"kuzot collector on http://{config.listen}/ (metrics at /metrics), "
              f"database {config.database}", flush=True)

    _log_to_stderr()
    # The access log format leaves out the client address (%a): it is never recorded.
    try:
        asyncio.run(serve(create_app(config), config.host, config.port,
                          config.limits.header_timeout, ACCESS_LOG_FORMAT, listening))
    except StartupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
    return 0
