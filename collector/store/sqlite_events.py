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

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import aiosqlite

from collector.store import EventFilter, FeedRow

if TYPE_CHECKING:
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

EVENT_COLUMNS = ("id", "kind", "tier", "status", "start", "end", "updated_at", "cc", "asns",
                 "targets", "mechanism", "probes", "evidence")
JSON_COLUMNS = ("asns", "targets", "evidence")


def event_values(event: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(json.dumps(event[c], ensure_ascii=False, separators=(",", ":"))
                 if c in JSON_COLUMNS else event[c] for c in EVENT_COLUMNS)


def event_document(row: Any) -> dict[str, Any]:
    event = {c: row[c] for c in EVENT_COLUMNS}
    for column in JSON_COLUMNS:
        event[column] = json.loads(event[column])
    return event


_UPSERT_EVENT = (
    f"INSERT INTO events ({','.join(f'{chr(34)}{c}{chr(34)}' for c in EVENT_COLUMNS)}) "
    f"VALUES ({','.join('?' * len(EVENT_COLUMNS))}) ON CONFLICT (id) DO UPDATE SET "
    + ",".join(f'"{c}" = excluded."{c}"' for c in EVENT_COLUMNS if c != "id"))


class SQLiteEventsMixin:
    writer: _GroupWriter

    async def _fetch(self, query: str, params: Sequence[Any] = ()) -> list[aiosqlite.Row]:
        raise NotImplementedError  # provided by SQLiteStore

    async def upsert_events(self, events: list[dict[str, Any]]) -> None:
        if not events:
            return

        async def job(db: aiosqlite.Connection) -> None:
            await db.executemany(_UPSERT_EVENT, [event_values(e) for e in events])

        await self.writer.run(job)

    async def events(self, query: EventFilter) -> list[dict[str, Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if query.since is not None:
            clauses.append('("end" IS NULL OR "end" >= ?)')
            params.append(query.since)
        if query.until is not None:
            clauses.append("start < ?")
            params.append(query.until)
        for column, value in (("cc", query.cc), ("kind", query.kind),
                              ("status", query.status), ("tier", query.tier)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if query.asn is not None:
            clauses.append("EXISTS (SELECT 1 FROM json_each(events.asns) WHERE value = ?)")
            params.append(query.asn)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = await self._fetch(
            f"SELECT * FROM events {where} ORDER BY start DESC, id LIMIT ?",
            (*params, query.limit))
        return [event_document(row) for row in rows]

    async def measurement_feed(self, after: int, limit: int) -> list[FeedRow]:
        rows = await self._fetch(
            "SELECT rowid, probe_id, received_at, body FROM measurements WHERE rowid > ?"
            " ORDER BY rowid LIMIT ?", (after, limit))
        return [FeedRow(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    async def heartbeat_feed(self, after: int, limit: int) -> list[FeedRow]:
        rows = await self._fetch(
            "SELECT rowid, probe_id, received_at, body FROM heartbeats WHERE rowid > ?"
            " ORDER BY rowid LIMIT ?", (after, limit))
        return [FeedRow(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    async def load_state(self, name: str) -> str | None:
        rows = await self._fetch("SELECT body FROM detection_state WHERE name = ?", (name,))
        return None if not rows else str(rows[0][0])

    async def save_state(self, name: str, body: str, saved_at: str) -> None:
        async def job(db: aiosqlite.Connection) -> None:
            await db.execute(
                "INSERT INTO detection_state (name, body, saved_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET body = excluded.body,"
                " saved_at = excluded.saved_at", (name, body, saved_at))

        await self.writer.run(job)
