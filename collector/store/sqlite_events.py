"""SQLite side of detection: the events table, the ingest feeds and the detector state.

Kept apart from ``sqlite.py`` (measurements, heartbeats, tokens) so each file has one job.
``SQLiteStore`` mixes this in; writes go through its group writer, reads through its read
connection. ``MIGRATION`` is ``sqlite.MIGRATIONS``' entry for version 3.

* ``events``: one row per event, updated in place by ``id`` (an upsert), the columns named as
  the API's fields (``asns``, ``targets`` and ``evidence`` are JSON text; times are ISO 8601
  with a ``Z``, which sort as text in time order).
* Feeds: measurements and heartbeats by SQLite's ``rowid``. Only one writer commits at a time
  (``BEGIN IMMEDIATE``) and these tables are only appended to (and pruned from the old end),
  so rowids are handed out in commit order and a cursor never skips a row.
* ``detection_state``: named JSON documents, the detectors' serialized state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import aiosqlite

from collector.store import sql
from collector.store.archive import feed_bodies
from collector.store.body import unpack
from collector.store.interface import EventFilter, FeedRow
from collector.store.sql import event_document, event_values

if TYPE_CHECKING:
    from collector.store.sql import Dialect, Statements
    from collector.store.sqlite import _GroupWriter

MIGRATION: tuple[str, ...] = (
    """CREATE TABLE events (
        id TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        tier TEXT NOT NULL,
        status TEXT NOT NULL,
        start TEXT NOT NULL,
        "end" TEXT,
        updated_at TEXT NOT NULL,
        cc TEXT NOT NULL,
        asns TEXT NOT NULL,
        targets TEXT NOT NULL,
        mechanism TEXT,
        probes INTEGER NOT NULL,
        evidence TEXT NOT NULL)""",
    "CREATE INDEX events_start ON events (start, id)",
    "CREATE INDEX events_status ON events (status, kind, cc)",
    """CREATE TABLE detection_state (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        saved_at TEXT NOT NULL)""",
)


class SQLiteEventsMixin:
    writer: _GroupWriter
    dialect: Dialect
    statements: Statements

    async def _fetch(self, query: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        raise NotImplementedError  # provided by SQLiteStore

    async def upsert_events(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return

        async def job(db: aiosqlite.Connection) -> None:
            await db.executemany(self.statements.upsert_event,
                                 [event_values(e) for e in events])

        await self.writer.run(job)

    async def events(self, query: EventFilter) -> list[dict[str, Any]]:
        params = self.dialect.params()
        rows = await self._fetch(sql.events_query(query, params), params.values)
        return [event_document(row) for row in rows]

    async def measurement_feed(self, after: int, limit: int) -> list[FeedRow]:
        # A row with its observation stored needs no body: none is read, decompressed or
        # fetched from the archive for it.
        rows = await self._fetch(
            "SELECT rowid, probe_id, received_at, "
            "CASE WHEN observation IS NULL THEN body END, uid, "
            "CASE WHEN observation IS NULL THEN archive END, observation FROM measurements "
            "WHERE rowid > ? ORDER BY rowid LIMIT ?", (after, limit))
        # Decompressed on a worker thread (zlib lets the event loop serve requests meanwhile):
        # a page is hundreds of bodies, read while uploads keep arriving.
        decoded: list[tuple[str, str | None, str | None]] = await asyncio.to_thread(
            lambda: [(r[4], None if r[3] is None else unpack(r[3]), r[5]) for r in rows])
        bodies = await feed_bodies(getattr(self, "archive_target", None), decoded)
        return [FeedRow(int(r[0]), str(r[1]), str(r[2]), body, r[6], str(r[4]))
                for r, body in zip(rows, bodies, strict=True)]

    async def heartbeat_feed(self, after: int, limit: int) -> list[FeedRow]:
        rows = await self._fetch(
            "SELECT rowid, probe_id, received_at, body FROM heartbeats WHERE rowid > ?"
            " ORDER BY rowid LIMIT ?", (after, limit))
        return [FeedRow(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    async def load_state(self, name: str) -> str | None:
        rows = await self._fetch(self.statements.load_state, (name,))
        return None if not rows else str(rows[0][0])

    async def save_state(self, name: str, body: str, saved_at: str) -> None:
        async def job(db: aiosqlite.Connection) -> None:
            await db.execute(self.statements.save_state, (name, body, saved_at))

        await self.writer.run(job)
