"""PostgreSQL store (asyncpg) for large deployments and for several collectors at once.

Same interface and behaviour as the SQLite store (``tests/collector/store`` runs on both).
What differs:

* ``measurements`` and ``heartbeats`` are partitioned by month on their time column, so old
  months can be detached or dropped cheaply. Partitions are created on demand, under an
  advisory lock, before the transaction that needs them.
* Bodies live apart from the summary rows, in ``measurement_bodies`` (partitioned by month
  of ``start_time`` too): archiving (``collector.store.archive``) records each row's archive
  reference, and once a month's bodies are all archived and read back identical, that month's
  body partition is dropped whole (``drop_archived_partitions``) while its summary rows and the
  rollups stay. Splitting the table, rather than emptying a column in place, returns the space
  at once with no dead rows to vacuum, and keeps the summary scans free of bodies.
* A partitioned table's unique keys must include the partition key, so the global uniqueness of
  ``measurement_uid`` lives in the small table ``measurement_uids``: a batch first claims its
  uids there (``ON CONFLICT DO NOTHING``); only the rows it claimed are written. Two collectors
  sending the same uid at the same time cannot both claim it.
* Writers take row locks in a fixed order (uids, then target keys, sorted) so concurrent
  batches do not deadlock; a deadlock or serialization failure is retried anyway.
* Text columns use ``COLLATE "C"`` so ordering and pagination match SQLite byte for byte.
* Migrations run in one transaction under ``pg_advisory_xact_lock``: collectors starting at the
  same time migrate once. The version lives in ``kuzot_schema``.

Times are ``timestamp`` (UTC, no zone) in the database and ``"YYYY-MM-DD HH:MM:SS"`` strings
at the interface; ``_ts`` and ``_text`` convert.
"""

from __future__ import annotations

import asyncio
import operator
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeVar

import asyncpg
from asyncpg import exceptions as pgerr

from collector.store import sql
from collector.store.archive import ArchiveCandidate, ArchiveUnreadable, digest, read_archived
from collector.store.archive_targets import ArchiveTarget
from collector.store.body import pack, unpack
from collector.store.coming import CompanyWait, WritesComing
from collector.store.interface import (
    MEASUREMENT_COLUMNS,
    TIME_FORMAT,
    Axis,
    Filters,
    StoredMeasurement,
    StoreUnavailable,
    target_key,
)
from collector.store.postgres_events import MIGRATION as EVENTS_MIGRATION
from collector.store.postgres_events import PostgresEventsMixin
from collector.store.postgres_groups import UploadGroups

T = TypeVar("T")

# Advisory lock keys (any constant bigint; they only need to differ from each other).
_LOCK_MIGRATE = 0x6B757A6F74_01
_LOCK_PARTITIONS = 0x6B757A6F74_02
_PARTITIONED = {"measurements": "start_time", "heartbeats": "received_at"}
_RETRIES = 5
_TOTAL_SHARDS = 16  # rows of measurement_totals: concurrent batches rarely wait on one
_ACQUIRE_TIMEOUT = 30.0  # seconds to wait for a pooled connection before answering 503

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE tokens (
            probe_id text COLLATE "C" PRIMARY KEY,
            token_hash text COLLATE "C" NOT NULL UNIQUE,
            created_at timestamp NOT NULL,
            revoked_at timestamp)""",
        """CREATE TABLE measurement_uids (
            uid text COLLATE "C" PRIMARY KEY,
            start_time timestamp NOT NULL)""",
        """CREATE TABLE measurements (
            uid text COLLATE "C" NOT NULL,
            probe_id text COLLATE "C" NOT NULL,
            test_name text COLLATE "C" NOT NULL,
            input text COLLATE "C",
            domain text COLLATE "C",
            probe_cc text COLLATE "C" NOT NULL,
            probe_asn text COLLATE "C" NOT NULL,
            start_time timestamp NOT NULL,
            received_at timestamp NOT NULL,
            verdict text COLLATE "C",
            layer text COLLATE "C",
            mechanism text COLLATE "C",
            location_source text COLLATE "C" NOT NULL,
            location_mismatch boolean NOT NULL,
            body text NOT NULL,
            PRIMARY KEY (start_time, uid)
        ) PARTITION BY RANGE (start_time)""",
        """CREATE INDEX measurements_target
            ON measurements (probe_cc, probe_asn, test_name, input, start_time)""",
        "CREATE INDEX measurements_domain ON measurements (domain, start_time)",
        """CREATE TABLE target_state (
            probe_cc text COLLATE "C" NOT NULL,
            probe_asn text COLLATE "C" NOT NULL,
            test_name text COLLATE "C" NOT NULL,
            target text COLLATE "C" NOT NULL,
            uid text COLLATE "C" NOT NULL,
            start_time timestamp NOT NULL,
            verdict text COLLATE "C",
            layer text COLLATE "C",
            mechanism text COLLATE "C",
            PRIMARY KEY (probe_cc, probe_asn, test_name, target))""",
        """CREATE TABLE heartbeats (
            probe_id text COLLATE "C" NOT NULL,
            sent_at timestamp NOT NULL,
            received_at timestamp NOT NULL,
            queue_depth integer,
            software_version text COLLATE "C",
            body text NOT NULL
        ) PARTITION BY RANGE (received_at)""",
        "CREATE INDEX heartbeats_probe ON heartbeats (probe_id, received_at)",
        """CREATE TABLE probes (
            probe_id text COLLATE "C" PRIMARY KEY,
            first_seen timestamp NOT NULL,
            last_seen timestamp NOT NULL,
            sent_at timestamp,
            queue_depth integer,
            software_version text COLLATE "C")""",
        """CREATE TABLE leases (
            name text COLLATE "C" PRIMARY KEY,
            holder text COLLATE "C" NOT NULL,
            expires_at timestamp NOT NULL)""",
    ),
    EVENTS_MIGRATION,  # version 2: detection's events, state and commit-ordered feeds
    (  # version 3: rollups for aggregation and the stored count, filled from what is stored
        *(f"""CREATE TABLE {table} (
            period timestamp NOT NULL,
            probe_cc text COLLATE "C" NOT NULL,
            probe_asn text COLLATE "C" NOT NULL,
            test_name text COLLATE "C" NOT NULL,
            input text COLLATE "C" NOT NULL,
            domain text COLLATE "C" NOT NULL,
            verdict text COLLATE "C" NOT NULL,
            count bigint NOT NULL,
            PRIMARY KEY ({','.join(sql.ROLLUP_KEY)}))"""
          for table in ("rollups_hourly", "rollups_daily")),
        sql.rollup_fill("rollups_hourly", "date_trunc('hour', start_time)"),
        sql.rollup_fill("rollups_daily", "date_trunc('day', start_time)"),
        "CREATE TABLE measurement_totals (shard integer PRIMARY KEY, count bigint NOT NULL)",
        "INSERT INTO measurement_totals (shard, count) SELECT 0, count(*) FROM measurement_uids",
    ),
    (  # version 4: new bodies compressed (body.pack) in body_z; rows stored before keep body
        "ALTER TABLE measurements ADD COLUMN body_z bytea",
        "ALTER TABLE measurements ALTER COLUMN body DROP NOT NULL",
        # Already compressed: TOAST should not try again.
        "ALTER TABLE measurements ALTER COLUMN body_z SET STORAGE EXTERNAL",
    ),
    (  # version 5: a body moved to an archive file (collector.store.archive) leaves body and
        # body_z NULL and its reference in ``archive``
        "ALTER TABLE measurements ADD COLUMN archive text",
    ),
    (  # version 6: bodies in a table of their own, partitioned by month like measurements, so
        # a month whose bodies are all archived and verified is dropped whole
        # (drop_archived_partitions) while its summary rows stay
        """CREATE TABLE measurement_bodies (
            start_time timestamp NOT NULL,
            uid text COLLATE "C" NOT NULL,
            body text,
            body_z bytea,
            PRIMARY KEY (start_time, uid)
        ) PARTITION BY RANGE (start_time)""",
        "ALTER TABLE measurement_bodies ALTER COLUMN body_z SET STORAGE EXTERNAL",
        """DO $$ DECLARE part record; BEGIN
            FOR part IN SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound
                        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                        WHERE i.inhparent = 'measurements'::regclass LOOP
                EXECUTE format('CREATE TABLE %I PARTITION OF measurement_bodies %s',
                               replace(part.name, 'measurements_', 'measurement_bodies_'),
                               part.bound);
            END LOOP;
        END $$""",
        """INSERT INTO measurement_bodies (start_time, uid, body, body_z)
            SELECT start_time, uid, body, body_z FROM measurements WHERE archive IS NULL""",
        # The old columns' bytes stay in the summary partitions until they are rewritten
        # (README: VACUUM FULL after upgrading).
        "ALTER TABLE measurements DROP COLUMN body, DROP COLUMN body_z",
    ),
    (  # version 7: a monthly rollup and coarse ones (without input and domain), filled from
        # the rollups already kept
        *(f"""CREATE TABLE {r.table} (
            period timestamp NOT NULL,
            probe_cc text COLLATE "C" NOT NULL,
            probe_asn text COLLATE "C" NOT NULL,
            test_name text COLLATE "C" NOT NULL,
            {'input text COLLATE "C" NOT NULL, domain text COLLATE "C" NOT NULL,' * r.fine}
            verdict text COLLATE "C" NOT NULL,
            count bigint NOT NULL,
            PRIMARY KEY ({','.join(r.key)}))"""
          for r in sql.ROLLUPS if r.table in sql.ROLLUPS_OF_VERSION_7),
        sql.rollup_refill("rollups_monthly", "rollups_daily", "date_trunc('month', period)"),
        sql.rollup_refill("rollups_hourly_coarse", "rollups_hourly", "period"),
        sql.rollup_refill("rollups_daily_coarse", "rollups_daily", "period"),
    ),
    (  # version 8: what detection makes of a measurement, stored with its summary row at
        # ingest (collector.detect.observed) so its feed need not read the body, which may be
        # archived and its partition dropped; NULL on older rows
        "ALTER TABLE measurements ADD COLUMN observation text",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

# Connection-level failures: the database is down, restarting, full of clients or refusing
# us. These become StoreUnavailable (HTTP 503); anything else is a bug and propagates.
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, pgerr.PostgresConnectionError, pgerr.InterfaceError,
    pgerr.InternalClientError, pgerr.OperatorInterventionError, pgerr.InsufficientResourcesError,
    pgerr.InvalidAuthorizationSpecificationError, pgerr.InvalidCatalogNameError,
)
# A pooled connection that died under us (server restarted, backend terminated): the pool's
# connections are expired (the others are likely dead too) and the work is tried once more on
# a fresh one. Safe because every write is idempotent by
# its key (uid, token, lease holder, probe).
_BROKEN: tuple[type[BaseException], ...] = (
    pgerr.ConnectionDoesNotExistError, pgerr.InterfaceError, pgerr.InternalClientError,
    pgerr.AdminShutdownError, ConnectionError,
)
_TIME_KEYS = frozenset({"start_time", "received_at", "first_seen", "last_seen", "sent_at",
                        "created_at", "revoked_at", "expires_at"})


@lru_cache(maxsize=4096)
def _ts(text: str) -> datetime:
    """A stored time (``TIME_FORMAT``) as PostgreSQL's timestamp. Read by slicing when it has
    the canonical form validation stores (``strptime`` costs several times more, and a batch
    converts several times per measurement on the event loop), else by ``strptime``.

    Remembered (datetimes are immutable): a batch converts each measurement's start time
    about four times (its summary row, its body's row, its uid, its target) and each rollup
    period once per table, 1.5 us each, against 0.08 us for a remembered one. A batch's
    write then costs the collector 59 us of CPU per measurement instead of 63 (medians of
    five alternated runs); 4,096 entries hold several batches' times in 0.8 MB."""
    if len(text) == 19 and text[4] == "-" and text[10] == " " and text[13] == ":" and \
            text[:4].isdigit() and text[5:7].isdigit() and text[8:10].isdigit() and \
            text[11:13].isdigit() and text[14:16].isdigit() and text[17:19].isdigit():
        return datetime(int(text[:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]),
                        int(text[14:16]), int(text[17:19]))
    return datetime.strptime(text, TIME_FORMAT)


DIALECT = sql.Dialect(
    name="postgresql", numbered=True, time=_ts,
    day="to_char({t}, 'YYYY-MM-DD')",
    hour="to_char({t}, 'YYYY-MM-DD HH24') || ':00:00'",
    json_has=lambda column, value: f"{column}::jsonb ? {value}",
)
SQL = sql.Statements.of(DIALECT)


# Every query of the store reads or writes a page, a batch or a rollup range: milliseconds of
# work. PostgreSQL compiles a query with LLVM when its *estimated* cost is high, and a
# feed page's estimate is (where its transactions end is only known when it runs): at 10M
# rows each page of detection's catch-up spent 540 ms compiling and about 20 ms running. So
# JIT is off for the store's sessions, whatever the server's default.
SESSION_SETTINGS = {"jit": "off"}


def _whole_batch(statement: str, types: Sequence[str]) -> str:
    """An upsert of one row (``INSERT INTO t (c1, ...) VALUES (?, ...) ON CONFLICT ...``) made
    to take a whole batch in one statement: one array per column, in ``types``, unnested in
    the arrays' order (sorted by key, so concurrent writers lock rows in one order). One
    statement per row cost the server a plan execution for each of the few hundred rollup and
    target rows of a batch of 100 measurements; the keys of a batch are distinct, as one
    statement may change a row only once."""
    head, rest = statement.split("VALUES", 1)
    columns = head[head.index("(") + 1:head.rindex(")")]
    arrays = ", ".join(f"${i}::{t}[]" for i, t in enumerate(types, 1))
    return (f"{head}SELECT {columns} FROM unnest({arrays}) WITH ORDINALITY "
            f"AS batch({columns}, position) ORDER BY position{rest[rest.index(')') + 1:]}")


_UPSERT_TARGETS = _whole_batch(sql.UPSERT_TARGET, (
    "text", "text", "text", "text", "text", "timestamp", "text", "text", "text"))
_UPSERT_ROLLUPS = {r.table: _whole_batch(sql.upsert_rollup(r.table), (
    "timestamp", *["text"] * (len(r.key) - 1), "bigint")) for r in sql.ROLLUPS}


def _numbered_from(statement: str, first: int) -> str:
    """``statement`` with its parameters ``$1``, ``$2``... renumbered from ``$first``."""
    return re.sub(r"\$(\d+)", lambda number: f"${int(number.group(1)) + first - 1}", statement)


def _as_one(statements: Sequence[tuple[str, int]]) -> str:
    """Statements that change rows (each with its number of parameters) as one statement:
    each a data-modifying ``WITH`` query, all run to completion, their parameters numbered
    one after another in the order given."""
    queries, first = [], 1
    for index, (statement, parameters) in enumerate(statements):
        queries.append(f"change{index} AS ({_numbered_from(statement, first)})")
        first += parameters
    return f"WITH {', '.join(queries)} SELECT {first - 1}"


# What a batch adds besides its own rows, in one statement: the targets' latest rows, the
# five rollups and the stored count. These rows are shared (every batch of the same hour adds
# to the same rollup rows), so a transaction holds their locks from its first upsert until it
# commits, and a concurrent one waits. As seven statements, each a round trip through an event
# loop busy with HTTP, that wait was the longest part of a transaction: at 10M stored rows and
# 8 clients x 100, a group's transaction took 68 ms, as one statement 54 (instrumented;
# BENCHMARKS.md, "Ingest at 10M"). ``_shared_arguments`` makes its parameters.
_UPSERT_SHARED = _as_one([(_UPSERT_TARGETS, 9),
                          *((_UPSERT_ROLLUPS[r.table], len(r.key) + 1) for r in sql.ROLLUPS),
                          (SQL.add_total, 2)])


def _shared_arguments(fresh: list[StoredMeasurement]) -> list[Any]:
    """``_UPSERT_SHARED``'s parameters for the newly stored rows ``fresh``."""
    arguments = _columns([_target_values(r) for r in sql.latest_per_target(fresh)])
    increments = sql.rollup_increments(fresh)
    for rollup in sql.ROLLUPS:  # the statement's order
        arguments += _columns([(_ts(period), *key)
                               for period, *key in increments[rollup.table]])
    return [*arguments, random.randrange(_TOTAL_SHARDS), len(fresh)]


def _columns(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """Rows as one list per column: the arrays of a ``_whole_batch`` statement."""
    return [list(column) for column in zip(*rows, strict=True)]


def _changed(status: str) -> bool:
    """Whether a command changed a row, from its status (``"UPDATE 1"``, ``"INSERT 0 0"``)."""
    return status.rsplit(" ", 1)[-1] != "0"


def _text(value: datetime | None) -> str | None:
    return value.strftime(TIME_FORMAT) if value is not None else None


def _month(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _next_month(month: datetime) -> datetime:
    return month.replace(year=month.year + 1, month=1) if month.month == 12 else \
        month.replace(month=month.month + 1)


def _row(record: asyncpg.Record) -> dict[str, Any]:
    return {k: (_text(v) if k in _TIME_KEYS else v) for k, v in record.items()}


@asynccontextmanager
async def _unavailable() -> Any:
    try:
        yield
    except _UNAVAILABLE as exc:
        raise StoreUnavailable(f"postgresql: {type(exc).__name__}: {exc}") from exc


async def migrate(conn: asyncpg.Connection,
                  migrations: Sequence[Sequence[str]] = MIGRATIONS) -> int:
    """Bring the schema to ``len(migrations)``; returns the version found before."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_MIGRATE)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS kuzot_schema (version integer PRIMARY KEY, "
            "applied_at timestamptz NOT NULL DEFAULT now())")
        found = int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM kuzot_schema"))
        if found > len(migrations):
            raise RuntimeError(f"database schema version {found} is newer than this "
                               f"collector ({len(migrations)}); upgrade the collector")
        for version in range(found + 1, len(migrations) + 1):
            for statement in migrations[version - 1]:
                await conn.execute(statement)
            await conn.execute("INSERT INTO kuzot_schema (version) VALUES ($1)", version)
    return found


class PostgresStore(PostgresEventsMixin):
    dialect = DIALECT
    statements = SQL

    def __init__(self, pool: asyncpg.Pool, *, coming: WritesComing | None = None,
                 commit_wait: float = 0.0) -> None:
        self.pool = pool
        self.partitions: set[tuple[str, datetime]] = set()
        self.archive_target: ArchiveTarget | None = None  # where archived bodies are read from
        # Uploads written in groups, a transaction each (``collector.store.postgres_groups``),
        # when the ingest says which are on their way; else each in its own.
        self.groups = UploadGroups(self._store_rows, CompanyWait(coming, commit_wait)) \
            if coming is not None else None

    @classmethod
    async def open(cls, dsn: str, *, pool_size: int = 10, connect_timeout: float = 10.0,
                   coming: WritesComing | None = None, commit_wait: float = 0.0
                   ) -> PostgresStore:
        async with _unavailable():
            pool = await asyncpg.create_pool(dsn, min_size=1, max_size=pool_size,
                                             timeout=connect_timeout, command_timeout=60,
                                             server_settings=SESSION_SETTINGS)
        try:
            async with _unavailable(), pool.acquire() as conn:
                await migrate(conn)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, coming=coming, commit_wait=commit_wait)

    async def _write(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """Run ``work`` in a transaction; retried on deadlock or serialization failure, and
        once on a fresh connection when the pooled one turns out to be dead."""
        reconnected = False
        for attempt in range(_RETRIES):
            try:
                async with _unavailable():
                    try:
                        async with self.pool.acquire(timeout=_ACQUIRE_TIMEOUT) as conn, \
                                conn.transaction():
                            return await work(conn)
                    except _BROKEN:
                        if reconnected:
                            raise
                        reconnected = True
                        await self.pool.expire_connections()
                        async with self.pool.acquire(timeout=_ACQUIRE_TIMEOUT) as conn, \
                                conn.transaction():
                            return await work(conn)
            except (pgerr.DeadlockDetectedError, pgerr.SerializationError):
                if attempt == _RETRIES - 1:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with _unavailable():
            try:
                async with self.pool.acquire(timeout=_ACQUIRE_TIMEOUT) as conn:
                    return list(await conn.fetch(query, *args))
            except _BROKEN:
                await self.pool.expire_connections()
                async with self.pool.acquire(timeout=_ACQUIRE_TIMEOUT) as conn:
                    return list(await conn.fetch(query, *args))

    async def _ensure_partitions(self, table: str, moments: set[datetime]) -> None:
        """Create the monthly partitions of ``table`` that hold ``moments``, once."""
        months = {_month(m) for m in moments} - {m for t, m in self.partitions if t == table}
        if not months:
            return

        async def work(conn: asyncpg.Connection) -> None:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_PARTITIONS)
            for month in sorted(months):
                name = f"{table}_p{month:%Y%m}"
                if await conn.fetchval("SELECT to_regclass($1)", name) is None:
                    start, end = month.strftime(TIME_FORMAT), _next_month(month).strftime(
                        TIME_FORMAT)
                    await conn.execute(f"CREATE TABLE {name} PARTITION OF {table} "
                                       f"FOR VALUES FROM ('{start}') TO ('{end}')")

        await self._write(work)
        self.partitions |= {(table, m) for m in months}

    # --- measurements -----------------------------------------------------------------

    async def add_measurements(self, rows: list[StoredMeasurement]) -> list[str]:
        unique: dict[str, StoredMeasurement] = {}
        for row in rows:
            unique.setdefault(row.uid, row)
        if not unique:
            return []
        if self.groups is not None:
            claimed = await self.groups.write(unique)
        else:
            claimed = await self._store_rows(unique)
        inserted, seen = [], set()
        for row in rows:
            if row.uid in claimed and row.uid not in seen:
                inserted.append(row.uid)
                seen.add(row.uid)
        return inserted

    async def _store_rows(self, unique: dict[str, StoredMeasurement]) -> set[str]:
        """Rows ``unique`` written in one transaction; the uids it stored (the others were
        stored before)."""
        moments = {_ts(r.start_time) for r in unique.values()}
        await self._ensure_partitions("measurements", moments)
        await self._ensure_partitions("measurement_bodies", moments)
        uids = sorted(unique)
        # Compressed before taking a connection, on a worker thread when not done yet
        # (validation packs on its own): the transaction only writes.
        packed = await _packed_bodies(unique)

        async def work(conn: asyncpg.Connection) -> set[str]:
            claimed = {r["uid"] for r in await conn.fetch(
                "INSERT INTO measurement_uids (uid, start_time) "
                "SELECT u, t FROM unnest($1::text[], $2::timestamp[]) AS x(u, t) ORDER BY u "
                "ON CONFLICT DO NOTHING RETURNING uid",
                uids, [_ts(unique[u].start_time) for u in uids])}
            fresh = [unique[u] for u in uids if u in claimed]
            if fresh:
                await conn.copy_records_to_table(
                    "measurements", records=[_values(r) for r in fresh],
                    columns=_SUMMARY_COLUMNS)
                await conn.copy_records_to_table(
                    "measurement_bodies", columns=("start_time", "uid", "body_z"),
                    records=[(_ts(r.start_time), r.uid, packed[r.uid]) for r in fresh])
                await conn.execute(_UPSERT_SHARED, *_shared_arguments(fresh))
            return claimed

        try:
            claimed = await self._write(work)
        except pgerr.CheckViolationError:
            # A late upload into a month whose bodies were archived and dropped by another
            # process: the partition is made again and the batch written once more.
            self.partitions -= {("measurement_bodies", _month(m)) for m in moments}
            await self._ensure_partitions("measurement_bodies", moments)
            claimed = await self._write(work)
        return claimed

    async def measurements(
        self, filters: Filters, *, after: tuple[str, str] | None = None, limit: int = 100,
    ) -> list[dict[str, Any]]:
        params = DIALECT.params()
        records = await self._fetch(sql.list_query(filters, params, after, limit),
                                    *params.values)
        return [_row(r) for r in records]

    async def measurement_bodies(self, uids: list[str]) -> dict[str, str]:
        if not uids:
            return {}
        records = await self._fetch(
            "SELECT m.uid, b.body, b.body_z, m.archive FROM measurement_uids u "
            "JOIN measurements m ON m.start_time = u.start_time AND m.uid = u.uid "
            "LEFT JOIN measurement_bodies b ON b.start_time = u.start_time AND b.uid = u.uid "
            "WHERE u.uid = ANY($1::text[])", uids)
        # An archived row is read from the archive even while its month's bodies are still
        # here (they wait for the whole month to be dropped).
        bodies = {r["uid"]: stored_body(r) for r in records if r["archive"] is None}
        archived = {r["uid"]: r["archive"] for r in records if r["archive"] is not None}
        bodies.update(await read_archived(self.archive_target, archived))
        return bodies

    async def archive_refs(self, uids: list[str]) -> dict[str, str]:
        if not uids:
            return {}
        records = await self._fetch(
            "SELECT m.uid, m.archive FROM measurement_uids u JOIN measurements m "
            "ON m.start_time = u.start_time AND m.uid = u.uid "
            "WHERE u.uid = ANY($1::text[]) AND m.archive IS NOT NULL", uids)
        return {r["uid"]: r["archive"] for r in records}

    async def archive_candidates(self, before: str, after: tuple[str, str] | None,
                                 limit: int) -> list[ArchiveCandidate]:
        select = ("SELECT m.uid, m.test_name, m.probe_cc, m.start_time, b.body, b.body_z "
                  "FROM measurements m JOIN measurement_bodies b "
                  "ON b.start_time = m.start_time AND b.uid = m.uid "
                  "WHERE m.start_time < $1 AND m.archive IS NULL ")
        if after is None:
            records = await self._fetch(
                select + "ORDER BY m.start_time, m.uid LIMIT $2", _ts(before), limit)
        else:
            records = await self._fetch(
                select + "AND (m.start_time, m.uid) > ($2, $3) "
                "ORDER BY m.start_time, m.uid LIMIT $4",
                _ts(before), _ts(after[0]), after[1], limit)
        return [ArchiveCandidate(r["uid"], r["test_name"], r["probe_cc"],
                                 r["start_time"].strftime(TIME_FORMAT), stored_body(r),
                                 (r["body"], r["body_z"])) for r in records]

    async def mark_archived(self, moves: list[tuple[ArchiveCandidate, str]]) -> int:
        # Only the reference is written: the body stays in its month's partition of
        # measurement_bodies until the whole month is archived, verified and dropped
        # (drop_archived_partitions), which frees the space at once, with no dead rows.
        async def work(conn: asyncpg.Connection) -> int:
            emptied = 0
            for candidate, ref in moves:
                body, body_z = candidate.stored
                status = await conn.execute(
                    "UPDATE measurements m SET archive = $1 "
                    "WHERE m.start_time = $2 AND m.uid = $3 AND m.archive IS NULL "
                    "AND EXISTS (SELECT 1 FROM measurement_bodies b WHERE b.start_time = $2 "
                    "AND b.uid = $3 AND b.body IS NOT DISTINCT FROM $4 "
                    "AND b.body_z IS NOT DISTINCT FROM $5)",
                    ref, _ts(candidate.start_time), candidate.uid, body, body_z)
                emptied += int(status.split()[-1])
            return emptied

        return await self._write(work)

    async def drop_archived_partitions(self, before: str) -> list[str]:
        """Drop each month of ``measurement_bodies`` that ends by ``before`` once every body in
        it is archived and still reads back from the archive identical (by SHA-256); returns
        the partitions dropped. A month with a body not archived (a late upload) or not
        verified stays."""
        cut = _ts(before)
        parts = await self._fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'measurement_bodies'::regclass ORDER BY c.relname")
        dropped: list[str] = []
        for part in parts:
            name = str(part["relname"])
            month = datetime.strptime(name.rsplit("_p", 1)[1], "%Y%m")
            if _next_month(month) > cut or not await self._verified(name):
                continue

            async def work(conn: asyncpg.Connection, name: str = name) -> bool:
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_PARTITIONS)
                # Writers to this month wait here; anything they stored before is counted.
                await conn.execute(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE")
                left = await conn.fetchval(
                    f"SELECT count(*) FROM {name} b JOIN measurements m "
                    f"ON m.start_time = b.start_time AND m.uid = b.uid "
                    f"WHERE m.archive IS NULL")
                if left:
                    return False
                await conn.execute(f"DROP TABLE {name}")
                return True

            if await self._write(work):
                dropped.append(name)
                self.partitions.discard(("measurement_bodies", month))
        return dropped

    async def _verified(self, partition: str, page: int = 2000) -> bool:
        """Whether every body of ``partition`` is archived and its archived copy has the same
        SHA-256 as the one here (read back now, not only when it was written)."""
        after = (datetime(1, 1, 1), "")
        while True:
            records = await self._fetch(
                f"SELECT b.uid, b.body, b.body_z, m.archive, b.start_time FROM {partition} b "
                f"LEFT JOIN measurements m ON m.start_time = b.start_time AND m.uid = b.uid "
                f"WHERE (b.start_time, b.uid) > ($1, $2) "
                f"ORDER BY b.start_time, b.uid LIMIT $3", after[0], after[1], page)
            if not records:
                return True
            if any(r["archive"] is None for r in records):
                return False
            try:
                archived = await read_archived(self.archive_target,
                                               {r["uid"]: r["archive"] for r in records},
                                               fresh=True)
            except ArchiveUnreadable:
                return False
            if any(digest(archived[r["uid"]]) != digest(stored_body(r)) for r in records):
                return False
            after = (records[-1]["start_time"], records[-1]["uid"])

    async def replace_analysis(self, uid: str, body: str, verdict: str | None,
                               layer: str | None, mechanism: str | None, *,
                               archived_as: str | None = None,
                               observation: str | None = None) -> bool:
        async def work(conn: asyncpg.Connection) -> bool:
            found = await conn.fetchrow(
                "SELECT m.start_time, m.probe_cc, m.probe_asn, m.test_name, "
                "coalesce(m.input, ''), coalesce(m.domain, ''), m.verdict, m.archive "
                "FROM measurement_uids u JOIN measurements m "
                "ON m.start_time = u.start_time AND m.uid = u.uid WHERE u.uid = $1 "
                "FOR UPDATE OF m", uid)
            if found is None or (found[7] is not None and archived_as is None):
                return False  # archived since it was read: its body is not brought back
            await conn.execute(
                "UPDATE measurements SET verdict = $1, layer = $2, mechanism = $3, "
                "archive = $4, observation = $7 WHERE uid = $5 AND start_time = $6",
                verdict, layer, mechanism, archived_as, uid, found[0], observation)
            # New bodies live compressed in body_z (the text column is for older rows). An
            # archived row's copy here, until its month is dropped, follows the archive's.
            await conn.execute(
                "UPDATE measurement_bodies SET body = NULL, body_z = $1 "
                "WHERE uid = $2 AND start_time = $3", pack(body), uid, found[0])
            await conn.execute(
                "UPDATE target_state SET verdict = $1, layer = $2, mechanism = $3 "
                "WHERE uid = $4", verdict, layer, mechanism, uid)
            moves = sql.rollup_moves(found[0].strftime(TIME_FORMAT), tuple(found[1:6]),
                                     found[6], verdict)
            for table, statement in SQL.upsert_rollups.items():
                for period, *key in moves[table]:
                    await conn.execute(statement, _ts(period), *key)
                    await conn.execute(DIALECT.text(sql.drop_empty_rollup(table)),
                                       _ts(period), *key[:-1])
            return True

        return await self._write(work)

    async def aggregate(self, filters: Filters, axes: tuple[Axis, ...],
                        max_groups: int) -> list[dict[str, Any]]:
        params = DIALECT.params()
        query = sql.aggregate_query(filters, axes, params, max_groups + 1)
        records = await self._fetch(query, *params.values)
        return [{k: (int(v or 0) if k.endswith("_count") else v) for k, v in r.items()}
                for r in records]

    async def count_measurements(self) -> int:
        records = await self._fetch(SQL.total)
        return int(records[0][0])

    async def latest_by_target(self) -> list[dict[str, Any]]:
        records = await self._fetch(SQL.latest_by_target)
        return [_row(r) for r in records]

    async def target_verdicts(self) -> list[tuple[str, str, str, str, str | None]]:
        records = await self._fetch(SQL.target_verdicts)
        return [(r[0], r[1], r[2], r[3], r[4]) for r in records]

    # --- probes -----------------------------------------------------------------------

    async def add_heartbeat(self, probe_id: str, sent_at: str, received_at: str, body: str,
                            *, queue_depth: int | None = None,
                            software_version: str | None = None) -> None:
        received = _ts(received_at)
        await self._ensure_partitions("heartbeats", {received})

        async def work(conn: asyncpg.Connection) -> None:
            await conn.execute(
                SQL.insert_heartbeat,
                probe_id, _ts(sent_at), received, body, queue_depth, software_version)
            await conn.execute(SQL.upsert_probe, probe_id, received, received, _ts(sent_at),
                               queue_depth, software_version)

        await self._write(work)

    async def probes(self) -> list[dict[str, Any]]:
        records = await self._fetch(SQL.probes)
        return [_row(r) for r in records]

    # --- tokens -----------------------------------------------------------------------

    async def add_token(self, probe_id: str, token_hash: str, created_at: str) -> None:
        async def work(conn: asyncpg.Connection) -> None:
            await conn.execute(SQL.upsert_token, probe_id, token_hash, _ts(created_at))

        await self._write(work)

    async def revoke_token(self, probe_id: str, revoked_at: str) -> bool:
        async def work(conn: asyncpg.Connection) -> bool:
            return _changed(await conn.execute(SQL.revoke_token, _ts(revoked_at), probe_id))

        return await self._write(work)

    async def probe_for_token(self, token_hash: str) -> tuple[str, bool] | None:
        records = await self._fetch(SQL.probe_for_token, token_hash)
        if not records:
            return None
        return str(records[0]["probe_id"]), records[0]["revoked_at"] is not None

    async def tokens(self) -> list[dict[str, Any]]:
        records = await self._fetch(SQL.tokens)
        return [_row(r) for r in records]

    # --- leases -----------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, now: str, expires_at: str) -> bool:
        async def work(conn: asyncpg.Connection) -> bool:
            return _changed(await conn.execute(SQL.acquire_lease, name, holder,
                                               _ts(expires_at), _ts(now)))

        return await self._write(work)

    async def release_lease(self, name: str, holder: str) -> None:
        async def work(conn: asyncpg.Connection) -> None:
            await conn.execute(SQL.release_lease, name, holder)

        await self._write(work)

    async def schema_version(self) -> int:
        records = await self._fetch("SELECT coalesce(max(version), 0) FROM kuzot_schema")
        return int(records[0][0])

    async def close(self) -> None:
        if self.groups is not None:
            await self.groups.close()
        await self.pool.close()


# The summary row with the stored observation; the body goes compressed into
# measurement_bodies.body_z.
_SUMMARY_COLUMNS = [*(c for c in MEASUREMENT_COLUMNS if c != "body"), "observation"]


_SUMMARY_OF = operator.attrgetter(*_SUMMARY_COLUMNS)
_START_AT = _SUMMARY_COLUMNS.index("start_time")
_RECEIVED_AT = _SUMMARY_COLUMNS.index("received_at")


def _values(row: StoredMeasurement) -> tuple[Any, ...]:
    """A row's summary columns in ``_SUMMARY_COLUMNS`` order, its times as timestamps (read
    with one getter in C: every stored row passes here on the event loop)."""
    values = list(_SUMMARY_OF(row))
    values[_START_AT] = _ts(row.start_time)
    values[_RECEIVED_AT] = _ts(row.received_at)
    return tuple(values)


async def _packed_bodies(rows: dict[str, StoredMeasurement]) -> dict[str, bytes]:
    """Each row's stored body by uid; bodies validation did not pack yet are packed on a
    worker thread, before a connection is taken."""
    if all(r.packed is not None for r in rows.values()):
        return {u: r.packed for u, r in rows.items() if r.packed is not None}
    return await asyncio.to_thread(
        lambda: {u: r.packed if r.packed is not None else pack(r.body) for u, r in rows.items()})


def stored_body(record: asyncpg.Record) -> str:
    """A measurement's JSON from its row: ``body_z`` when compressed, else the old text."""
    compressed = record["body_z"]
    return unpack(compressed) if compressed is not None else str(record["body"])


def _target_values(row: StoredMeasurement) -> tuple[Any, ...]:
    return (row.probe_cc, row.probe_asn, row.test_name, target_key(row.input), row.uid,
            _ts(row.start_time), row.verdict, row.layer, row.mechanism)
