"""Grow a bench store to millions of rows by copying its first rows, in SQL.

Making and compressing a realistic measurement costs about 0.2 ms of CPU (most of it zlib),
so filling 10 million rows through ``add_measurements`` would take the better part of an hour
on two cores. ``bench/collector_scale.py --clone-from N`` fills the first ``N`` rows through
the store as usual, then copies them whole until the store holds the size asked: each copy
gets new uids (``s<index>``, continuing the fleet's numbering) and times shifted past the
previous copy, keeps its compressed body byte for byte (so bytes per row, page fill and every
index are those of real rows; only the uid and time *inside* a copied body, and in its stored
observation, are its original's),
and adds its counts to the rollups, the stored total and ``target_state`` as the store's own
write path does. Bench code only: it writes the store's tables directly. On PostgreSQL,
``check_postgres`` compares the result with a recount of the rows.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from collector.store import sql

ROWS_PER_HOUR = 3000  # the fleet: 50 probes x 60 targets a round an hour
_ROLLUP_KEY = ",".join(sql.ROLLUP_KEY)
_COLUMNS = ("uid", "probe_id", "test_name", "input", "domain", "probe_cc", "probe_asn",
            "start_time", "received_at", "verdict", "layer", "mechanism", "location_source",
            "location_mismatch", "observation")


def shift_hours(base: int) -> int:
    """Hours between two copies of ``base`` rows (whole hours of the fleet: a copy of row i
    is row i + offset of the fleet's timeline, same probe, target and hour)."""
    if base % ROWS_PER_HOUR:
        raise ValueError(f"--clone-from: a multiple of {ROWS_PER_HOUR} (rows of one hour)")
    return base // ROWS_PER_HOUR


def clone_sqlite(path: str, base: int, upto: int, have: int) -> int:
    """Copy rows s0 .. s<base - 1> until ``upto`` rows are stored; returns the count.

    A whole copy's hourly rollups are the first copy's shifted by whole hours; a partial
    last copy is counted from its rows. The daily rollups are summed from the hourly ones,
    the monthly and coarse ones from those, and ``target_state`` is upserted from the last
    two copies once, at the end."""
    db = sqlite3.connect(path, isolation_level=None)
    hours_per_copy = shift_hours(base)
    try:
        db.execute("PRAGMA cache_size=-400000")
        # Building a bench file, not a deployment's store: a rollback journal writes the new
        # pages once (WAL writes them twice), and no fsync. WAL again at the end.
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")
        db.execute("PRAGMA synchronous=OFF")
        copy = have // base
        first_hour = db.execute("SELECT min(start_time) FROM measurements WHERE uid >= ?",
                                (f"s{0:011d}",)).fetchone()[0][:13] + ":00:00"
        end_hour = db.execute("SELECT strftime('%Y-%m-%d %H:00:00', ?, ?)",
                              (first_hour, f"+{hours_per_copy} hours")).fetchone()[0]
        while have < upto:
            n = min(base, upto - have)
            hours = copy * hours_per_copy
            moved = f"strftime('%Y-%m-%d %H:%M:%S', {{c}}, '+{hours} hours')"
            select = [f"'s' || printf('%011d', CAST(substr(uid, 2) AS INTEGER) + {have})"
                      if c == "uid" else moved.format(c=c) if c in ("start_time", "received_at")
                      else c for c in _COLUMNS]
            db.execute("BEGIN")
            db.execute(f"INSERT INTO measurements ({','.join(_COLUMNS)}, body, archive) "
                       f"SELECT {','.join(select)}, body, archive FROM measurements "
                       f"WHERE uid >= ? AND uid < ? ORDER BY uid",
                       (f"s{0:011d}", f"s{n:011d}"))
            if n == base:
                db.execute(
                    f"INSERT INTO rollups_hourly ({_ROLLUP_KEY}, count) "
                    f"SELECT {moved.format(c='period')}, {_ROLLUP_KEY.split(',', 1)[1]}, count "
                    f"FROM rollups_hourly WHERE period >= ? AND period < ? "
                    f"ON CONFLICT ({_ROLLUP_KEY}) DO UPDATE SET count = count + excluded.count",
                    (first_hour, end_hour))
            else:
                db.execute(
                    f"INSERT INTO rollups_hourly ({_ROLLUP_KEY}, count) "
                    f"SELECT substr(start_time, 1, 13) || ':00:00', probe_cc, probe_asn, "
                    f"test_name, coalesce(input, ''), coalesce(domain, ''), "
                    f"coalesce(verdict, ''), count(*) FROM measurements WHERE uid >= ? "
                    f"AND uid < ? GROUP BY 1, 2, 3, 4, 5, 6, 7 "
                    f"ON CONFLICT ({_ROLLUP_KEY}) DO UPDATE SET count = count + excluded.count",
                    (f"s{have:011d}", f"s{have + n:011d}"))
            db.execute("INSERT INTO measurement_totals (shard, count) VALUES (0, ?) "
                       "ON CONFLICT (shard) DO UPDATE SET count = count + excluded.count", (n,))
            db.execute("COMMIT")
            have += n
            copy += 1
        db.execute("BEGIN")
        db.execute("DELETE FROM rollups_daily")
        db.execute(f"INSERT INTO rollups_daily ({_ROLLUP_KEY}, count) "
                   f"SELECT substr(period, 1, 10) || ' 00:00:00', "
                   f"{_ROLLUP_KEY.split(',', 1)[1]}, sum(count) FROM rollups_hourly "
                   f"GROUP BY 1, 2, 3, 4, 5, 6, 7")
        for statement in coarser_rollups("substr(period, 1, 7) || '-01 00:00:00'"):
            db.execute(statement)
        db.execute(
            "INSERT INTO target_state (probe_cc, probe_asn, test_name, target, uid, "
            "start_time, verdict, layer, mechanism) SELECT probe_cc, probe_asn, test_name, "
            "coalesce(input, ''), uid, start_time, verdict, layer, mechanism "
            "FROM measurements WHERE uid >= ? AND uid < ? ORDER BY start_time, uid "
            "ON CONFLICT (probe_cc, probe_asn, test_name, target) DO UPDATE SET "
            "uid = excluded.uid, start_time = excluded.start_time, "
            "verdict = excluded.verdict, layer = excluded.layer, "
            "mechanism = excluded.mechanism "
            "WHERE (excluded.start_time, excluded.uid) > "
            "(target_state.start_time, target_state.uid)",
            (f"s{max(0, have - 2 * base):011d}", f"s{have:011d}"))
        db.execute("COMMIT")
        db.execute("PRAGMA journal_mode=WAL")
    finally:
        db.close()
    return have


async def clone_postgres(store: Any, base: int, upto: int, have: int,
                         start: datetime, chunk: int = 1000) -> int:
    """The same on PostgreSQL, through the store's pool (partitions made as the store makes
    them), in transactions of ``chunk`` rows: detection's feed there hands out whole
    transactions, and no upload writes more than a batch in one.

    Each chunk is found by its uids *and* the hours the fleet gives them (row i is in hour
    i // ROWS_PER_HOUR): the partitioned tables' keys begin with ``start_time``, so a range of
    uids alone would scan every partition, for every chunk (hours at 10M rows)."""
    copy = have // base
    hours_per_copy = shift_hours(base)
    naive = start.replace(tzinfo=None)  # the columns are timestamps without a zone
    began, first = time.perf_counter(), have
    while have < upto:
        n = min(base, upto - have)
        hours = copy * hours_per_copy
        span = timedelta(hours=hours)
        moments = {start + span + timedelta(hours=h) for h in range(0, hours_per_copy + 24, 24)}
        await store._ensure_partitions("measurements", moments)
        await store._ensure_partitions("measurement_bodies", moments)
        shifted = f"interval '{hours} hours'"
        uid = f"'s' || lpad((substr(uid, 2)::bigint + {have})::text, 11, '0')"
        select = [uid if c == "uid" else f"{c} + {shifted}"
                  if c in ("start_time", "received_at") else c for c in _COLUMNS]
        for low in range(0, n, chunk):
            high = min(n, low + chunk)
            since = naive + timedelta(hours=low // ROWS_PER_HOUR)
            until = naive + timedelta(hours=(high - 1) // ROWS_PER_HOUR + 1)
            await store._write(partial(
                _copy_postgres, uid=uid, select=select, shifted=shifted,
                source=(f"s{low:011d}", f"s{high:011d}", since, until),
                copied=(f"s{have + low:011d}", f"s{have + high:011d}", since + span,
                        until + span),
                n=high - low))
        have += n
        copy += 1
        rate = (have - first) / (time.perf_counter() - began)
        print(f"clone: {have:,} rows, {rate:,.0f} rows/s, {(upto - have) / rate / 60:.0f} "
              f"min to go", file=sys.stderr, flush=True)
    await store._write(_refill_postgres)
    return have


async def check_postgres(dsn: str) -> dict[str, int]:
    """Compare what the clone kept with a recount of the stored rows: the count, the hourly
    and daily rollups, ``target_state`` (each entry the latest row of its target, one per
    target), a body for every row. Raises when anything differs; returns the counts.

    On a connection of its own: at 10M rows a recount takes minutes, longer than the store's
    pool lets a statement run."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        # One snapshot for every count.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.execute("SET work_mem = '256MB'")
            counts = {table: int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
                      for table in ("measurement_uids", "measurements", "measurement_bodies",
                                    "target_state")}
            counts["measurement_totals"] = int(await conn.fetchval(
                "SELECT coalesce(sum(count), 0) FROM measurement_totals"))
            rows = counts["measurement_uids"]
            if any(counts[t] != rows for t in ("measurements", "measurement_bodies",
                                                "measurement_totals")):
                raise RuntimeError(f"clone: counts differ: {counts}")
            for table, period in (("rollups_hourly", "date_trunc('hour', start_time)"),
                                  ("rollups_daily", "date_trunc('day', start_time)")):
                recount = sql.rollup_fill(table, period).split(" SELECT ", 1)[1]
                recount = "SELECT " + recount
                differ = int(await conn.fetchval(
                    f"SELECT count(*) FROM ((SELECT {_ROLLUP_KEY}, count FROM {table} "
                    f"EXCEPT ALL {recount}) UNION ALL ({recount} EXCEPT ALL "
                    f"SELECT {_ROLLUP_KEY}, count FROM {table})) AS d"))
                counts[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
                if differ:
                    raise RuntimeError(f"clone: {differ} rows of {table} differ from a recount")
            targets = int(await conn.fetchval(
                "SELECT count(*) FROM (SELECT DISTINCT probe_cc, probe_asn, test_name, input "
                "FROM rollups_daily) AS t"))
            stale = int(await conn.fetchval(
                "SELECT count(*) FROM target_state t LEFT JOIN measurements m "
                "ON m.start_time = t.start_time AND m.uid = t.uid "
                "WHERE m.uid IS NULL OR m.verdict IS DISTINCT FROM t.verdict "
                "OR m.layer IS DISTINCT FROM t.layer OR m.mechanism IS DISTINCT FROM t.mechanism "
                "OR EXISTS (SELECT 1 FROM measurements n WHERE n.probe_cc = t.probe_cc "
                "AND n.probe_asn = t.probe_asn AND n.test_name = t.test_name "
                "AND (n.input = t.target OR (t.target = '' AND n.input IS NULL)) "
                "AND (n.start_time, n.uid) > (t.start_time, t.uid))"))
            if targets != counts["target_state"] or stale:
                raise RuntimeError(f"clone: target_state has {counts['target_state']} rows for "
                                   f"{targets} targets, {stale} not the latest row of theirs")
            return counts
    finally:
        await conn.close()


def coarser_rollups(month: str) -> list[str]:
    """The monthly and coarse rollups made again from the hourly and daily ones, as the
    migration fills them (``month``: the dialect's month of ``period``)."""
    return [*(f"DELETE FROM {t}" for t in ("rollups_monthly", "rollups_hourly_coarse",
                                            "rollups_daily_coarse")),
            sql.rollup_refill("rollups_monthly", "rollups_daily", month),
            sql.rollup_refill("rollups_hourly_coarse", "rollups_hourly", "period"),
            sql.rollup_refill("rollups_daily_coarse", "rollups_daily", "period")]


async def _refill_postgres(conn: Any) -> None:
    for statement in coarser_rollups("date_trunc('month', period)"):
        await conn.execute(statement)


async def _copy_postgres(conn: Any, *, uid: str, select: list[str], shifted: str,
                         source: tuple[str, str, datetime, datetime],
                         copied: tuple[str, str, datetime, datetime], n: int) -> None:
    """Copy the rows of ``source`` (first uid, end uid, first hour, end hour) to ``copied``.
    A bench store, not a deployment's: its commits need not wait for the disk."""
    await conn.execute("SET LOCAL synchronous_commit = off")
    first, last = source[:2]
    rows = "uid >= $1 AND uid < $2 AND start_time >= $3 AND start_time < $4"
    await conn.execute(
        f"INSERT INTO measurement_uids (uid, start_time) SELECT {uid}, "
        f"start_time + {shifted} FROM measurement_uids WHERE uid >= $1 AND uid < $2",
        first, last)
    await conn.execute(
        f"INSERT INTO measurements ({','.join(_COLUMNS)}, archive) "
        f"SELECT {','.join(select)}, archive FROM measurements WHERE {rows}", *source)
    await conn.execute(
        f"INSERT INTO measurement_bodies (start_time, uid, body, body_z) "
        f"SELECT start_time + {shifted}, {uid}, body, body_z FROM measurement_bodies "
        f"WHERE {rows}", *source)
    for table, period in (("rollups_hourly", "date_trunc('hour', start_time)"),
                          ("rollups_daily", "date_trunc('day', start_time)")):
        await conn.execute(
            f"INSERT INTO {table} ({_ROLLUP_KEY}, count) SELECT {period}, probe_cc, "
            f"probe_asn, test_name, coalesce(input, ''), coalesce(domain, ''), "
            f"coalesce(verdict, ''), count(*) FROM measurements WHERE {rows} "
            f"GROUP BY 1, 2, 3, 4, 5, 6, 7 "
            f"ON CONFLICT ({_ROLLUP_KEY}) DO UPDATE SET "
            f"count = {table}.count + excluded.count", *copied)
    await conn.execute(
        "INSERT INTO target_state (probe_cc, probe_asn, test_name, target, uid, "
        "start_time, verdict, layer, mechanism) SELECT DISTINCT ON (probe_cc, "
        "probe_asn, test_name, coalesce(input, '')) probe_cc, probe_asn, test_name, "
        "coalesce(input, ''), uid, start_time, verdict, layer, mechanism "
        f"FROM measurements WHERE {rows} "
        "ORDER BY probe_cc, probe_asn, test_name, coalesce(input, ''), "
        "start_time DESC, uid DESC "
        "ON CONFLICT (probe_cc, probe_asn, test_name, target) DO UPDATE SET "
        "uid = excluded.uid, start_time = excluded.start_time, "
        "verdict = excluded.verdict, layer = excluded.layer, "
        "mechanism = excluded.mechanism "
        "WHERE (excluded.start_time, excluded.uid) > "
        "(target_state.start_time, target_state.uid)", *copied)
    await conn.execute("INSERT INTO measurement_totals (shard, count) VALUES (0, $1) "
                       "ON CONFLICT (shard) DO UPDATE SET "
                       "count = measurement_totals.count + excluded.count", n)
