"""Store-and-forward: every measurement is written here first, then uploaded, then deleted.

During a shutdown the collector is unreachable for hours or days, and those are exactly the
measurements that matter. So nothing goes to the network straight from a check: it is
committed to the spool (``probe.local.localdb``), uploaded in order when the collector answers,
and deleted only once the collector has said it is durable. Bodies are stored exactly as they
will be sent, so the original timestamps travel unchanged.

The spool has a size cap. When a long blackout fills it, the oldest measurements are evicted
first, and every eviction is counted (``evicted``, ``evicted_bytes``) and reported in the
heartbeat, ``probe status`` and ``/metrics``: losing data silently is worse than losing it.
A measurement the collector rejects as malformed is moved to ``quarantine`` with the reason
instead of being retried forever or dropped.

Depth and counters are always read from the database (``count(*)`` and ``sum(size)`` over a
covering index, the ``counters`` table), never kept as running totals in memory: a total
kept in memory drifts as soon as anything else changes the file (a second process on the
same spool once drove the queue depth below zero, and every heartbeat carrying it was
refused), while a count of rows cannot be negative or wrong.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from probe.local.localdb import LocalDB, transaction

COUNTERS = ("enqueued", "uploaded", "evicted", "evicted_bytes", "quarantined")
QUARANTINE_KEEP = 100


@dataclass(frozen=True, slots=True)
class Entry:
    """One measurement as spooled: a few columns for status and batching, and the body."""

    uid: str
    test_name: str
    input: str | None
    start_time: str
    body: str


@dataclass(frozen=True, slots=True)
class Depth:
    measurements: int
    bytes: int
    oldest: str | None


def _bump(db: sqlite3.Connection, name: str, amount: int) -> None:
    db.execute("INSERT INTO counters (name, value) VALUES (?, ?) "
               "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, amount))


def read_counters(db: sqlite3.Connection) -> dict[str, int]:
    values = dict.fromkeys(COUNTERS, 0)
    values.update({name: int(value) for name, value in
                   db.execute("SELECT name, value FROM counters")})
    return values


def read_size(db: sqlite3.Connection) -> tuple[int, int]:
    """How many measurements wait and their bytes (the ``spool_size`` index covers both)."""
    count, size = db.execute("SELECT count(*), coalesce(sum(size), 0) FROM spool").fetchone()
    return int(count), int(size)


def read_depth(db: sqlite3.Connection) -> Depth:
    count, size = read_size(db)
    row = db.execute("SELECT start_time FROM spool ORDER BY seq LIMIT 1").fetchone()
    return Depth(count, size, row[0] if row else None)


class Spool:
    """The queue of measurements waiting for the collector, capped at ``max_bytes``."""

    def __init__(self, db: LocalDB, max_bytes: int) -> None:
        self.db = db
        self.max_bytes = max_bytes

    async def put(self, entries: Iterable[Entry],
                  also: Callable[[sqlite3.Connection], None] | None = None) -> int:
        """Commit ``entries``; evict the oldest while over the cap. Returns how many were
        evicted (possibly including some of ``entries`` if one alone exceeds the cap).

        ``also`` runs more statements in the same transaction (the journal's verdict and data
        use): one commit, so one flush to an SD card, per measurement.
        """
        rows = [(e.uid, e.test_name, e.input, e.start_time, len(e.body.encode()), e.body)
                for e in entries]

        def write(db: sqlite3.Connection) -> int:
            def statements() -> int:
                inserted = 0
                for row in rows:
                    cursor = db.execute(
                        "INSERT OR IGNORE INTO spool (uid, test_name, input, start_time, size, "
                        "body) VALUES (?, ?, ?, ?, ?, ?)", row)
                    inserted += cursor.rowcount
                _bump(db, "enqueued", inserted)
                if also is not None:
                    also(db)
                return self._evict(db, read_size(db)[1])

            return transaction(db, statements)

        return await self.db.run(write)

    def _evict(self, db: sqlite3.Connection, total: int) -> int:
        """Delete the oldest rows until ``total`` (the spool's bytes) fits the cap."""
        evicted = evicted_bytes = 0
        cutoff = 0
        while total > self.max_bytes:
            rows = db.execute("SELECT seq, size FROM spool WHERE seq > ? ORDER BY seq LIMIT 256",
                              (cutoff,)).fetchall()
            if not rows:
                break
            for seq, size in rows:
                if total <= self.max_bytes:
                    break
                cutoff = seq
                total -= size
                evicted += 1
                evicted_bytes += size
        if evicted:
            db.execute("DELETE FROM spool WHERE seq <= ?", (cutoff,))
            _bump(db, "evicted", evicted)
            _bump(db, "evicted_bytes", evicted_bytes)
        return evicted

    async def batch(self, limit: int, max_bytes: int) -> list[Entry]:
        """The oldest entries, at most ``limit`` of them and about ``max_bytes`` (always at
        least one, so a single large measurement cannot block the queue)."""

        def read(db: sqlite3.Connection) -> list[Entry]:
            out: list[Entry] = []
            size = 0
            for uid, test_name, input_, start, length, body in db.execute(
                    "SELECT uid, test_name, input, start_time, size, body FROM spool "
                    "ORDER BY seq LIMIT ?", (limit,)):
                if out and size + length > max_bytes:
                    break
                out.append(Entry(uid, test_name, input_, start, body))
                size += length
            return out

        return await self.db.run(read)

    async def ack(self, uids: Iterable[str]) -> int:
        """Delete what the collector stored durably; returns how many were deleted."""
        keys = [(uid,) for uid in uids]

        def delete(db: sqlite3.Connection) -> int:
            def statements() -> int:
                deleted = 0
                for key in keys:
                    deleted += db.execute("DELETE FROM spool WHERE uid = ?", key).rowcount
                _bump(db, "uploaded", deleted)
                return deleted

            return transaction(db, statements)

        return await self.db.run(delete)

    async def quarantine(self, uid: str, reason: str, now: str) -> None:
        """Move one measurement the collector refuses aside, keeping the newest few."""

        def move(db: sqlite3.Connection) -> None:
            def statements() -> None:
                row = db.execute("SELECT size, body FROM spool WHERE uid = ?", (uid,)).fetchone()
                if row is None:
                    return
                db.execute("INSERT OR REPLACE INTO quarantine (uid, reason, quarantined_at, "
                           "size, body) VALUES (?, ?, ?, ?, ?)", (uid, reason[:500], now, *row))
                db.execute("DELETE FROM spool WHERE uid = ?", (uid,))
                db.execute("DELETE FROM quarantine WHERE uid NOT IN (SELECT uid FROM "
                           "quarantine ORDER BY quarantined_at DESC LIMIT ?)",
                           (QUARANTINE_KEEP,))
                _bump(db, "quarantined", 1)

            transaction(db, statements)

        await self.db.run(move)

    def _rewrite_rows(self, db: sqlite3.Connection, rows: list[Any],
                      change: Callable[[str], str]) -> int:
        """Apply ``change`` to ``(seq, body, size)`` rows in one transaction."""

        def statements() -> int:
            changed = 0
            for seq, body, _size in rows:
                new = change(body)
                if new != body:
                    db.execute("UPDATE spool SET body = ?, size = ? WHERE seq = ?",
                               (new, len(new.encode()), seq))
                    changed += 1
            return changed

        return transaction(db, statements)

    async def rewrite_some(self, uids: Collection[str], change: Callable[[str], str],
                           chunk: int = 200) -> int:
        """Apply ``change`` to the spooled bodies of ``uids`` (those still waiting; others
        are gone); returns how many changed."""
        wanted = sorted(uids)
        total = 0
        for index in range(0, len(wanted), chunk):
            part = wanted[index:index + chunk]

            def step(db: sqlite3.Connection, part: list[str] = part) -> int:
                marks = ",".join("?" * len(part))
                rows = db.execute(f"SELECT seq, body, size FROM spool WHERE uid IN ({marks})",
                                  part).fetchall()
                return self._rewrite_rows(db, rows, change)

            total += await self.db.run(step)
        return total

    async def rewrite(self, change: Callable[[str], str], chunk: int = 200) -> int:
        """Apply ``change`` to every spooled body (a new address to scrub); returns how many
        bodies changed. Runs in chunks so the writer is never held for long."""

        def step(db: sqlite3.Connection, after: int) -> tuple[int, int]:
            rows = db.execute("SELECT seq, body, size FROM spool WHERE seq > ? ORDER BY seq "
                              "LIMIT ?", (after, chunk)).fetchall()
            changed = self._rewrite_rows(db, rows, change)
            return (rows[-1][0] if rows else -1), changed

        total = 0
        after = 0
        while True:
            last, changed = await self.db.run(lambda db, a=after: step(db, a))  # type: ignore[misc]
            total += changed
            if last < 0:
                break
            after = last
        if total:
            await self.db.run(lambda db: db.execute("PRAGMA wal_checkpoint(TRUNCATE)"))
        return total

    async def depth(self) -> Depth:
        """Count and bytes of what waits, and the oldest start time (the first row's)."""
        return await self.db.run(read_depth)

    async def counters(self) -> dict[str, int]:
        return await self.db.run(read_counters)

    async def compact(self) -> None:
        """Give free pages back to the file system after a backlog has gone out."""

        def vacuum(db: sqlite3.Connection) -> None:
            db.execute("PRAGMA incremental_vacuum")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

        await self.db.run(vacuum)
