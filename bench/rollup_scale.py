"""Aggregations at the rollup size of a 10M-measurement store, without building that store.

Run: ``python bench/rollup_scale.py [--days 136] [--repeat 5] [--postgres]``

The documented aggregations (``bench/collector_scale.py``'s) grow with the rows of the rollup
tables, not with the measurements. This fills only the rollups, in the shape a 10M store of
the fleet has (about 1.4M hourly and 0.3M daily rows over 136 days: 6 networks in 2
countries, 150 inputs each plus 3 tests without an input, 5 verdicts), then times each
aggregation two ways in the same run, alternating: as the store answers it now, and as it
was answered before the monthly and coarse rollups (one fine table: the daily one when the
bounds are whole days and no axis is the hour, else the hourly one). Both answers are
compared; they must be equal.

The hourly rows are generated (each hour, each network measures about 70 of its country's
targets, one verdict each, a few measurements per row); every other table is summed from
them in SQL, as the migration fills it.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from collector.store import Axis, Filters, is_postgres, open_store, sql  # noqa: E402

NETWORKS = [("KG", "AS8449"), ("KG", "AS12997"), ("KG", "AS39659"),
            ("KZ", "AS9198"), ("KZ", "AS21299"), ("KZ", "AS48716")]
NO_INPUT_TESTS = ("telegram", "whatsapp", "signal")
VERDICT_WEIGHTS = {"ok": 70, "blocked": 12, "down": 6, "throttled": 4, "inconclusive": 5,
                   "": 3}
START = datetime(2026, 1, 1)


def hourly_rows(days: int, seed: int = 22) -> list[tuple[Any, ...]]:
    """(period, cc, asn, test, input, domain, verdict, count) of every hour of ``days``."""
    rng = random.Random(seed)
    verdicts, weights = list(VERDICT_WEIGHTS), list(VERDICT_WEIGHTS.values())
    inputs = {cc: [(f"https://site{i}.{cc.lower()}.example/", f"site{i}.{cc.lower()}.example")
                   for i in range(150)] for cc in ("KG", "KZ")}
    rows = []
    for hour in range(days * 24):
        period = (START + timedelta(hours=hour)).strftime("%Y-%m-%d %H:%M:%S")
        for cc, asn in NETWORKS:
            picked = rng.sample(inputs[cc], 68)
            keys = {("web_connectivity", url, domain, rng.choices(verdicts, weights)[0])
                    for url, domain in picked}
            keys |= {(test, "", "", rng.choices(verdicts, weights)[0])
                     for test in NO_INPUT_TESTS}
            rows += [(period, cc, asn, *key, rng.randint(1, 12)) for key in sorted(keys)]
    return rows


def fills(dialect: str) -> list[str]:
    """The other rollup tables summed from the hourly one, as the migrations fill them."""
    day = ("substr(period, 1, 10) || ' 00:00:00'" if dialect == "sqlite"
           else "date_trunc('day', period)")
    month = ("substr(period, 1, 7) || '-01 00:00:00'" if dialect == "sqlite"
             else "date_trunc('month', period)")
    return [sql.rollup_refill("rollups_daily", "rollups_hourly", day),
            sql.rollup_refill("rollups_monthly", "rollups_daily", month),
            sql.rollup_refill("rollups_hourly_coarse", "rollups_hourly", "period"),
            sql.rollup_refill("rollups_daily_coarse", "rollups_daily", "period")]


async def populate(database: str, rows: list[tuple[Any, ...]]) -> dict[str, int]:
    store = await open_store(database)  # the schema, by the store's own migrations
    await store.close()
    counts = {}
    if is_postgres(database):
        import asyncpg

        conn = await asyncpg.connect(database)
        try:
            await conn.copy_records_to_table(
                "rollups_hourly", columns=[*sql.ROLLUP_KEY, "count"],
                records=[(datetime.strptime(r[0], "%Y-%m-%d %H:%M:%S"), *r[1:]) for r in rows])
            for statement in fills("postgres"):
                await conn.execute(statement)
            await conn.execute("ANALYZE")
            for table in sql.ROLLUP_TABLES:
                counts[table] = await conn.fetchval(f"SELECT count(*) FROM {table}")
        finally:
            await conn.close()
        return counts
    db = sqlite3.connect(database)
    try:
        db.executemany(f"INSERT INTO rollups_hourly ({','.join(sql.ROLLUP_KEY)}, count) "
                       f"VALUES ({','.join('?' * 8)})", rows)
        for statement in fills("sqlite"):
            db.execute(statement)
        db.commit()
        db.execute("ANALYZE")
        for table in sql.ROLLUP_TABLES:
            counts[table] = db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        db.close()
    return counts


def aggregations(days: int) -> list[tuple[str, Filters, tuple[Axis, ...]]]:
    """The documented aggregations (``bench/collector_scale.py``), ending at the last hour."""
    end = START + timedelta(days=days) - timedelta(hours=5)

    def at(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%d %H:00:00")

    day = (end - timedelta(days=1)).strftime("%Y-%m-%d 00:00:00")
    return [
        ("day, 30 days", Filters(since=at(end - timedelta(days=30)), until=at(end)), ("day",)),
        ("asn", Filters(), ("asn",)),
        ("cc x asn", Filters(), ("cc", "asn")),
        ("domain x cc", Filters(), ("domain", "cc")),
        ("hour, KG, 7 days", Filters(cc="KG", since=at(end - timedelta(days=7)),
                                     until=at(end)), ("hour",)),
        ("day x test_name, KZ", Filters(cc="KZ"), ("day", "test_name")),
        ("input, KG, 1 day", Filters(cc="KG", since=day), ("input",)),
    ]


def before_query(filters: Filters, axes: tuple[Axis, ...], params: sql.Params,
                 limit: int) -> str:
    """The aggregation as the store answered it before the monthly and coarse rollups."""
    bounds = [t for t in (filters.since, filters.until) if t is not None]
    whole_days = "hour" not in axes and all(t.endswith(" 00:00:00") for t in bounds)
    table = "rollups_daily" if whole_days else "rollups_hourly"
    return sql._grouped(params.dialect.rollup_axes, axes, sql.rollup_count_expressions(), table,
                        sql.rollup_where(filters, params), params, limit)


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = await call()
    return (time.perf_counter() - started) * 1000, result


async def measure(database: str, days: int, repeat: int) -> list[tuple[str, float, float, bool]]:
    store = await open_store(database)
    dialect = store.dialect  # type: ignore[attr-defined]
    out = []
    try:
        for name, filters, axes in aggregations(days):
            async def after(f: Filters = filters, a: tuple[Axis, ...] = axes) -> Any:
                return await store.aggregate(f, a, 10_000)

            async def before(f: Filters = filters, a: tuple[Axis, ...] = axes) -> Any:
                params = dialect.params()
                query = before_query(f, a, params, 10_001)
                rows = await store._fetch(query, *params.values) if is_postgres(  # type: ignore[attr-defined]
                    database) else await store._fetch(query, params.values)  # type: ignore[attr-defined]
                return [{k: (int(r[k] or 0) if k.endswith("_count") else r[k])
                         for k in r.keys()} for r in rows]

            await after()
            await before()  # warm both
            old, new, same = [], [], True
            for _ in range(repeat):
                ms, got_old = await timed(before)
                old.append(ms)
                ms, got_new = await timed(after)
                new.append(ms)
                same = same and [dict(r) for r in got_old] == [dict(r) for r in got_new]
            out.append((name, median(old), median(new), same))
    finally:
        await store.close()
    return out


async def run(database: str, label: str, days: int, repeat: int) -> None:
    rows = hourly_rows(days)
    started = time.perf_counter()
    counts = await populate(database, rows)
    print(f"\n{label}: rollup rows {counts} (filled in {time.perf_counter() - started:.0f} s)")
    print(f"| {label}, median ms of {repeat} | before | after | same answer |")
    print("|---|---:|---:|---|")
    for name, old, new, same in await measure(database, days, repeat):
        print(f"| {name} | {old:,.1f} | {new:,.1f} | {'yes' if same else 'NO'} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=136)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--postgres", action="store_true",
                        help="also a throwaway local PostgreSQL cluster")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_sqlite:
            asyncio.run(run(str(Path(tmp) / "rollups.sqlite"), "SQLite", args.days,
                            args.repeat))
        if args.postgres:
            from tests.helpers.postgres import PostgresCluster, unavailable_reason

            reason = unavailable_reason()
            if reason:
                parser.error(reason)
            cluster = PostgresCluster.start()
            try:
                cluster.execute("CREATE DATABASE kuzot_rollups")
                asyncio.run(run(cluster.dsn("kuzot_rollups"), "PostgreSQL", args.days,
                                args.repeat))
            finally:
                cluster.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
