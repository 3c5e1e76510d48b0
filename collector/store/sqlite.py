"""SQLite store: the embedded default. WAL journal, one transaction per batch, synchronous=FULL.

``synchronous=FULL`` in WAL mode makes each commit durable across power loss, which the
ingest contract needs (200 only after the batch is durable). Parameterised SQL only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosqlite

from collector.store import StoredMeasurement

SCHEMA_VERSION = 1
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

_COLUMNS = ("uid", "probe_id", "test_name", "input", "probe_cc", "probe_asn", "start_time",
            "received_at", "verdict", "layer", "mechanism", "body")


class SQLiteStore:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self.db = db

    @classmethod
    async def open(cls, path: str) -> SQLiteStore:
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=FULL")
        await db.execute("PRAGMA busy_timeout=5000")
        await db.executescript(SCHEMA)
        await db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        return cls(db)

    async def add_measurements(self, rows: list[StoredMeasurement]) -> list[str]:
        if not rows:
            return []
        placeholders = ",".join("?" for _ in _COLUMNS)
        inserted: list[str] = []
        await self.db.execute("BEGIN IMMEDIATE")
        try:
            for row in rows:
                cursor = await self.db.execute(
                    f"INSERT OR IGNORE INTO measurements ({','.join(_COLUMNS)}) "
                    f"VALUES ({placeholders})",
                    tuple(getattr(row, c) for c in _COLUMNS),
                )
                if cursor.rowcount == 1:
                    inserted.append(row.uid)
            await self.db.execute("COMMIT")
        except BaseException:
            await self.db.execute("ROLLBACK")
            raise
        return inserted

    async def measurements(
        self, *, since: str | None = None, until: str | None = None, cc: str | None = None,
        asn: str | None = None, test_name: str | None = None, input: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        clauses, params = [], []
        for column, op, value in (("start_time", ">=", since), ("start_time", "<", until),
                                  ("probe_cc", "=", cc), ("probe_asn", "=", asn),
                                  ("test_name", "=", test_name), ("input", "=", input)):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        cursor = await self.db.execute(
            f"SELECT * FROM measurements {where} ORDER BY start_time DESC, uid LIMIT ?",
            (*params, limit),
        )
        return [dict(r) for r in await cursor.fetchall()]

    async def count_measurements(self) -> int:
        cursor = await self.db.execute("SELECT count(*) FROM measurements")
        row = await cursor.fetchone()
        return int(row[0]) if row else 0

    async def latest_by_target(self) -> list[dict[str, Any]]:
        cursor = await self.db.execute(
            "SELECT m.probe_cc, m.probe_asn, m.test_name, m.input, m.verdict, m.layer, "
            "m.mechanism, m.start_time FROM measurements m JOIN ("
            " SELECT probe_cc, probe_asn, test_name, input, max(start_time) AS t"
            " FROM measurements GROUP BY probe_cc, probe_asn, test_name, input) l"
            " ON m.probe_cc = l.probe_cc AND m.probe_asn = l.probe_asn"
            " AND m.test_name = l.test_name AND m.input IS l.input AND m.start_time = l.t"
            " ORDER BY m.input"
        )
        return [dict(r) for r in await cursor.fetchall()]

    async def verdict_counts(self) -> list[tuple[str, str, str, str, int]]:
        cursor = await self.db.execute(
            "SELECT test_name, probe_cc, probe_asn, coalesce(verdict, 'none'), count(*)"
            " FROM measurements GROUP BY 1, 2, 3, 4"
        )
        return [(r[0], r[1], r[2], r[3], int(r[4])) for r in await cursor.fetchall()]

    async def add_heartbeat(self, probe_id: str, sent_at: str, received_at: str,
                            body: str) -> None:
        await self.db.execute(
            "INSERT INTO heartbeats (probe_id, sent_at, received_at, body) VALUES (?, ?, ?, ?)",
            (probe_id, sent_at, received_at, body),
        )

    async def add_token(self, probe_id: str, token_hash: str, created_at: str) -> None:
        await self.db.execute(
            "INSERT INTO tokens (probe_id, token_hash, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (probe_id) DO UPDATE SET token_hash = excluded.token_hash, "
            "created_at = excluded.created_at, revoked_at = NULL",
            (probe_id, token_hash, created_at),
        )

    async def revoke_token(self, probe_id: str, revoked_at: str) -> bool:
        cursor = await self.db.execute(
            "UPDATE tokens SET revoked_at = ? WHERE probe_id = ? AND revoked_at IS NULL",
            (revoked_at, probe_id),
        )
        return cursor.rowcount == 1

    async def probe_for_token(self, token_hash: str) -> tuple[str, bool] | None:
        cursor = await self.db.execute(
            "SELECT probe_id, revoked_at FROM tokens WHERE token_hash = ?", (token_hash,)
        )
        row = await cursor.fetchone()
        if row is None:
            return None
        return str(row[0]), row[1] is not None

    async def tokens(self) -> list[dict[str, Any]]:
        cursor = await self.db.execute(
            "SELECT probe_id, created_at, revoked_at FROM tokens ORDER BY probe_id")
        return [dict(r) for r in await cursor.fetchall()]

    async def close(self) -> None:
        await self.db.close()
