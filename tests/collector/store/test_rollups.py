"""Rollups and the stored count, on both stores: exact under retries, late uploads and
upgrades, and the same answers as counting every measurement."""

from __future__ import annotations

import asyncio
import itertools
import random
import sqlite3
from collections import Counter
from dataclasses import replace
from typing import Any

import aiosqlite
import asyncpg

from collector.store import (
    AXES,
    MEASUREMENT_COLUMNS,
    VERDICTS,
    Axis,
    Filters,
    Store,
    StoredMeasurement,
    is_postgres,
    open_store,
    sql,
)
from collector.store import postgres as pg_store
from collector.store import sqlite as sqlite_store
from tests.collector.factory import stored


def corpus(count: int, seed: int = 7) -> list[StoredMeasurement]:
    """Rows spread over two days, two countries, three networks, inputs with and without a
    domain, two tests and every verdict including none, at minutes inside their hours."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        test = rng.choice(["web_connectivity", "web_connectivity", "telegram"])
        input_ = (None if test == "telegram"
                  else rng.choice(["https://kloop.kg/", "https://Vlast.kz/a", "https://x.org/"]))
        cc, asn = rng.choice([("KG", "AS8449"), ("KG", "AS12997"), ("KZ", "AS9198")])
        rows.append(stored(
            uid=f"u{seed}-{i:05d}",
            start_time=f"2024-05-0{rng.randint(1, 2)} {rng.randint(0, 23):02d}:"
                       f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
            test_name=test, input=input_, probe_cc=cc, probe_asn=asn,
            verdict=rng.choice([*VERDICTS, None])))
    return rows


def expected(rows: list[StoredMeasurement], filters: Filters,
             axes: tuple[Axis, ...]) -> list[dict[str, Any]]:
    """The aggregation computed in Python from the rows themselves."""
    def keep(r: StoredMeasurement) -> bool:
        return ((filters.since is None or r.start_time >= filters.since)
                and (filters.until is None or r.start_time < filters.until)
                and all(getattr(filters, f) in (None, v) for f, v in (
                    ("cc", r.probe_cc), ("asn", r.probe_asn), ("test_name", r.test_name),
                    ("input", r.input), ("domain", r.domain), ("verdict", r.verdict))))

    def axis(r: StoredMeasurement, name: str) -> str | None:
        return {"day": r.start_time[:10], "hour": r.start_time[:13] + ":00:00",
                "cc": r.probe_cc, "asn": r.probe_asn, "domain": r.domain, "input": r.input,
                "test_name": r.test_name, "verdict": r.verdict}[name]

    groups: dict[tuple[str | None, ...], Counter[str | None]] = {}
    for r in filter(keep, rows):
        groups.setdefault(tuple(axis(r, a) for a in axes), Counter())[r.verdict] += 1
    if not axes and not groups:
        groups[()] = Counter()

    def order(key: tuple[str | None, ...]) -> tuple[tuple[bool, str], ...]:
        return tuple((v is None, v or "") for v in key)

    return [{**dict(zip(axes, key, strict=True)),
             "measurement_count": sum(groups[key].values()),
             **{f"{v}_count": groups[key][v] for v in VERDICTS}}
            for key in sorted(groups, key=order)]


QUESTIONS: list[Filters] = [
    Filters(), Filters(cc="KG"), Filters(asn="AS9198", verdict="blocked"),
    Filters(domain="kloop.kg"), Filters(test_name="telegram"),
    Filters(input="https://kloop.kg/", cc="KG"),
    Filters(since="2024-05-02 00:00:00"),  # whole days: the daily rollups
    Filters(since="2024-05-01 06:00:00", until="2024-05-02 13:00:00"),  # hours: hourly
    # Bounds inside an hour need each row's time: answered from the measurements.
    Filters(since="2024-05-01 06:30:00", until="2024-05-02 13:15:00"),
]


async def check_answers(store: Store, rows: list[StoredMeasurement]) -> None:
    pairs = [(), *((a,) for a in AXES), *itertools.combinations(AXES, 2)]
    for filters in QUESTIONS:
        for axes in pairs:
            got = await store.aggregate(filters, axes, 10_000)  # type: ignore[arg-type]
            assert got == expected(rows, filters, axes), (filters, axes)
    assert await store.count_measurements() == len(rows)


async def rollup_rows(database: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every rollup table as stored, periods as text."""
    out = {}
    for rollup in sql.ROLLUPS:
        table = rollup.table
        query = (f"SELECT {', '.join(rollup.key)}, count FROM {table} "
                 f"ORDER BY {', '.join(str(i + 1) for i in range(len(rollup.key)))}")
        if is_postgres(database):
            conn = await asyncpg.connect(database)
            try:
                out[table] = [(r[0].strftime("%Y-%m-%d %H:%M:%S"), *r[1:])
                              for r in await conn.fetch(query)]
            finally:
                await conn.close()
        else:
            async with aiosqlite.connect(database) as db, db.execute(query) as cursor:
                out[table] = [tuple(r) for r in await cursor.fetchall()]
    return out


def rollups_of(rows: list[StoredMeasurement]) -> dict[str, list[tuple[Any, ...]]]:
    """Each rollup table counted from the rows (periods spelled out here, not by the store)."""
    periods = {"hour": lambda t: t[:13] + ":00:00", "day": lambda t: t[:10] + " 00:00:00",
               "month": lambda t: t[:7] + "-01 00:00:00"}
    out = {}
    for rollup in sql.ROLLUPS:
        counts = Counter(
            (periods[rollup.period](r.start_time), r.probe_cc, r.probe_asn, r.test_name,
             *((r.input or "", r.domain or "") if rollup.fine else ()), r.verdict or "")
            for r in rows)
        out[rollup.table] = [(*key, n) for key, n in sorted(counts.items())]
    return out


async def test_aggregations_answer_as_counting_every_measurement(store: Store) -> None:
    rows = corpus(400)
    for start in range(0, len(rows), 37):
        await store.add_measurements(rows[start:start + 37])
    await check_answers(store, rows)


async def test_retries_and_late_uploads_count_once(database: str) -> None:
    store = await open_store(database)
    try:
        rows = corpus(120, seed=3)
        assert len(await store.add_measurements(rows[:80])) == 80
        # A retried batch overlapping what was stored, concurrent duplicates, and late
        # measurements of hours already counted.
        await store.add_measurements(rows[40:100])
        await store.add_measurements(rows[:10] + rows[100:] + rows[100:110])
        assert await rollup_rows(database) == rollups_of(rows)
        assert await store.count_measurements() == 120
        await check_answers(store, rows)
        # A re-analysis moves each row between verdicts in every table; a move to the same
        # verdict, and one back, change nothing.
        for i in (0, 1, 2, 50, 51):
            new = "blocked" if rows[i].verdict != "blocked" else None
            assert await store.replace_analysis(rows[i].uid, rows[i].body, new, None, None)
            rows[i] = replace(rows[i], verdict=new)
        assert await store.replace_analysis(rows[3].uid, rows[3].body, rows[3].verdict,
                                            None, None)
        assert await rollup_rows(database) == rollups_of(rows)
        await check_answers(store, rows)
    finally:
        await store.close()


async def test_concurrent_batches_sharing_keys_count_each_row_once(database: str) -> None:
    """Writers whose batches add to the same rollup and target rows at once (PostgreSQL
    upserts a batch's keys in one statement per table, in key order): every count exact,
    no batch refused, whatever order the batches hold their rows in."""
    store = await open_store(database)
    try:
        rows = corpus(480, seed=11)  # 2 days x 24 hours x 3 networks x 2 tests: keys repeat
        rng = random.Random(11)
        batches = [rows[i:i + 30] for i in range(0, 480, 30)]
        for batch in batches:
            rng.shuffle(batch)
        results = await asyncio.gather(*(store.add_measurements(b) for b in batches))
        assert sum(len(r) for r in results) == 480
        assert await rollup_rows(database) == rollups_of(rows)
        await check_answers(store, rows)
    finally:
        await store.close()


def _old_values(row: StoredMeasurement, time: Any) -> tuple[Any, ...]:
    """A row as the previous release wrote it: the body as text."""
    values = {c: getattr(row, c) for c in MEASUREMENT_COLUMNS}
    values["start_time"], values["received_at"] = time(row.start_time), time(row.received_at)
    return tuple(values[c] for c in MEASUREMENT_COLUMNS)


async def _write_previous_schema(database: str, rows: list[StoredMeasurement]) -> None:
    """A store as the previous release left it: its schema, its rows, no rollups."""
    if is_postgres(database):
        conn = await asyncpg.connect(database)
        try:
            await pg_store.migrate(conn, pg_store.MIGRATIONS[:2])
            await conn.execute(
                "CREATE TABLE measurements_p202405 PARTITION OF measurements "
                "FOR VALUES FROM ('2024-05-01') TO ('2024-06-01')")
            await conn.executemany(
                "INSERT INTO measurement_uids (uid, start_time) VALUES ($1, $2)",
                [(r.uid, pg_store._ts(r.start_time)) for r in rows])
            await conn.copy_records_to_table(
                "measurements", records=[_old_values(r, pg_store._ts) for r in rows],
                columns=list(MEASUREMENT_COLUMNS))
        finally:
            await conn.close()
        return
    async with aiosqlite.connect(database, isolation_level=None) as db:
        await sqlite_store.migrate(db, sqlite_store.MIGRATIONS[:3])
        await db.executemany(
            f"INSERT INTO measurements ({','.join(MEASUREMENT_COLUMNS)}) "
            f"VALUES ({','.join('?' * len(MEASUREMENT_COLUMNS))})",
            [_old_values(r, str) for r in rows])


async def test_a_store_of_the_previous_schema_upgrades_with_its_counts(database: str) -> None:
    old, new = corpus(150, seed=11), corpus(60, seed=12)
    await _write_previous_schema(database, old)
    store = await open_store(database)
    try:
        await check_answers(store, old)
        # Their bodies were stored as text: read back as they were, beside compressed ones.
        assert await store.measurement_bodies([r.uid for r in old]) == {
            r.uid: r.body for r in old}
        # Retries of old rows add nothing; new ones add to the counts filled at upgrade.
        assert await store.add_measurements(old[:20] + new) == [r.uid for r in new]
        assert await rollup_rows(database) == rollups_of(old + new)
        await check_answers(store, old + new)
        assert await store.measurement_bodies([r.uid for r in old + new]) == {
            r.uid: r.body for r in old + new}
        assert {r.body for r in await store.measurement_feed(0, 10_000)} == {
            r.body for r in old + new}
    finally:
        await store.close()


def test_sqlite_schema_of_the_previous_release_has_no_rollups() -> None:
    """The upgrade test starts from a schema without them (else it would test nothing)."""
    db = sqlite3.connect(":memory:")
    try:
        for steps in sqlite_store.MIGRATIONS[:3]:
            for step in steps:
                if isinstance(step, str):
                    db.execute(step)
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    finally:
        db.close()
    assert "measurements" in tables and not {"rollups_hourly", "rollups_daily"} & tables


def test_each_question_reads_the_coarsest_tables_that_answer_it() -> None:
    day, hour, inside = "2024-05-02 00:00:00", "2024-05-02 13:00:00", "2024-05-02 13:15:00"

    def plan(filters: Filters, axes: tuple[Axis, ...]) -> list[tuple[str, Any, Any]] | None:
        found = sql.rollup_plan(filters, axes)
        return None if found is None else [(r.table, s, u) for r, s, u in found]

    assert plan(Filters(), ("input", "cc")) == [("rollups_monthly", None, None)]
    assert plan(Filters(), ("asn",)) == [("rollups_daily_coarse", None, None)]
    assert plan(Filters(domain="kloop.kg"), ()) == [("rollups_monthly", None, None)]
    assert plan(Filters(since=day, until=day), ("day",)) == [
        ("rollups_hourly_coarse", day, day)]  # empty
    assert plan(Filters(since=day), ("hour",)) == [("rollups_hourly_coarse", day, None)]
    assert plan(Filters(until=hour), ("asn",)) == [
        ("rollups_daily_coarse", None, day), ("rollups_hourly_coarse", day, hour)]
    # Whole months, then whole days, then the hours at each edge.
    assert plan(Filters(since="2024-04-29 22:00:00", until="2024-07-02 03:00:00"),
                ("input",)) == [
        ("rollups_monthly", "2024-05-01 00:00:00", "2024-07-01 00:00:00"),
        ("rollups_daily", "2024-04-30 00:00:00", "2024-05-01 00:00:00"),
        ("rollups_hourly", "2024-04-29 22:00:00", "2024-04-30 00:00:00"),
        ("rollups_daily", "2024-07-01 00:00:00", "2024-07-02 00:00:00"),
        ("rollups_hourly", "2024-07-02 00:00:00", "2024-07-02 03:00:00")]
    assert plan(Filters(since="2024-12-31 00:00:00"), ("domain",)) == [
        ("rollups_monthly", "2025-01-01 00:00:00", None),
        ("rollups_daily", "2024-12-31 00:00:00", "2025-01-01 00:00:00")]
    assert plan(Filters(since=hour, until=day), ("day",)) == [("rollups_hourly_coarse", hour, day)]
    assert plan(Filters(since=inside), ()) is None
    assert plan(Filters(since=day, until=inside), ("day",)) is None


def corpus_of_months(count: int, seed: int = 5) -> list[StoredMeasurement]:
    """Rows over the last days of April, all of May and the first days of June, so a range
    holds whole months, whole days and edge hours."""
    rows = corpus(count, seed=seed)
    rng = random.Random(seed)
    days = ["2024-04-29", "2024-04-30", *(f"2024-05-{d:02d}" for d in range(1, 32)),
            "2024-06-01", "2024-06-02"]
    return [replace(r, start_time=f"{rng.choice(days)}{r.start_time[10:]}") for r in rows]


MONTH_QUESTIONS: list[Filters] = [
    Filters(),
    Filters(since="2024-04-29 13:00:00", until="2024-06-02 05:00:00"),
    Filters(since="2024-04-30 00:00:00", until="2024-06-01 00:00:00", cc="KG"),
    Filters(since="2024-05-01 00:00:00", until="2024-06-01 00:00:00"),
    Filters(since="2024-05-03 07:00:00", until="2024-05-20 00:00:00", verdict="blocked"),
    Filters(since="2024-05-09 23:00:00", until="2024-05-10 01:00:00"),
    Filters(since="2024-05-31 18:00:00", domain="kloop.kg"),
    Filters(until="2024-05-02 09:00:00", test_name="web_connectivity"),
    Filters(since="2024-06-01 00:00:00", until="2024-05-01 00:00:00"),  # empty
]


async def test_ranges_of_months_days_and_hours_answer_as_counting(store: Store) -> None:
    """Every axis and pair of axes over ranges cut into months, days and edge hours."""
    rows = corpus_of_months(600)
    for start in range(0, len(rows), 53):
        await store.add_measurements(rows[start:start + 53])
    pairs = [(), *((a,) for a in AXES), *itertools.combinations(AXES, 2)]
    for filters in MONTH_QUESTIONS:
        assert sql.rollup_plan(filters, ("asn",)) is not None
        for axes in pairs:
            got = await store.aggregate(filters, axes, 10_000)  # type: ignore[arg-type]
            assert got == expected(rows, filters, axes), (filters, axes)
