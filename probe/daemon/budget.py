"""The throttling tests' byte allowance: a share of the day's one data budget, kept in the
probe's one local database.

Volunteers pay for their data (OONI users ask for data caps). The day's budget
(``budget.daily_mb``) counts every byte the probe moves, in the local database's ``usage``
table (``probe.local.journal``). Throttling tests are the only checks that move real volume, so
before each transfer they ask this allowance, which says yes only while both hold:

* the throttling tests' own share of the day (``throttling.daily_budget_bytes``), counted in
  the same database (table ``allowances``) as transfers happen, is not spent;
* the day's whole budget is not spent either: what the daemon counted today (sites, uploads,
  heartbeats, earlier throttling measurements) plus what this round moved so far (it reaches
  the day's count when the round's measurements are recorded).

A day whose site rounds spent the budget so runs no throttling transfer, and a day whose
throttling spent it measures no more sites (the daemon's ``may_measure``). The day is the UTC
calendar day; the time of the last round is kept too (table ``state``), so the cadence holds
across restarts.

Probes before this kept the allowance in a JSON file (``throttling.budget_file``):
``migrate_file`` reads it once into the database and renames it ``*.migrated``, so nothing a
volunteer's probe had counted is lost.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from probe.local.localdb import LocalDB, transaction

log = logging.getLogger(__name__)

THROTTLING = "throttling"  # the allowance's name in the table
LAST_ROUND = "throttling_last_round"  # state key: epoch seconds of the last round's start
MIGRATED_SUFFIX = ".migrated"


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def read_allowance(db: sqlite3.Connection, day: str, name: str = THROTTLING) -> int:
    row = db.execute("SELECT bytes FROM allowances WHERE day = ? AND name = ?",
                     (day, name)).fetchone()
    return int(row[0]) if row else 0


def write_allowance(db: sqlite3.Connection, day: str, nbytes: int,
                    name: str = THROTTLING) -> None:
    """Add ``nbytes`` to ``name``'s count of ``day``; older days are dropped (only today's
    count is ever read)."""
    db.execute("INSERT INTO allowances (day, name, bytes) VALUES (?, ?, ?) "
               "ON CONFLICT (day, name) DO UPDATE SET bytes = bytes + excluded.bytes",
               (day, name, nbytes))
    db.execute("DELETE FROM allowances WHERE day < ?", (day,))


def _read_state(db: sqlite3.Connection, key: str) -> str | None:
    row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
    return str(row[0]) if row else None


def _write_state(db: sqlite3.Connection, key: str, value: str) -> None:
    db.execute("INSERT INTO state (key, value) VALUES (?, ?) "
               "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))


class ByteBudget:
    """``await allows(n)`` before a transfer of at most n bytes, ``await charge(n)`` after it.

    ``db`` is the local database the allowance lives in; without one (a single test from the
    command line) it counts in memory. ``day_left`` says how much of the day's whole budget
    is left (None: no cap).
    """

    def __init__(self, daily_bytes: int, db: LocalDB | None = None, *,
                 day_left: Callable[[], int | None] = lambda: None,
                 clock: Callable[[], float] = time.time) -> None:
        self.daily_bytes = daily_bytes
        self.db = db
        self.day_left = day_left
        self.clock = clock
        self.pending = 0  # charged here, not yet in the day's count
        self._memory: dict[str, int] = {}
        self._last_round: float | None = None

    async def used(self) -> int:
        """What throttling transfers moved today."""
        day = _day(self.clock())
        if self.db is None:
            return self._memory.get(day, 0)
        return await self.db.run(lambda db: read_allowance(db, day))

    async def remaining(self) -> int:
        own = max(0, self.daily_bytes - await self.used())
        left = self.day_left()
        return own if left is None else min(own, max(0, left - self.pending))

    async def allows(self, nbytes: int) -> bool:
        return await self.remaining() >= nbytes

    async def charge(self, nbytes: int) -> None:
        nbytes, day = max(0, nbytes), _day(self.clock())
        self.pending += nbytes
        if self.db is None:
            self._memory[day] = self._memory.get(day, 0) + nbytes
            return
        await self.db.run(lambda db: transaction(db, lambda: write_allowance(db, day, nbytes)))

    async def last_round(self) -> float | None:
        if self.db is None:
            return self._last_round
        value = await self.db.run(lambda db: _read_state(db, LAST_ROUND))
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    async def mark_round(self) -> None:
        """Remember that a throttling round started now."""
        now = self.clock()
        self._last_round = now
        if self.db is not None:
            await self.db.run(lambda db: _write_state(db, LAST_ROUND, repr(now)))

    async def due(self, interval: float) -> bool:
        """Whether ``interval`` seconds have passed since the last round (or none ran)."""
        last = await self.last_round()
        return last is None or self.clock() - last >= interval


async def migrate_file(db: LocalDB, path: str | Path, now: float | None = None) -> bool:
    """Read a throttling budget file of an older probe into the database, once: today's count
    (if the file is of today) and the time of the last round, unless the database already
    knows a later one. The file is then renamed ``<name>.migrated``; an unreadable file is
    renamed too (it held nothing the old probe could use either). True if a file was found."""
    source = Path(path)
    if not source.is_file():
        return False
    today = _day(time.time() if now is None else now)
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("throttling budget file %s not readable (%s); renamed, not migrated",
                    source, exc)
        data = None
    used = data.get("used") if isinstance(data, dict) else None
    last = data.get("last_round") if isinstance(data, dict) else None

    def write(db: sqlite3.Connection) -> None:
        def statements() -> None:
            if isinstance(data, dict) and data.get("day") == today and \
                    isinstance(used, int) and used > read_allowance(db, today):
                write_allowance(db, today, used - read_allowance(db, today))
            if isinstance(last, int | float) and not isinstance(last, bool):
                known = _read_state(db, LAST_ROUND)
                if known is None or float(known) < last:
                    _write_state(db, LAST_ROUND, repr(float(last)))

        transaction(db, statements)

    await db.run(write)
    os.replace(source, source.with_name(source.name + MIGRATED_SUFFIX))
    log.info("throttling budget file %s moved into the local database (renamed %s)", source,
             source.name + MIGRATED_SUFFIX)
    return True
