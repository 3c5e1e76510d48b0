"""The probe's one local file: a SQLite database holding the spool and the probe's journal.

Why SQLite: a Raspberry Pi loses power without warning, and an append-only JSON file would
be left half-written. SQLite in WAL mode with ``synchronous=FULL`` makes each committed
measurement survive a crash or a power cut, and ``secure_delete`` overwrites what is deleted,
so a measurement rewritten after a scrub leaves no old copy in free pages.

Every operation is a plain synchronous function run on one worker thread (``LocalDB.run``):
a transaction is then a single call that no other coroutine can interleave with, and a slow SD
card never blocks the event loop (which would distort the timings of running measurements).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    uid TEXT NOT NULL UNIQUE,
    test_name TEXT NOT NULL,
    input TEXT,
    start_time TEXT NOT NULL,
    size INTEGER NOT NULL,
    body TEXT NOT NULL
);
-- count(*) and sum(size) read from this index alone: the spool's depth is counted, not kept.
CREATE INDEX IF NOT EXISTS spool_size ON spool (size);
CREATE TABLE IF NOT EXISTS quarantine (
    uid TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    quarantined_at TEXT NOT NULL,
    size INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage (
    day TEXT PRIMARY KEY,
    bytes INTEGER NOT NULL DEFAULT 0,
    measurements INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS verdicts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    test_name TEXT NOT NULL,
    start_time TEXT NOT NULL,
    verdict TEXT,
    layer TEXT,
    mechanism TEXT,
    summary TEXT
);
CREATE INDEX IF NOT EXISTS verdicts_target ON verdicts (target, seq);
CREATE TABLE IF NOT EXISTS own_addresses (digest TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS allowances (
    day TEXT NOT NULL,
    name TEXT NOT NULL,
    bytes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, name)
);
"""


def _connect(path: str) -> sqlite3.Connection:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        # auto_vacuum can only be chosen before the first table exists; INCREMENTAL lets the
        # file give space back to a small SD card after a large backlog is uploaded.
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA secure_delete = ON")
    db.execute("PRAGMA journal_size_limit = 4194304")
    if version > SCHEMA_VERSION:
        db.close()
        raise RuntimeError(f"{path}: written by a newer probe (schema {version})")
    db.executescript(_SCHEMA)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return db


class LocalDB:
    """One SQLite connection owned by one worker thread."""

    def __init__(self, db: sqlite3.Connection, executor: ThreadPoolExecutor, path: str) -> None:
        self._db = db
        self._executor = executor
        self.path = path

    @classmethod
    async def open(cls, path: str) -> LocalDB:
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kuzot-db")
        loop = asyncio.get_running_loop()
        db = await loop.run_in_executor(executor, _connect, path)
        return cls(db, executor, path)

    async def run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``operation(connection)`` on the database thread; it may open a transaction."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, operation, self._db)

    async def close(self) -> None:
        def finish(db: sqlite3.Connection) -> None:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.close()

        await self.run(finish)
        self._executor.shutdown(wait=True)


def transaction(db: sqlite3.Connection, statements: Callable[[], T]) -> T:
    """Run ``statements`` inside BEGIN IMMEDIATE ... COMMIT (rolled back on error)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = statements()
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result


class SpoolLocked(RuntimeError):
    """Another process holds the local database: two daemons on one spool would upload,
    count and evict each other's measurements."""

    def __init__(self, lock_path: str, pid: int | None) -> None:
        holder = f"process {pid}" if pid else "another process"
        super().__init__(f"{holder} already runs a probe on this spool (lock {lock_path}); "
                         f"stop it first, or give this one its own spool_path")
        self.pid = pid


class SpoolLock:
    """An exclusive ``flock`` on ``<database>.lock``, held for the daemon's lifetime.

    The kernel drops the lock when the process ends, however it ends, so a crash never
    leaves a stale lock behind. The file keeps the holder's pid for the message a second
    process prints; it is not removed on release (removing a lock file races with a process
    that has just opened it).
    """

    def __init__(self, fd: int, path: str) -> None:
        self._fd: int | None = fd
        self.path = path

    @classmethod
    def acquire(cls, database: str) -> SpoolLock:
        path = f"{database}.lock"
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise SpoolLocked(path, int(text) if text.isdigit() else None) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(fd, path)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


def open_readonly(path: str) -> sqlite3.Connection:
    """A read-only connection for ``probe status`` while the daemon keeps writing."""
    if not Path(path).exists():
        raise FileNotFoundError(path)
    return sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
