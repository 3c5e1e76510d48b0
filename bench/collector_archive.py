"""Bytes on disk before and after archiving old measurement bodies, and reading them back.

Run: ``python bench/collector_archive.py [--size 100000] [--postgres] [--s3]``

The store is filled with ``bench/collector_scale.py``'s realistic measurements (one real
web_connectivity measurement of a 4 KiB page as template, the fleet of 50 probes x 60 targets
an hour), then every body is archived (``collector.store.archive``, as ``python -m collector
archive`` does), to a directory or, with ``--s3``, to a bucket of moto's S3 server (an
emulation of S3 on loopback: its rate is that of PUT and GET over local HTTP, not of a real
bucket's network). Prints: bytes on disk before, right after (SQLite's freed space stays in
the file until it is reused; PostgreSQL drops the archived months' body partitions), after
``VACUUM`` (SQLite) or ``VACUUM FULL`` of the summary partitions (PostgreSQL), the archive's
bytes, the archiving rate, and the median time to
read a page of 100 full bodies (``full=true``'s store call) from the database and from the
archive. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collector_scale import Generator, disk_bytes, fill, template  # noqa: E402
from bench.throwaway_postgres import throwaway_database  # noqa: E402
from collector.store import is_postgres, open_store  # noqa: E402
from collector.store.archive import archive  # noqa: E402
from collector.store.archive_targets import S3Settings, S3Target  # noqa: E402


async def _read_pages(database: str, root: Path, uids: list[str], pages: int,
                      s3: S3Settings | None = None) -> float:
    """Median ms to read ``pages`` random pages of 100 bodies."""
    store = await open_store(database, archive_dir=str(root), archive_s3=s3)
    rng = random.Random(7)
    times = []
    try:
        for _ in range(pages):
            start = rng.randrange(0, len(uids) - 100)
            began = time.perf_counter()
            bodies = await store.measurement_bodies(uids[start:start + 100])
            times.append((time.perf_counter() - began) * 1000)
            assert len(bodies) == 100
    finally:
        await store.close()
    return median(times)


async def _compact(database: str) -> int:
    if is_postgres(database):
        import asyncpg

        conn = await asyncpg.connect(database)
        try:
            parts = await conn.fetch(
                "SELECT inhrelid::regclass::text AS name FROM pg_inherits "
                "WHERE inhparent = 'measurements'::regclass")
            for part in parts:
                await conn.execute(f"VACUUM FULL {part['name']}")
        finally:
            await conn.close()
    else:
        with sqlite3.connect(database) as db:
            db.execute("VACUUM")
        db.close()
    return await disk_bytes(database)


def _archive_bytes(root: Path, s3: S3Settings | None) -> int:
    if s3 is None:
        return sum(p.stat().st_size for p in root.rglob("*.jsonl.gz"))
    target = S3Target(s3)
    pages = target._client.get_paginator("list_objects_v2").paginate(Bucket=target.bucket)
    return sum(o["Size"] for page in pages for o in page.get("Contents", []))


async def run(name: str, database: str, root: Path, size: int,
              s3: S3Settings | None = None) -> dict[str, str]:
    base = await template()
    generator = Generator(base)
    await fill(database, generator, size, base)
    uids = [f"s{i:011d}" for i in range(size)]
    before = await disk_bytes(database)
    in_db_ms = await _read_pages(database, root, uids, 21)
    store = await open_store(database, archive_dir=str(root), archive_s3=s3)
    try:
        began = time.perf_counter()
        assert store.archive_target is not None
        report = await archive(store, store.archive_target, "2100-01-01 00:00:00")
        seconds = time.perf_counter() - began
    finally:
        await store.close()
    assert report.emptied == size
    right_after = await disk_bytes(database)
    compacted = await _compact(database)
    archived = _archive_bytes(root, s3)
    from_archive_ms = await _read_pages(database, root, uids, 21, s3)
    mb = 1_000_000
    return {
        "store": name, "measurements": f"{size:,}",
        "database before": f"{before / mb:.1f} MB ({before / size:,.0f} B each)",
        "database right after": f"{right_after / mb:.1f} MB",
        "database after compaction": f"{compacted / mb:.1f} MB ({compacted / size:,.0f} B each)",
        "archive files": f"{archived / mb:.1f} MB in {len(report.files)} files "
                         f"({archived / size:,.0f} B each)",
        "archiving rate": f"{size / seconds:,.0f} bodies/s "
                          f"({archived / seconds / mb:.1f} MB/s of archive)",
        "body partitions dropped": str(len(report.dropped)),
        "page of 100 bodies, database": f"{in_db_ms:.1f} ms",
        "page of 100 bodies, archive": f"{from_archive_ms:.1f} ms",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--postgres", action="store_true",
                        help="also on a throwaway PostgreSQL cluster")
    parser.add_argument("--s3", action="store_true",
                        help="also SQLite archiving to moto's S3 server (an emulation)")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        results.append(asyncio.run(run("SQLite", str(tmp / "archive.sqlite"),
                                       tmp / "sqlite-archive", args.size)))
        if args.s3:
            from tests.helpers.s3_server import s3_server

            with s3_server() as server:
                server.create_bucket("bench")
                results.append(asyncio.run(run(
                    "SQLite, S3 (moto)", str(tmp / "s3.sqlite"), tmp / "unused",
                    args.size, server.settings("s3://bench/kuzot"))))
        if args.postgres:
            with throwaway_database(parser, "kuzot_archive") as dsn:
                results.append(asyncio.run(run("PostgreSQL", dsn, tmp / "pg-archive",
                                               args.size)))
    keys = list(results[0])
    print("| " + " | ".join(["", *(r["store"] for r in results)]) + " |")
    print("|---|" + "---:|" * len(results))
    for key in keys[1:]:
        print(f"| {key} | " + " | ".join(r[key] for r in results) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
