"""PostgreSQL side of detection: events, the detector state, and commit-ordered feeds.

``PostgresStore`` mixes this in; ``MIGRATION`` is ``postgres.MIGRATIONS``' entry for version 2.

Events and state are stored as in SQLite (times as ISO 8601 text, lists and evidence as JSON
text), so both stores answer byte for byte alike.

The feeds must never skip a row: with several writers, a row can commit after a row with a
larger sequence number was already read. So every measurement and heartbeat records the id of
the transaction that wrote it (``xid``, ``pg_current_xact_id()``), and a feed only returns rows
of transactions older than the oldest one still running (``pg_snapshot_xmin`` of the current
snapshot): those have all committed or aborted, and no new row can ever appear below that
watermark. The cursor is a transaction id, and a page always holds whole transactions.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import asyncpg

from collector.store import sql
from collector.store.archive import feed_bodies
from collector.store.body import unpack
from collector.store.interface import EventFilter, FeedRow
from collector.store.sql import event_document, event_values

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from collector.store.sql import Dialect, Statements

MIGRATION: tuple[str, ...] = (
    """CREATE TABLE events (
        id text COLLATE "C" PRIMARY KEY,
        kind text COLLATE "C" NOT NULL,
        tier text COLLATE "C" NOT NULL,
        status text COLLATE "C" NOT NULL,
        start text COLLATE "C" NOT NULL,
        "end" text COLLATE "C",
        updated_at text COLLATE "C" NOT NULL,
        cc text COLLATE "C" NOT NULL,
        asns text NOT NULL,
        targets text NOT NULL,
        mechanism text COLLATE "C",
        probes integer NOT NULL,
        evidence text NOT NULL)""",
    "CREATE INDEX events_start ON events (start, id)",
    "CREATE INDEX events_status ON events (status, kind, cc)",
    """CREATE TABLE detection_state (
        name text COLLATE "C" PRIMARY KEY,
        body text NOT NULL,
        saved_at timestamp NOT NULL)""",
    "ALTER TABLE measurements ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id()",
    "CREATE INDEX measurements_xid ON measurements (xid)",
    "ALTER TABLE heartbeats ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id()",
    "CREATE INDEX heartbeats_xid ON heartbeats (xid)",
)

# Rows of finished transactions after the cursor, whole transactions only: every row up to
# the transaction of the ``$2``-th row, so a page holds at least ``$2`` rows unless it is the
# end of what is committed, and past them only the rest of that transaction. The cutoff comes
# from the first ``$2`` rows in xid order, an index scan per partition (a merge of them), so a
# page costs the same whatever the backlog behind it. (Counting rows per transaction with
# GROUP BY aggregated every unread row: about a second per page at 10M rows, so a catch-up
# was quadratic in its backlog.)
_FEED = """
SELECT xid::text::bigint AS seq, probe_id, to_char(received_at, 'YYYY-MM-DD HH24:MI:SS') AS
       received_at, {body} AS body, {body_z} AS body_z, {archive} AS archive, {uid} AS uid,
       {observation} AS observation
FROM {source}
WHERE xid > $1::text::xid8
  AND xid <= (SELECT coalesce(max(xid), $1::text::xid8) FROM (
        SELECT xid FROM {table}
        WHERE xid > $1::text::xid8 AND xid < pg_snapshot_xmin(pg_current_snapshot())
        ORDER BY xid LIMIT $2) AS first_rows)
ORDER BY xid, received_at
"""


def feed_query(table: str) -> str:
    """The feed's query for ``measurements`` or ``heartbeats``: $1 the cursor (a transaction
    id as text), $2 the page's row limit."""
    # Only measurements have compressed bodies (body_z); heartbeats are short.
    # Only measurements can be archived (collector.store.archive).
    # A measurement's body is in measurement_bodies (postgres.py), or in the archive.
    # A measurement with its observation stored (collector.detect.observed) needs no body:
    # none is looked up, detoasted, decompressed or fetched from the archive for it. The
    # lookup is one index probe per row that needs it (OFFSET 0 keeps the planner from
    # turning it into a join over every body, which it cannot bound: the page's end is
    # only known when the query runs).
    bodies = ("LEFT JOIN LATERAL (SELECT b.body, b.body_z FROM measurement_bodies b "
              "WHERE b.start_time = m.start_time AND b.uid = m.uid "
              "AND m.observation IS NULL OFFSET 0) AS kept ON true")
    columns = ({"body": "kept.body", "body_z": "kept.body_z",
                "archive": "CASE WHEN observation IS NULL THEN archive END",
                "uid": "m.uid", "observation": "observation",
                "source": f"measurements m {bodies}"}
               if table == "measurements" else
               {"body": "body", "body_z": "NULL::bytea", "archive": "NULL::text",
                "uid": "NULL::text", "observation": "NULL::text", "source": table})
    return _FEED.format(table=table, **columns)


_FEEDS = {table: feed_query(table) for table in ("measurements", "heartbeats")}


class PostgresEventsMixin:
    dialect: Dialect
    statements: Statements

    if TYPE_CHECKING:
        async def _write(self, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any: ...

        async def _fetch(self, query: str, *args: Any) -> list[asyncpg.Record]: ...

    async def upsert_events(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return
        rows = sorted((event_values(e) for e in events), key=lambda v: str(v[0]))

        async def work(conn: asyncpg.Connection) -> None:
            await conn.executemany(self.statements.upsert_event, rows)

        await self._write(work)

    async def events(self, query: EventFilter) -> list[dict[str, Any]]:
        params = self.dialect.params()
        records = await self._fetch(sql.events_query(query, params), *params.values)
        return [event_document(r) for r in records]

    async def _feed(self, table: str, after: int, limit: int) -> list[FeedRow]:
        records = await self._fetch(_FEEDS[table], str(after), limit)
        # Decompressed on a worker thread, beside the event loop (see the SQLite feed).
        decoded = await asyncio.to_thread(lambda: [
            (r["uid"], unpack(r["body_z"]) if r["body_z"] is not None else r["body"],
             r["archive"]) for r in records])
        bodies = await feed_bodies(getattr(self, "archive_target", None), decoded)
        return [FeedRow(int(r["seq"]), r["probe_id"], r["received_at"], body, r["observation"],
                        r["uid"] or "")
                for r, body in zip(records, bodies, strict=True)]

    async def measurement_feed(self, after: int, limit: int) -> list[FeedRow]:
        """Whole transactions (each a batch of measurements) up to the one that reaches
        ``limit`` rows: fewer than ``limit`` rows only when no more are committed, so that
        the pipeline can tell a full chunk (read on) from the end of the feed. (Stopping
        before the transaction that would pass ``limit`` gave short chunks while rows waited,
        and the pipeline, taking them for the end, read one chunk per run.)"""
        return await self._feed("measurements", after, limit)

    async def heartbeat_feed(self, after: int, limit: int) -> list[FeedRow]:
        return await self._feed("heartbeats", after, limit)

    async def load_state(self, name: str) -> str | None:
        records = await self._fetch(self.statements.load_state, name)
        return None if not records else str(records[0]["body"])

    async def save_state(self, name: str, body: str, saved_at: str) -> None:
        async def work(conn: asyncpg.Connection) -> None:
            await conn.execute(self.statements.save_state, name, body,
                               self.dialect.time(saved_at))

        await self._write(work)
