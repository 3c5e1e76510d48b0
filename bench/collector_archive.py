"""Bytes on disk before and after archiving old measurement bodies, and reading them back.

Run: ``python bench/collector_archive.py [--size 100000] [--postgres]``

The store is filled with ``bench/collector_scale.py``'s realistic measurements (one real
web_connectivity measurement of a 4 KiB page as template, the fleet of 50 probes x 60 targets
an hour), then every body is archived (``collector.store.archive``, as ``python -m collector
archive`` does). Prints: bytes on disk before, right after (freed space stays in the file or
the table until it is reused), after ``VACUUM`` (SQLite) or ``VACUUM FULL`` of the measurement
partitions (PostgreSQL), the archive files' bytes, the archiving rate, and the median time to
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
from collector.store import is_postgres, open_store  # noqa: E402
from collector.store.archive import archive  # noqa: E402
from collector.store.archive_targets import LocalTarget  # noqa: E402


async def _read_pages(database: str, root: Path, uids: list[str], pages: int) -> float:
    """Median ms to read ``pages`` random pages of 100 bodies."""
    store = await open_store(database, archive_dir=str(root))
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


async def run(name: str, database: str, root: Path, size: int) -> dict[str, str]:
    generator = Generator(await template())
    await fill(database, generator, size)
    uids = [f"s{i:011d}" for i in range(size)]
    before = await disk_bytes(database)
    in_db_ms = await _read_pages(database, root, uids, 21)
    store = await open_store(database, archive_dir=str(root))
    try:
        began = time.perf_counter()
        report = await archive(store, LocalTarget(root), "2100-01-01 00:00:00")
        seconds = time.perf_counter() - began
    finally:
        await store.close()
    assert report.emptied == size
    right_after = await disk_bytes(database)
    compacted = await _compact(database)
    archived = sum(p.stat().st_size for p in root.rglob("*.jsonl.gz"))
    from_archive_ms = await _read_pages(database, root, uids, 21)
    mb = 1_000_000
    return {
        "store": name, "measurements": f"{size:,}",
        "database before": f"{before / mb:.1f} MB ({before / size:,.0f} B each)",
        "database right after": f"{right_after / mb:.1f} MB",
        "database after compaction": f"{compacted / mb:.1f} MB ({compacted / size:,.0f} B each)",
        "archive files": f"{archived / mb:.1f} MB in {len(report.files)} files "
                         f"({archived / size:,.0f} B each)",
        "archiving rate": f"{size / seconds:,.0f} bodies/s",
        "page of 100 bodies, database": f"{in_db_ms:.1f} ms",
        "page of 100 bodies, archive": f"{from_archive_ms:.1f} ms",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--postgres", action="store_true",
                        help="also on a throwaway PostgreSQL cluster")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        results.append(asyncio.run(run("SQLite", str(tmp / "archive.sqlite"),
                                       tmp / "sqlite-archive", args.size)))
        if args.postgres:
            from tests.helpers.postgres import PostgresCluster, unavailable_reason

            reason = unavailable_reason()
            if reason:
                parser.error(reason)
            cluster = PostgresCluster.start()
            try:
                cluster.execute("CREATE DATABASE kuzot_archive")
                results.append(asyncio.run(run("PostgreSQL", cluster.dsn("kuzot_archive"),
                                               tmp / "pg-archive", args.size)))
            finally:
                cluster.stop()
    keys = list(results[0])
    print("| " + " | ".join(["", *(r["store"] for r in results)]) + " |")
    print("|---|" + "---:|" * len(results))
    for key in keys[1:]:
        print(f"| {key} | " + " | ".join(r[key] for r in results) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
