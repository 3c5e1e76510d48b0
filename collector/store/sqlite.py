"""SQLite store: the embedded default. WAL journal, group commit, synchronous=FULL.

``synchronous=FULL`` in WAL mode makes each commit durable across power loss, which the
ingest contract needs (200 only after the batch is durable). Every write goes through one
writer task that commits whatever requests are waiting in a single transaction (group commit,
each request in its own savepoint), so many small concurrent uploads share one fsync. Reads use
a second connection and see only committed data. Parameterised SQL only.

The schema is versioned with ``PRAGMA user_version``; ``MIGRATIONS[n - 1]`` brings a database
from version n - 1 to n inside one ``BEGIN IMMEDIATE`` transaction, so two processes opening the
same file at once migrate it once.
"""

from __future__ import annotations

import asyncio
import operator
import re
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

from collector.store import sql
from collector.store.archive import ArchiveCandidate, read_archived
from collector.store.archive_targets import ArchiveTarget
from collector.store.body import pack, unpack
from collector.store.coming import CompanyWait, WritesComing
from collector.store.interface import (
    MEASUREMENT_COLUMNS,
    Axis,
    Filters,
    StoredMeasurement,
    StoreUnavailable,
    domain_of,
    target_key,
)
from collector.store.sqlite_events import MIGRATION as EVENTS_MIGRATION
from collector.store.sqlite_events import SQLiteEventsMixin

T = TypeVar("T")
WRITER_CACHE_KIB = 16 * 1024
Step = str | Callable[[aiosqlite.Connection], Awaitable[None]]

# Version 1: the walking skeleton's schema, kept verbatim so old files migrate.
SCHEMA = """
CREATE TABLE IF NOT EXISTS measurements (
    uid TEXT PRIMARY KEY,
    probe_id TEXT NOT NULL,
    test_name TEXT NOT NULL,
    input TEXT,
    probe_cc TEXT NOT NULL,
    probe_asn TEXT NOT NULL,
    start_time TEXT NOT NULL,
    received_at TEXT NOT NULL,
    verdict TEXT,
    layer TEXT,
    mechanism TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS measurements_time ON measurements (start_time);
CREATE INDEX IF NOT EXISTS measurements_target
    ON measurements (probe_cc, probe_asn, test_name, input, start_time);
CREATE TABLE IF NOT EXISTS heartbeats (
    probe_id TEXT NOT NULL,
    sent_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS heartbeats_probe ON heartbeats (probe_id, sent_at);
CREATE TABLE IF NOT EXISTS tokens (
    probe_id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
"""


async def _backfill_domains(db: aiosqlite.Connection) -> None:
    """Version 2 adds ``domain``; compute it for rows stored before (Python knows URLs)."""
    async with db.execute("SELECT uid, input FROM measurements WHERE input IS NOT NULL") as cur:
        rows = await cur.fetchall()
    await db.executemany("UPDATE measurements SET domain = ? WHERE uid = ?",
                         [(domain_of(r[1]), r[0]) for r in rows])


_TARGET_STATE_FILL = """
INSERT INTO target_state (probe_cc, probe_asn, test_name, target, uid, start_time, verdict,
                          layer, mechanism)
SELECT probe_cc, probe_asn, test_name, coalesce(input, ''), uid, start_time, verdict, layer,
       mechanism
FROM (SELECT *, row_number() OVER (PARTITION BY probe_cc, probe_asn, test_name,
                                   coalesce(input, '') ORDER BY start_time DESC, uid DESC) AS n
      FROM measurements)
WHERE n = 1
"""

MIGRATIONS: tuple[tuple[Step, ...], ...] = (
    tuple(s for s in SCHEMA.split(";") if s.strip()),
    (
        "ALTER TABLE measurements ADD COLUMN domain TEXT",
        "ALTER TABLE measurements ADD COLUMN location_source TEXT NOT NULL DEFAULT 'declared'",
        "ALTER TABLE measurements ADD COLUMN location_mismatch INTEGER NOT NULL DEFAULT 0",
        _backfill_domains,
        "DROP INDEX measurements_time",
        "CREATE INDEX measurements_page ON measurements (start_time, uid)",
        "CREATE INDEX measurements_domain ON measurements (domain, start_time)",
        """CREATE TABLE target_state (
            probe_cc TEXT NOT NULL, probe_asn TEXT NOT NULL, test_name TEXT NOT NULL,
            target TEXT NOT NULL, uid TEXT NOT NULL, start_time TEXT NOT NULL, verdict TEXT,
            layer TEXT, mechanism TEXT,
            PRIMARY KEY (probe_cc, probe_asn, test_name, target))""",
        _TARGET_STATE_FILL,
        "ALTER TABLE heartbeats ADD COLUMN queue_depth INTEGER",
        "ALTER TABLE heartbeats ADD COLUMN software_version TEXT",
        "DROP INDEX heartbeats_probe",
        "CREATE INDEX heartbeats_probe ON heartbeats (probe_id, received_at)",
        """CREATE TABLE probes (
            probe_id TEXT PRIMARY KEY, first_seen TEXT NOT NULL, last_seen TEXT NOT NULL,
            sent_at TEXT, queue_depth INTEGER, software_version TEXT)""",
        """INSERT INTO probes (probe_id, first_seen, last_seen, sent_at)
           SELECT probe_id, min(received_at), max(received_at), max(sent_at)
           FROM heartbeats GROUP BY probe_id""",
        """CREATE TABLE leases (
            name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at TEXT NOT NULL)""",
    ),
    EVENTS_MIGRATION,  # version 3: detection's events and state
    (  # version 4: rollups for aggregation and the stored count, filled from what is stored
        *(f"""CREATE TABLE {table} (
            period TEXT NOT NULL, probe_cc TEXT NOT NULL, probe_asn TEXT NOT NULL,
            test_name TEXT NOT NULL, input TEXT NOT NULL, domain TEXT NOT NULL,
            verdict TEXT NOT NULL, count INTEGER NOT NULL,
            PRIMARY KEY ({','.join(sql.ROLLUP_KEY)})) WITHOUT ROWID"""
          for table in ("rollups_hourly", "rollups_daily")),
        sql.rollup_fill("rollups_hourly", "substr(start_time, 1, 13) || ':00:00'"),
        sql.rollup_fill("rollups_daily", "substr(start_time, 1, 10) || ' 00:00:00'"),
        "CREATE TABLE measurement_totals (shard INTEGER PRIMARY KEY, count INTEGER NOT NULL)",
        "INSERT INTO measurement_totals (shard, count) SELECT 0, count(*) FROM measurements",
    ),
    # Version 5: new bodies are stored compressed (``body.pack``, a BLOB in the same column;
    # rows stored before stay text). No statement: the version keeps an older collector,
    # which would hand out the compressed bytes, from opening the file.
    (),
    # Version 6: a body moved to an archive file (collector.store.archive) leaves "" in
    # ``body`` and its reference in ``archive``.
    ("ALTER TABLE measurements ADD COLUMN archive TEXT",),
    (  # version 7: a monthly rollup and coarse ones (without input and domain), filled from
        # the rollups already kept
        *(f"""CREATE TABLE {r.table} (
            period TEXT NOT NULL, probe_cc TEXT NOT NULL, probe_asn TEXT NOT NULL,
            test_name TEXT NOT NULL, {'input TEXT NOT NULL, domain TEXT NOT NULL,' * r.fine}
            verdict TEXT NOT NULL, count INTEGER NOT NULL,
            PRIMARY KEY ({','.join(r.key)})) WITHOUT ROWID"""
          for r in sql.ROLLUPS if r.table in sql.ROLLUPS_OF_VERSION_7),
        sql.rollup_refill("rollups_monthly", "rollups_daily",
                          "substr(period, 1, 7) || '-01 00:00:00'"),
        sql.rollup_refill("rollups_hourly_coarse", "rollups_hourly", "period"),
        sql.rollup_refill("rollups_daily_coarse", "rollups_daily", "period"),
    ),
    # Version 8: what detection makes of a measurement, stored with the row at ingest
    # (collector.detect.observed) so its feed need not read the body; NULL on older rows.
    ("ALTER TABLE measurements ADD COLUMN observation TEXT",),
)
SCHEMA_VERSION = len(MIGRATIONS)

DIALECT = sql.Dialect(
    name="sqlite", numbered=False, time=str,
    day="substr({t}, 1, 10)", hour="substr({t}, 1, 13) || ':00:00'",
    json_has=lambda column, value: (
        f"EXISTS (SELECT 1 FROM json_each(events.{column}) WHERE value = {value})"),
)
SQL = sql.Statements.of(DIALECT)


@asynccontextmanager
async def _unavailable() -> AsyncIterator[None]:
    """Database-level failures (locked, disk full, I/O error) become StoreUnavailable."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        raise StoreUnavailable(f"sqlite: {exc}") from exc


async def migrate(db: aiosqlite.Connection,
                  migrations: Sequence[Sequence[Step]] = MIGRATIONS) -> int:
    """Bring the schema to ``len(migrations)``; returns the version found before."""
    await db.execute("BEGIN IMMEDIATE")
    try:
        async with db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        found = int(row[0]) if row else 0
        if found > len(migrations):
            raise RuntimeError(f"database schema version {found} is newer than this "
                               f"collector ({len(migrations)}); upgrade the collector")
        for steps in migrations[found:]:
            for step in steps:
                if isinstance(step, str):
                    await db.execute(step)
                else:
                    await step(db)
        await db.execute(f"PRAGMA user_version={len(migrations)}")
        await db.execute("COMMIT")
    except BaseException:
        await db.execute("ROLLBACK")
        raise
    return found


def _wrap(exc: Exception) -> Exception:
    if isinstance(exc, sqlite3.OperationalError):
        wrapped = StoreUnavailable(f"sqlite: {exc}")
        wrapped.__cause__ = exc
        return wrapped
    return exc


@dataclass(frozen=True, slots=True)
class ThreadJob:
    """A write job that runs on the connection's own thread as ``work(conn, *args)``: a group
    made of such jobs alone is written in one trip to that thread (BEGIN, each job in its
    savepoint, COMMIT), where a statement each costs two turns of a busy event loop."""

    work: Callable[..., Any]
    args: tuple[Any, ...]


AsyncJob = Callable[[aiosqlite.Connection], Awaitable[Any]]
Job = AsyncJob | ThreadJob


class _GroupWriter:
    """Runs write jobs in shared transactions: one fsync for all the jobs waiting.

    Each job runs in its own savepoint, so one failing job rolls back only its own writes.
    A job's caller waits until the transaction holding its writes has committed.
    """

    def __init__(self, db: aiosqlite.Connection, coming: WritesComing | None = None,
                 wait: float = 0.0) -> None:
        self.db = db
        self.queue: list[tuple[Job, asyncio.Future[Any]]] = []
        self.task: asyncio.Task[None] | None = None
        # Uploads on their way (``collector.store.coming``), and how long a group may wait
        # for them, from its first job's arrival; no waiting without both.
        self.company = CompanyWait(coming, wait)
        self.commits = 0  # transactions committed or tried (for tests and benchmarks)

    async def run(self, job: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        return cast(T, await self._enqueue(job))

    async def run_on_thread(self, work: Callable[..., T], *args: Any) -> T:
        """``work(conn, *args)`` in the next group, on the connection's thread."""
        return cast(T, await self._enqueue(ThreadJob(work, args)))

    async def _enqueue(self, job: Job) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.queue.append((job, future))
        self.company.queued(first=len(self.queue) == 1)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self.queue:
            # Held while uploads are still being prepared (``collector.store.coming``): a
            # commit costs mostly per page it dirties, and consecutive batches dirty the same
            # index and rollup pages, so several in one transaction save most of a batch's
            # cost each. An upload with none other on its way is committed at once.
            await self.company.gather(lambda: len(self.queue))
            batch, self.queue = self.queue, []
            self.commits += 1
            await self._commit(batch)

    async def _commit(self, batch: list[tuple[Job, asyncio.Future[Any]]]) -> None:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        try:
            if all(isinstance(job, ThreadJob) for job, _ in batch):
                results = await on_connection_thread(
                    self.db, _commit_on_thread, [cast(ThreadJob, job) for job, _ in batch])
                outcomes = [(future, result, error)
                            for (_, future), (result, error) in zip(batch, results, strict=True)]
            else:
                outcomes = await self._commit_in_turns(batch)
        except Exception as exc:  # noqa: BLE001 - the commit failed: every job fails
            failure = _wrap(exc)
            for _, future in batch:
                if not future.done():
                    future.set_exception(failure)
            return
        for future, result, error in outcomes:
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)

    async def _commit_in_turns(self, batch: list[tuple[Job, asyncio.Future[Any]]]
                               ) -> list[tuple[asyncio.Future[Any], Any, BaseException | None]]:
        outcomes: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            for index, (job, future) in enumerate(batch):
                await self.db.execute(f"SAVEPOINT job{index}")
                try:
                    if isinstance(job, ThreadJob):
                        result = await on_connection_thread(self.db, job.work, *job.args)
                    else:
                        result = await job(self.db)
                except Exception as exc:  # noqa: BLE001 - handed to that job's caller
                    await self.db.execute(f"ROLLBACK TO job{index}")
                    outcomes.append((future, None, _wrap(exc)))
                else:
                    outcomes.append((future, result, None))
                await self.db.execute(f"RELEASE job{index}")
            await self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                await self.db.execute("ROLLBACK")
            raise
        return outcomes

    async def close(self) -> None:
        if self.task is not None:
            await asyncio.gather(self.task, return_exceptions=True)


async def _enable_wal(db: aiosqlite.Connection, patience: float) -> None:
    """Switch to WAL, retrying while another connection holds the database.

    Changing the journal mode needs an exclusive lock, and SQLite reports "database is
    locked" at once instead of calling the busy handler when another process is opening or
    migrating the same file at that moment; several collectors starting together must wait.
    """
    deadline = asyncio.get_running_loop().time() + patience
    while True:
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.02)


# The writer copies its WAL into the database file itself only past this many pages (256 MiB):
# a backstop. The checkpointer below does it beside the writer, every CHECKPOINT_INTERVAL.
WRITER_CHECKPOINT_PAGES = 64 * 1024
CHECKPOINT_INTERVAL = 0.25
# A WAL file emptied by a checkpoint is cut back to this size (SQLite keeps it otherwise).
WAL_SIZE_LIMIT = 64 * 1024 * 1024


class _Checkpointer:
    """Copies committed pages from the WAL into the database file on its own connection and
    thread, so that the writer's commits append to the WAL and wait for nothing else.

    With SQLite's default (the committing connection checkpoints once the WAL passes 1,000
    pages, 4 MiB), a batch of measurements dirties so many index and rollup pages that nearly
    every commit also wrote them into the database file and synced it: under load the commit
    took 23 ms where appending alone takes 3-5, and the single writer spent most of its time
    there (BENCHMARKS.md, "The writer's commits"). A passive checkpoint never blocks the
    writer or a reader; durability does not depend on it (a commit is durable once its WAL
    frames are synced, ``synchronous=FULL``), and a page written many times between two
    checkpoints is copied once.
    """

    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECKPOINT_INTERVAL)
            try:
                # Read to the end: an open statement would hold a read of the WAL.
                async with self.db.execute("PRAGMA wal_checkpoint(PASSIVE)") as cursor:
                    await cursor.fetchall()
            except sqlite3.Error:  # busy or locked now: the next turn tries again
                continue

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.db.close()


class SQLiteStore(SQLiteEventsMixin):
    dialect = DIALECT
    statements = SQL

    def __init__(self, write: aiosqlite.Connection, read: aiosqlite.Connection,
                 checkpoint: aiosqlite.Connection | None = None, *,
                 coming: WritesComing | None = None, commit_wait: float = 0.0) -> None:
        self.write = write
        self.read = read
        self.writer = _GroupWriter(write, coming, commit_wait)
        self.checkpointer = _Checkpointer(checkpoint) if checkpoint is not None else None
        self.archive_target: ArchiveTarget | None = None  # where archived bodies are read from

    @classmethod
    async def open(cls, path: str, busy_timeout_ms: int = 5000, *,
                   coming: WritesComing | None = None, commit_wait: float = 0.0
                   ) -> SQLiteStore:
        """The store in file ``path``, migrated. ``coming`` and ``commit_wait``: the uploads on
        their way, and how long a commit may wait for them (``_GroupWriter``)."""
        if path == ":memory:":
            raise ValueError("database: the SQLite store needs a file (reads use a second "
                             "connection)")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        write = await aiosqlite.connect(path, isolation_level=None)
        try:
            await write.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            await _enable_wal(write, busy_timeout_ms / 1000)
            await write.execute("PRAGMA synchronous=FULL")
            # The writer's page cache (SQLite's default is 2 MiB): at millions of rows the
            # upper pages of the table, its four indexes and the rollups take about 15 MiB,
            # and an insert that finds them cached reads nothing back from the file.
            await write.execute(f"PRAGMA cache_size=-{WRITER_CACHE_KIB}")
            await write.execute("PRAGMA foreign_keys=ON")
            await write.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
            await write.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            await migrate(write)
            read = await aiosqlite.connect(path, isolation_level=None)
            checkpoint = await aiosqlite.connect(path, isolation_level=None)
        except BaseException:
            await write.close()
            raise
        read.row_factory = aiosqlite.Row
        await read.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        await read.execute("PRAGMA query_only=1")
        return cls(write, read, checkpoint, coming=coming, commit_wait=commit_wait)

    async def _fetch(self, query: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        async with _unavailable(), self.read.execute(query, params) as cursor:
            return list(await cursor.fetchall())

    # --- measurements -----------------------------------------------------------------

    async def add_measurements(self, rows: list[StoredMeasurement]) -> list[str]:
        if not rows:
            return []
        unique: dict[str, StoredMeasurement] = {}
        for row in rows:
            unique.setdefault(row.uid, row)
        # Compressed before the writer's turn, on a worker thread (zlib runs beside the event
        # loop): the transaction, which every concurrent request waits on, only writes.
        values = await _packed_values(list(unique.values()))
        plan = _WritePlan.of(list(unique.values()))
        return await self.writer.run_on_thread(_insert_rows, unique, values, plan)

    async def measurements(
        self, filters: Filters, *, after: tuple[str, str] | None = None, limit: int = 100,
    ) -> list[dict[str, Any]]:
        params = DIALECT.params()
        rows = await self._fetch(sql.list_query(filters, params, after, limit), params.values)
        return [_measurement_row(r) for r in rows]

    async def measurement_bodies(self, uids: list[str]) -> dict[str, str]:
        if not uids:
            return {}
        rows = await self._fetch(
            f"SELECT uid, body, archive FROM measurements "
            f"WHERE uid IN ({','.join('?' for _ in uids)})", uids)
        bodies = {r[0]: unpack(r[1]) for r in rows if r[2] is None}
        archived = {r[0]: r[2] for r in rows if r[2] is not None}
        if archived:
            bodies.update(await read_archived(self.archive_target, archived))
        return bodies

    async def archive_refs(self, uids: list[str]) -> dict[str, str]:
        if not uids:
            return {}
        rows = await self._fetch(
            f"SELECT uid, archive FROM measurements WHERE archive IS NOT NULL "
            f"AND uid IN ({','.join('?' for _ in uids)})", uids)
        return {r[0]: r[1] for r in rows}

    async def drop_archived_partitions(self, before: str) -> list[str]:
        return []  # no partitions: mark_archived empties each row

    async def archive_candidates(self, before: str, after: tuple[str, str] | None,
                                 limit: int) -> list[ArchiveCandidate]:
        cursor = "AND (start_time, uid) > (?, ?)" if after is not None else ""
        rows = await self._fetch(
            f"SELECT uid, test_name, probe_cc, start_time, body FROM measurements "
            f"WHERE start_time < ? AND archive IS NULL {cursor} "
            f"ORDER BY start_time, uid LIMIT ?", (before, *(after or ()), limit))
        return [ArchiveCandidate(r[0], r[1], r[2], r[3], unpack(r[4]), r[4]) for r in rows]

    async def mark_archived(self, moves: list[tuple[ArchiveCandidate, str]]) -> int:
        async def job(db: aiosqlite.Connection) -> int:
            emptied = 0
            for candidate, ref in moves:
                cursor = await db.execute(
                    "UPDATE measurements SET body = '', archive = ? "
                    "WHERE uid = ? AND archive IS NULL AND body IS ?",
                    (ref, candidate.uid, candidate.stored))
                emptied += cursor.rowcount
            return emptied

        return await self.writer.run(job)

    async def replace_analysis(self, uid: str, body: str, verdict: str | None,
                               layer: str | None, mechanism: str | None, *,
                               archived_as: str | None = None,
                               observation: str | None = None) -> bool:
        async def job(db: aiosqlite.Connection) -> bool:
            async with db.execute(
                "SELECT start_time, probe_cc, probe_asn, test_name, coalesce(input, ''), "
                "coalesce(domain, ''), verdict, archive FROM measurements WHERE uid = ?",
                (uid,)) as cur:
                found = await cur.fetchone()
            if found is None or (found[7] is not None and archived_as is None):
                return False  # archived since it was read: its body is not brought back
            # An archived row keeps no body here: the new one is in the archive already.
            stored = pack(body) if archived_as is None else ""
            await db.execute(
                "UPDATE measurements SET body = ?, verdict = ?, layer = ?, mechanism = ?, "
                "archive = ?, observation = ? WHERE uid = ?",
                (stored, verdict, layer, mechanism, archived_as, observation, uid))
            await db.execute(
                "UPDATE target_state SET verdict = ?, layer = ?, mechanism = ? WHERE uid = ?",
                (verdict, layer, mechanism, uid))
            moves = sql.rollup_moves(found[0], tuple(found[1:6]), found[6], verdict)
            for table, statement in SQL.upsert_rollups.items():
                for move in moves[table]:
                    await db.execute(statement, move)
                    await db.execute(sql.drop_empty_rollup(table), move[:-1])
            return True

        return await self.writer.run(job)

    async def aggregate(self, filters: Filters, axes: tuple[Axis, ...],
                        max_groups: int) -> list[dict[str, Any]]:
        params = DIALECT.params()
        query = sql.aggregate_query(filters, axes, params, max_groups + 1)
        rows = await self._fetch(query, params.values)
        return [{k: (int(r[k] or 0) if k.endswith("_count") else r[k]) for k in r.keys()}
                for r in rows]

    async def count_measurements(self) -> int:
        rows = await self._fetch(SQL.total)
        return int(rows[0][0])

    async def latest_by_target(self) -> list[dict[str, Any]]:
        rows = await self._fetch(SQL.latest_by_target)
        return [dict(r) for r in rows]

    async def target_verdicts(self) -> list[tuple[str, str, str, str, str | None]]:
        async with _unavailable(), self.read.execute(SQL.target_verdicts) as cursor:
            cursor.row_factory = None  # tuples: thousands of rows at every scrape
            rows: list[tuple[str, str, str, str, str | None]] = list(
                await cursor.fetchall())  # type: ignore[arg-type]
            return rows

    # --- probes -----------------------------------------------------------------------

    async def add_heartbeat(self, probe_id: str, sent_at: str, received_at: str, body: str,
                            *, queue_depth: int | None = None,
                            software_version: str | None = None) -> None:
        async def job(db: aiosqlite.Connection) -> None:
            await db.execute(
                SQL.insert_heartbeat,
                (probe_id, sent_at, received_at, body, queue_depth, software_version))
            await db.execute(SQL.upsert_probe, (probe_id, received_at, received_at, sent_at,
                                             queue_depth, software_version))

        await self.writer.run(job)

    async def probes(self) -> list[dict[str, Any]]:
        rows = await self._fetch(SQL.probes)
        return [dict(r) for r in rows]

    # --- tokens -----------------------------------------------------------------------

    async def add_token(self, probe_id: str, token_hash: str, created_at: str) -> None:
        async def job(db: aiosqlite.Connection) -> None:
            await db.execute(SQL.upsert_token, (probe_id, token_hash, created_at))

        await self.writer.run(job)

    async def revoke_token(self, probe_id: str, revoked_at: str) -> bool:
        async def job(db: aiosqlite.Connection) -> bool:
            async with db.execute(SQL.revoke_token, (revoked_at, probe_id)) as cursor:
                return cursor.rowcount == 1

        return await self.writer.run(job)

    async def probe_for_token(self, token_hash: str) -> tuple[str, bool] | None:
        rows = await self._fetch(SQL.probe_for_token, (token_hash,))
        if not rows:
            return None
        return str(rows[0][0]), rows[0][1] is not None

    async def tokens(self) -> list[dict[str, Any]]:
        rows = await self._fetch(SQL.tokens)
        return [dict(r) for r in rows]

    # --- leases -----------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, now: str, expires_at: str) -> bool:
        async def job(db: aiosqlite.Connection) -> bool:
            async with db.execute(SQL.acquire_lease, (name, holder, expires_at, now)) as cursor:
                return cursor.rowcount == 1

        return await self.writer.run(job)

    async def release_lease(self, name: str, holder: str) -> None:
        async def job(db: aiosqlite.Connection) -> None:
            await db.execute(SQL.release_lease, (name, holder))

        await self.writer.run(job)

    async def schema_version(self) -> int:
        rows = await self._fetch("PRAGMA user_version")
        return int(rows[0][0])

    async def close(self) -> None:
        await self.writer.close()
        if self.checkpointer is not None:
            await self.checkpointer.close()
        await self.read.close()
        await self.write.close()


# The API's columns, then the stored observation (written, never listed).
_INSERTED = (*MEASUREMENT_COLUMNS, "observation")
_INSERT_MEASUREMENT = (f"INSERT INTO measurements ({','.join(_INSERTED)}) "
                       f"VALUES ({','.join('?' for _ in _INSERTED)})")


_COLUMNS_OF = operator.attrgetter(*_INSERTED)
_MISMATCH_AT = _INSERTED.index("location_mismatch")
_BODY_AT = _INSERTED.index("body")


def _values(row: StoredMeasurement) -> tuple[Any, ...]:
    values = list(_COLUMNS_OF(row))
    values[_MISMATCH_AT] = int(row.location_mismatch)
    values[_BODY_AT] = row.packed if row.packed is not None else pack(row.body)
    return tuple(values)


def _commit_on_thread(conn: sqlite3.Connection, jobs: list[ThreadJob]
                      ) -> list[tuple[Any, Exception | None]]:
    """A group of ``ThreadJob``s in one transaction, on the connection's thread: what
    ``_GroupWriter._commit_in_turns`` does, in one trip. Returns each job's result or error."""
    results: list[tuple[Any, Exception | None]] = []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for index, job in enumerate(jobs):
            conn.execute(f"SAVEPOINT job{index}")
            try:
                results.append((job.work(conn, *job.args), None))
            except Exception as exc:  # noqa: BLE001 - handed to that job's caller
                conn.execute(f"ROLLBACK TO job{index}")
                results.append((None, _wrap(exc)))
            conn.execute(f"RELEASE job{index}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return results


@dataclass(frozen=True, slots=True)
class _WritePlan:
    """The rows a batch upserts besides its measurements (``target_state``, the rollups),
    worked out before the writer's turn for the whole batch: inside the transaction, which
    every concurrent upload waits on, only a retry's batch (some uids already stored) is
    worked out again."""

    targets: list[tuple[Any, ...]]
    rollups: dict[str, list[tuple[Any, ...]]]

    @classmethod
    def of(cls, rows: list[StoredMeasurement]) -> _WritePlan:
        return cls([_target_values(r) for r in sql.latest_per_target(rows)],
                   sql.rollup_increments(rows))


_VALUES = re.compile(r"VALUES \((\?(?:, ?\?)*)\)")
# Bound parameters in one statement at most (SQLite's default limit is 32,766 since 3.32).
_MAX_PARAMETERS = 30_000


@lru_cache(maxsize=64)
def _many_rows(statement: str, rows: int) -> str:
    """``statement`` (a one-row ``INSERT ... VALUES (?, ...)``) for ``rows`` rows at once."""
    match = _VALUES.search(statement)
    assert match is not None, statement
    group = f"({match.group(1)})"
    return f"{statement[:match.start()]}VALUES {','.join([group] * rows)}{statement[match.end():]}"


def _execute_rows(conn: sqlite3.Connection, statement: str,
                  rows: list[tuple[Any, ...]]) -> None:
    """``executemany`` as statements of many rows each: one step of SQLite's engine for
    hundreds of rows instead of one each, and so one wait for the interpreter's lock instead
    of one each (the writer's thread gives it up in every step)."""
    if not rows:
        return
    # The library's own limit when lower (999 in SQLite builds before 3.32 that kept the
    # default), read from the connection.
    limit = min(_MAX_PARAMETERS, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    per = max(1, limit // len(rows[0]))
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        conn.execute(_many_rows(statement, len(chunk)), [v for row in chunk for v in row])


def _insert_rows(conn: sqlite3.Connection, unique: dict[str, StoredMeasurement],
                 values: dict[str, tuple[Any, ...]], plan: _WritePlan) -> list[str]:
    """The write of a batch, on the connection's own thread, inside the group writer's
    transaction and the job's savepoint: every statement in one call, where a statement
    each through aiosqlite waits its turn on the event loop twice (about a dozen trips a
    batch, which under load kept the single writer idle most of the time it held the lock).

    The transaction holds SQLite's write lock (BEGIN IMMEDIATE), so no other connection or
    process can insert between the check for existing uids and the insert."""
    existing: set[str] = set()
    uids = list(unique)
    for start in range(0, len(uids), 500):
        chunk = uids[start:start + 500]
        existing.update(r[0] for r in conn.execute(
            f"SELECT uid FROM measurements WHERE uid IN ({','.join('?' * len(chunk))})",
            chunk))
    fresh = [row for uid, row in unique.items() if uid not in existing]
    if len(fresh) != len(unique):  # a retry: what was worked out for the whole batch is not
        plan = _WritePlan.of(fresh)  # what this transaction writes
    _execute_rows(conn, _INSERT_MEASUREMENT, [values[r.uid] for r in fresh])
    _execute_rows(conn, SQL.upsert_target, plan.targets)
    for table, increments in plan.rollups.items():
        _execute_rows(conn, SQL.upsert_rollups[table], increments)
    if fresh:
        conn.execute(SQL.add_total, (0, len(fresh)))
    return [r.uid for r in fresh]


async def on_connection_thread(db: aiosqlite.Connection,
                               work: Callable[..., T], *args: Any) -> T:
    """``work(conn, *args)`` on ``db``'s own thread with its ``sqlite3.Connection``, in one
    trip. aiosqlite runs every call that way but offers it only as a private method; this is
    the one place that uses it (pinned below 1.0 in pyproject; tested in test_sqlite_thread)."""
    run = cast(Callable[..., Awaitable[T]], db._execute)  # noqa: SLF001 - see the docstring
    return await run(work, db._conn, *args)  # noqa: SLF001


async def _packed_values(rows: list[StoredMeasurement]) -> dict[str, tuple[Any, ...]]:
    """Each row's column values by uid; bodies not packed yet are packed on a worker thread."""
    if all(r.packed is not None for r in rows):
        return {r.uid: _values(r) for r in rows}
    return await asyncio.to_thread(lambda: {r.uid: _values(r) for r in rows})


def _target_values(row: StoredMeasurement) -> tuple[Any, ...]:
    return (row.probe_cc, row.probe_asn, row.test_name, target_key(row.input), row.uid,
            row.start_time, row.verdict, row.layer, row.mechanism)


def _measurement_row(row: aiosqlite.Row) -> dict[str, Any]:
    out = dict(row)
    out["location_mismatch"] = bool(out["location_mismatch"])
    return out
