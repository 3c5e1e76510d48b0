"""What only the SQLite store has: pragmas, file migrations, group commit, lock handling."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from collector.store import Filters, StoreUnavailable
from collector.store import sqlite as sqlite_module
from collector.store.sqlite import MIGRATIONS, SCHEMA, SQLiteStore
from tests.collector.factory import stored


async def test_wal_and_full_sync_make_commits_durable(tmp_path: Path) -> None:
    store = await SQLiteStore.open(str(tmp_path / "k.sqlite"))
    try:
        async with store.write.execute("PRAGMA journal_mode") as cursor:
            assert (await cursor.fetchone())[0] == "wal"  # type: ignore[index]
        async with store.write.execute("PRAGMA synchronous") as cursor:
            assert (await cursor.fetchone())[0] == 2  # type: ignore[index]  # 2 = FULL
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await store.read.execute("DELETE FROM measurements")
    finally:
        await store.close()


async def test_a_version_1_file_is_migrated_with_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA)
        db.execute("PRAGMA user_version=1")
        db.execute(
            "INSERT INTO measurements VALUES ('u1', 'p1', 'web_connectivity', "
            "'https://Kloop.kg/x', 'KG', 'AS8449', '2024-05-01 10:00:00', "
            "'2024-05-01 10:01:00', 'blocked', 'dns', 'nxdomain', '{}')")
        db.execute(
            "INSERT INTO measurements VALUES ('u0', 'p1', 'web_connectivity', "
            "'https://Kloop.kg/x', 'KG', 'AS8449', '2024-04-01 10:00:00', "
            "'2024-04-01 10:01:00', 'ok', NULL, NULL, '{}')")
        db.execute("INSERT INTO heartbeats VALUES ('p1', '2024-05-01 10:00:00', "
                   "'2024-05-01 10:00:01', '{}')")
    db.close()
    store = await SQLiteStore.open(str(path))
    try:
        assert await store.schema_version() == len(MIGRATIONS) == 8
        rows = await store.measurements(Filters(domain="kloop.kg"))
        assert [(r["uid"], r["location_source"], r["location_mismatch"]) for r in rows] == [
            ("u1", "declared", False), ("u0", "declared", False)]
        [latest] = await store.latest_by_target()
        assert (latest["verdict"], latest["mechanism"]) == ("blocked", "nxdomain")
        [probe] = await store.probes()
        assert (probe["probe_id"], probe["last_seen"]) == ("p1", "2024-05-01 10:00:01")
    finally:
        await store.close()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="newer than this collector"):
        await SQLiteStore.open(str(path))


async def test_a_locked_database_is_unavailable_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "k.sqlite"
    store = await SQLiteStore.open(str(path), busy_timeout_ms=50)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.add_measurements([stored(uid="blocked-1")])
        other.execute("ROLLBACK")
        assert await store.add_measurements([stored(uid="later-1")]) == ["later-1"]
        assert await store.count_measurements() == 1
    finally:
        other.close()
        await store.close()


async def test_a_failing_write_does_not_fail_the_others_in_its_group(tmp_path: Path) -> None:
    store = await SQLiteStore.open(str(tmp_path / "k.sqlite"))
    try:
        good = [[stored()] for _ in range(5)]
        bad = [stored(probe_id=None)]  # NOT NULL violation inside the shared transaction
        results = await asyncio.gather(*(store.add_measurements(rows) for rows in
                                         [*good[:2], bad, *good[2:]]), return_exceptions=True)
        assert isinstance(results[2], sqlite3.IntegrityError)
        assert [r for i, r in enumerate(results) if i != 2] == [[g[0].uid] for g in good]
        assert await store.count_measurements() == 5
    finally:
        await store.close()


async def test_memory_databases_are_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="needs a file"):
        await SQLiteStore.open(":memory:")


async def test_a_new_migration_is_applied_once_by_concurrent_openers(tmp_path: Path) -> None:
    import aiosqlite

    from collector.store.sqlite import migrate

    path = str(tmp_path / "k.sqlite")
    await (await SQLiteStore.open(path)).close()
    future = (*MIGRATIONS, ("CREATE TABLE future (id INTEGER PRIMARY KEY, kind TEXT)",
                            "INSERT INTO future (kind) VALUES ('block')"))
    connections = [await aiosqlite.connect(path, isolation_level=None) for _ in range(3)]
    try:
        for db in connections:
            await db.execute("PRAGMA busy_timeout=5000")
        found = await asyncio.gather(*(migrate(db, future) for db in connections))
        now = len(MIGRATIONS)
        assert sorted(found) == [now, now + 1, now + 1]
        async with connections[0].execute("SELECT count(*) FROM future") as cursor:
            assert (await cursor.fetchone())[0] == 1  # type: ignore[index]
    finally:
        for db in connections:
            await db.close()


async def test_a_group_of_writes_of_both_kinds_commits_each_and_fails_only_its_own(
        tmp_path: Path) -> None:
    # Batches of measurements run on the connection's thread (ThreadJob); tokens through
    # aiosqlite's statements; a group holding both still gives each job its savepoint.
    store = await SQLiteStore.open(str(tmp_path / "k.sqlite"))
    try:
        results = await asyncio.gather(
            store.add_measurements([stored(uid="mixed-1")]),
            store.add_token("p-mixed", "a" * 64, "2024-05-01 00:00:00"),
            store.add_measurements([stored(uid="mixed-2", probe_id=None)]),
            store.add_measurements([stored(uid="mixed-3")]),
            return_exceptions=True)
        assert results[0] == ["mixed-1"] and results[3] == ["mixed-3"]
        assert isinstance(results[2], sqlite3.IntegrityError)
        assert await store.probe_for_token("a" * 64) == ("p-mixed", False)
        assert await store.count_measurements() == 2
    finally:
        await store.close()


def _rows_in_file_alone(path: Path) -> int:
    """Rows the database file holds without its WAL: a copy of the file alone."""
    copy = path.with_name("alone.sqlite")
    copy.write_bytes(path.read_bytes())
    with sqlite3.connect(copy) as db:
        count = int(db.execute("SELECT count(*) FROM measurements").fetchone()[0])
    db.close()
    return count


async def test_committed_pages_reach_the_database_file_beside_the_writer(
        tmp_path: Path) -> None:
    path = tmp_path / "k.sqlite"
    store = await SQLiteStore.open(str(path))
    try:
        async with store.write.execute("PRAGMA wal_autocheckpoint") as cursor:
            row = await cursor.fetchone()
        assert row is not None and row[0] == sqlite_module.WRITER_CHECKPOINT_PAGES
        for batch in range(10):
            await store.add_measurements([stored(uid=f"ck-{batch}-{i}") for i in range(50)])
        # Far below the writer's own threshold: only the checkpointer copies these pages.
        assert Path(f"{path}-wal").stat().st_size < sqlite_module.WRITER_CHECKPOINT_PAGES * 4096
        for _ in range(100):
            await asyncio.sleep(sqlite_module.CHECKPOINT_INTERVAL)
            if _rows_in_file_alone(path) == 500:
                break
        assert _rows_in_file_alone(path) == 500
        task = store.checkpointer.task if store.checkpointer else None
    finally:
        await store.close()
    assert task is not None and task.done()


async def test_rows_written_many_to_a_statement_in_chunks_are_all_stored(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A batch's rows go to SQLite many to a statement, cut where the parameters would pass
    # the limit: here a limit that cuts a batch of 30 into many statements.
    monkeypatch.setattr(sqlite_module, "_MAX_PARAMETERS", 40)
    store = await SQLiteStore.open(str(tmp_path / "k.sqlite"))
    try:
        rows = [stored(uid=f"chunk-{i:03d}", input=f"https://site{i % 7}.kg/")
                for i in range(30)]
        assert await store.add_measurements(rows) == [r.uid for r in rows]
        retry = [*rows[:10], *(stored(uid=f"chunk-new-{i}") for i in range(5))]
        assert await store.add_measurements(retry) == [r.uid for r in retry[10:]]
        assert await store.count_measurements() == 35
        stored_uids = {r["uid"] for r in await store.measurements(Filters(), limit=100)}
        assert stored_uids == {r.uid for r in rows} | {r.uid for r in retry}
    finally:
        await store.close()


async def test_rows_are_cut_at_the_librarys_own_parameter_limit(tmp_path: Path) -> None:
    # An SQLite build with the old default of 999 parameters a statement: a batch of 100
    # rows of 17 columns is 1,700 parameters, more than one statement may bind.
    store = await SQLiteStore.open(str(tmp_path / "k.sqlite"))
    try:
        def lower(conn: sqlite3.Connection) -> int:
            return conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)

        await sqlite_module.on_connection_thread(store.write, lower)
        rows = [stored(uid=f"limit-{i:03d}") for i in range(100)]
        assert await store.add_measurements(rows) == [r.uid for r in rows]
        assert await store.count_measurements() == 100
    finally:
        await store.close()
