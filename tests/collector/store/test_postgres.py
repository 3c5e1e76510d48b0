"""What only the PostgreSQL store has: monthly partitions (summary rows and bodies apart), the
uid table, unavailability."""

from __future__ import annotations

import json
import secrets
from typing import Any

import asyncpg
import pytest

from collector.store import Filters, StoreUnavailable
from collector.store.postgres import MIGRATIONS, PostgresStore
from collector.store.postgres_events import feed_query
from tests.collector.factory import stored
from tests.helpers.postgres import PostgresCluster

pytestmark = pytest.mark.postgres


async def test_rows_land_in_monthly_partitions(postgres_dsn: str) -> None:
    store = await PostgresStore.open(postgres_dsn)
    try:
        await store.add_measurements([
            stored(uid="dec", start_time="2023-12-31 23:59:59"),
            stored(uid="jan", start_time="2024-01-01 00:00:00"),
            stored(uid="jan2", start_time="2024-01-31 10:00:00"),
        ])
        await store.add_heartbeat("p1", "2024-02-01 00:00:00", "2024-02-01 00:00:01", "{}")
        conn = await asyncpg.connect(postgres_dsn)
        try:
            placed = await conn.fetch(
                "SELECT uid, tableoid::regclass::text AS part FROM measurements ORDER BY uid")
            parts = await conn.fetch(
                "SELECT inhparent::regclass::text AS parent, inhrelid::regclass::text AS part "
                "FROM pg_inherits JOIN pg_class c ON c.oid = inhrelid WHERE c.relkind = 'r' "
                "ORDER BY 2")
            uids = await conn.fetchval("SELECT count(*) FROM measurement_uids")
        finally:
            await conn.close()
        assert [(r["uid"], r["part"]) for r in placed] == [
            ("dec", "measurements_p202312"), ("jan", "measurements_p202401"),
            ("jan2", "measurements_p202401")]
        assert [(r["parent"], r["part"]) for r in parts] == [
            ("heartbeats", "heartbeats_p202402"),
            ("measurement_bodies", "measurement_bodies_p202312"),
            ("measurement_bodies", "measurement_bodies_p202401"),
            ("measurements", "measurements_p202312"), ("measurements", "measurements_p202401")]
        assert uids == 3
    finally:
        await store.close()


async def test_a_partition_created_by_another_collector_is_reused(postgres_dsn: str) -> None:
    first = await PostgresStore.open(postgres_dsn)
    second = await PostgresStore.open(postgres_dsn)
    try:
        assert await first.add_measurements([stored(uid="a", start_time="2024-03-01 00:00:00")])
        assert await second.add_measurements([stored(uid="b", start_time="2024-03-02 00:00:00")])
        assert await second.count_measurements() == 2
    finally:
        await first.close()
        await second.close()


async def test_an_unreachable_server_is_unavailable() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound but not listening: connections are refused
        with pytest.raises(StoreUnavailable, match="postgresql"):
            await PostgresStore.open(f"postgresql://postgres@127.0.0.1:{port}/x",
                                     connect_timeout=2)


async def test_a_database_that_refuses_us_is_unavailable_then_recovers(
        postgres_cluster: PostgresCluster) -> None:
    role, name = f"r_{secrets.token_hex(4)}", f"kuzot_{secrets.token_hex(6)}"
    postgres_cluster.execute(f"CREATE ROLE {role} LOGIN")
    postgres_cluster.execute(f"CREATE DATABASE {name} OWNER {role}")
    dsn = f"postgresql://{role}@127.0.0.1:{postgres_cluster.port}/{name}"
    store = await PostgresStore.open(dsn)
    try:
        assert await store.add_measurements([stored(uid="before")]) == ["before"]
        postgres_cluster.execute(f"ALTER ROLE {role} NOLOGIN")
        postgres_cluster.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
        with pytest.raises(StoreUnavailable):
            await store.add_measurements([stored(uid="during")])
        postgres_cluster.execute(f"ALTER ROLE {role} LOGIN")
        assert await store.add_measurements([stored(uid="during")]) == ["during"]
        assert {r["uid"] for r in await store.measurements(Filters())} == {"before", "during"}
    finally:
        await store.close()
        postgres_cluster.execute(f"DROP DATABASE {name} WITH (FORCE)")
        postgres_cluster.execute(f"DROP ROLE {role}")


async def test_a_newer_schema_is_refused(postgres_dsn: str) -> None:
    store = await PostgresStore.open(postgres_dsn)
    await store.close()
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await conn.execute("INSERT INTO kuzot_schema (version) VALUES ($1)", len(MIGRATIONS) + 1)
    finally:
        await conn.close()
    with pytest.raises(RuntimeError, match="newer than this collector"):
        await PostgresStore.open(postgres_dsn)


async def test_a_new_migration_is_applied_once_by_concurrent_openers(postgres_dsn: str) -> None:
    import asyncio

    from collector.store.postgres import migrate

    await (await PostgresStore.open(postgres_dsn)).close()
    future = (*MIGRATIONS, ('CREATE TABLE future (id bigserial PRIMARY KEY, kind text '
                            'COLLATE "C")', "INSERT INTO future (kind) VALUES ('block')"))
    connections = [await asyncpg.connect(postgres_dsn) for _ in range(3)]
    try:
        found = await asyncio.gather(*(migrate(conn, future) for conn in connections))
        now = len(MIGRATIONS)
        assert sorted(found) == [now, now + 1, now + 1]
        assert await connections[0].fetchval("SELECT count(*) FROM future") == 1
        assert await connections[0].fetchval("SELECT max(version) FROM kuzot_schema") == now + 1
    finally:
        for conn in connections:
            await conn.close()


async def test_dropped_connections_are_replaced_without_an_error(
        postgres_cluster: PostgresCluster, postgres_dsn: str) -> None:
    store = await PostgresStore.open(postgres_dsn, pool_size=2)
    try:
        assert await store.add_measurements([stored(uid="before")]) == ["before"]
        name = postgres_dsn.rsplit("/", 1)[1]
        for _ in range(3):  # as after a server restart: every pooled connection is gone
            postgres_cluster.execute(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                     f"WHERE datname = '{name}' AND pid <> pg_backend_pid()")
            assert await store.count_measurements() >= 1
        assert await store.add_measurements([stored(uid="after")]) == ["after"]
    finally:
        await store.close()


def _rows_handled(plan: dict[str, Any]) -> list[tuple[str, int]]:
    """Every node of an EXPLAIN ANALYZE plan with the rows it produced over all its loops."""
    here = [(f"{plan['Node Type']} {plan.get('Relation Name', '')}".strip(),
             int(plan["Actual Rows"] * plan["Actual Loops"]))]
    return here + [n for child in plan.get("Plans", []) for n in _rows_handled(child)]


async def test_a_feed_page_reads_about_a_page_whatever_the_backlog(postgres_dsn: str) -> None:
    """Detection catches up on a stored backlog a page at a time. A page that read every
    unread row (counting rows per transaction did) makes a catch-up of N rows cost N**2:
    hours at 10M. Behind the cursor and before it lie 20,000 rows here; a page of 200 must
    touch a few hundred, whether or not the rows carry their observation."""
    store = await PostgresStore.open(postgres_dsn)
    conn = await asyncpg.connect(postgres_dsn)
    try:
        for start in range(0, 20_000, 100):
            await store.add_measurements([
                stored(start_time=f"2024-05-01 {i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}",
                       observation="[1]" if i % 2 else None)
                for i in range(start, start + 100)])
        for _ in range(2_000):
            await store.add_heartbeat("p1", "2024-05-01 12:00:00", "2024-05-01 12:00:01", "{}")
        await conn.execute("ANALYZE")  # as autovacuum would: the planner knows the tables' size
        middle = await conn.fetchval(
            "SELECT xid::text FROM measurements ORDER BY xid OFFSET 10000 LIMIT 1")
        for table, cursor in (("measurements", "0"), ("measurements", middle),
                              ("heartbeats", "0")):
            plan = json.loads(await conn.fetchval(
                f"EXPLAIN (ANALYZE, FORMAT JSON) {feed_query(table)}", cursor, 200))[0]["Plan"]
            nodes = _rows_handled(plan)
            assert max(rows for _, rows in nodes) <= 3 * 200, (table, cursor, nodes)
        # The cursor is the 101st batch's transaction: the page starts with the 102nd batch
        # and ends with the whole batch holding its 250th row.
        page = await store.measurement_feed(int(middle), 250)
        assert len(page) == 300
        assert [r.observation is None for r in page[:4]] == [True, False, True, False]
    finally:
        await conn.close()
        await store.close()


async def test_the_store_never_compiles_its_queries(postgres_dsn: str) -> None:
    """PostgreSQL compiles a query with LLVM when its estimated cost passes ``jit_above_cost``;
    a feed page's estimate is high at any size (where its transactions end is only known at
    run time), and at 10M rows each page spent 540 ms compiling for about 20 ms of work. Here every
    query of this database passes the threshold: a plain session compiles the feed's query,
    the store's sessions do not."""
    name = f"jit_{secrets.token_hex(4)}"
    async with asyncpg.create_pool(postgres_dsn, min_size=1, max_size=1) as admin:
        await admin.execute(f"CREATE DATABASE {name}")
        await admin.execute(f"ALTER DATABASE {name} SET jit_above_cost = 0")
    dsn = postgres_dsn.rsplit("/", 1)[0] + "/" + name
    store = await PostgresStore.open(dsn)
    plain = await asyncpg.connect(dsn)
    try:
        await store.add_measurements([stored(start_time="2024-05-01 12:00:00")])
        explain = f"EXPLAIN (ANALYZE, FORMAT JSON) {feed_query('measurements')}"
        assert await plain.fetchval("SELECT pg_jit_available()"), "no JIT in this server"
        assert "JIT" in json.loads(await plain.fetchval(explain, "0", 100))[0]
        async with store.pool.acquire() as conn:
            assert "JIT" not in json.loads(await conn.fetchval(explain, "0", 100))[0]
        assert len(await store.measurement_feed(0, 100)) == 1
    finally:
        await plain.close()
        await store.close()
