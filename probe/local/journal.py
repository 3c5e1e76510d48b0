"""What the probe remembers about itself: upload and heartbeat times, data used per day,
recent verdicts per target, event windows, and the digests of its own addresses.

It lives in the same SQLite file as the spool so that ``python -m probe status`` can answer
from one file, also while the daemon is stopped, and so that the data budget and the learned
addresses survive a reboot. Times are stored as text, "YYYY-MM-DD HH:MM:SS" UTC.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any

from probe.local.localdb import LocalDB, transaction
from probe.nettests.connectivity.nettest import TARGET
from probe.nettests.registry import by_test_name

RECENT_PER_TARGET = 5
LADDER_TARGET = TARGET

# Keys of the ``state`` table.
LAST_UPLOAD = "last_upload_at"
LAST_UPLOAD_ATTEMPT = "last_upload_attempt_at"
LAST_UPLOAD_ERROR = "last_upload_error"
LAST_HEARTBEAT = "last_heartbeat_at"
LAST_HEARTBEAT_ATTEMPT = "last_heartbeat_attempt_at"
LAST_HEARTBEAT_ERROR = "last_heartbeat_error"
EVENT_WINDOWS = "event_windows"
ADDRESS_KEY = "address_key"
STARTED = "started_at"
STOPPED = "stopped_at"
CENSOR_TRACES = "censor_traces_today"  # "<UTC day> <traces run that day>"
CLOCK_STATUS = "clock_status"  # unverified, ok or off (probe.daemon.clock_check)
CLOCK_OFFSET = "clock_offset_s"  # collector's time minus the probe's at the last check
CLOCK_CHECKED = "clock_checked_at"  # the probe's own time of that check
# The controls as the last web measurement found them (JSON: endpoint, path, blocked, at).
CONTROLS = "controls"
# The last signed endpoint announcement applied (JSON: serial, expires, endpoints).
ANNOUNCED = "announced_endpoints"
# How the collector was reached last (JSON: endpoint, path, fallback, at; probe.daemon.endpoints).
COLLECTOR_PATH = "collector_path"


@dataclass(frozen=True, slots=True)
class Verdict:
    target: str
    test_name: str
    start_time: str
    verdict: str | None
    layer: str | None = None
    mechanism: str | None = None
    summary: str | None = None


def read_state(db: sqlite3.Connection) -> dict[str, str]:
    return {k: v for k, v in db.execute("SELECT key, value FROM state") if k != ADDRESS_KEY}


def read_usage(db: sqlite3.Connection, day: str) -> tuple[int, int, int]:
    row = db.execute("SELECT bytes, measurements, skipped FROM usage WHERE day = ?",
                     (day,)).fetchone()
    return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)


def read_recent(db: sqlite3.Connection) -> dict[str, list[Verdict]]:
    """Newest first, per target."""
    out: dict[str, list[Verdict]] = {}
    for row in db.execute("SELECT target, test_name, start_time, verdict, layer, mechanism, "
                          "summary FROM verdicts ORDER BY seq DESC"):
        out.setdefault(row[0], []).append(Verdict(*row))
    return out


def write_usage(db: sqlite3.Connection, day: str, traffic: int = 0, measurements: int = 0,
                skipped: int = 0) -> int:
    """Add to one day's counts (inside the caller's transaction); returns the day's bytes."""
    db.execute("INSERT INTO usage (day, bytes, measurements, skipped) VALUES (?, ?, ?, ?) "
               "ON CONFLICT(day) DO UPDATE SET bytes = bytes + excluded.bytes, "
               "measurements = measurements + excluded.measurements, "
               "skipped = skipped + excluded.skipped", (day, traffic, measurements, skipped))
    # A year of days is plenty for a volunteer to look back on.
    db.execute("DELETE FROM usage WHERE day < (SELECT day FROM usage ORDER BY day DESC "
               "LIMIT 1 OFFSET 365)")
    return read_usage(db, day)[0]


def write_verdict(db: sqlite3.Connection, verdict: Verdict) -> None:
    """Remember a verdict, keeping the newest few per target (inside the caller's
    transaction)."""
    db.execute("INSERT INTO verdicts (target, test_name, start_time, verdict, layer, "
               "mechanism, summary) VALUES (?, ?, ?, ?, ?, ?, ?)",
               (verdict.target, verdict.test_name, verdict.start_time, verdict.verdict,
                verdict.layer, verdict.mechanism, verdict.summary))
    db.execute("DELETE FROM verdicts WHERE target = ? AND seq NOT IN (SELECT seq FROM verdicts "
               "WHERE target = ? ORDER BY seq DESC LIMIT ?)",
               (verdict.target, verdict.target, RECENT_PER_TARGET))


class Journal:
    def __init__(self, db: LocalDB) -> None:
        self.db = db

    async def set(self, **values: str | None) -> None:
        def write(db: sqlite3.Connection) -> None:
            def statements() -> None:
                for key, value in values.items():
                    if value is None:
                        db.execute("DELETE FROM state WHERE key = ?", (key,))
                    else:
                        db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)",
                                   (key, value))

            transaction(db, statements)

        await self.db.run(write)

    async def state(self) -> dict[str, str]:
        return await self.db.run(read_state)

    async def get(self, key: str) -> str | None:
        def read(db: sqlite3.Connection) -> str | None:
            row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
            return str(row[0]) if row else None

        return await self.db.run(read)

    async def add_usage(self, day: str, traffic: int = 0, measurements: int = 0,
                        skipped: int = 0) -> int:
        """Add to the day's counts; returns the bytes used that day so far."""

        def write(db: sqlite3.Connection) -> int:
            return transaction(db, lambda: write_usage(db, day, traffic, measurements, skipped))

        return await self.db.run(write)

    async def usage(self, day: str) -> tuple[int, int, int]:
        return await self.db.run(lambda db: read_usage(db, day))

    async def add_verdict(self, verdict: Verdict) -> None:
        await self.db.run(lambda db: transaction(db, lambda: write_verdict(db, verdict)))

    async def recent(self) -> dict[str, list[Verdict]]:
        return await self.db.run(read_recent)

    async def address_key(self) -> bytes:
        """The per-install key of the address digests, created on first use."""

        def read_or_create(db: sqlite3.Connection) -> str:
            def statements() -> str:
                row = db.execute("SELECT value FROM state WHERE key = ?",
                                 (ADDRESS_KEY,)).fetchone()
                if row:
                    return str(row[0])
                key = secrets.token_hex(32)
                db.execute("INSERT INTO state (key, value) VALUES (?, ?)", (ADDRESS_KEY, key))
                return key

            return transaction(db, statements)

        return bytes.fromhex(await self.db.run(read_or_create))

    async def address_digests(self) -> list[str]:
        return await self.db.run(
            lambda db: [str(r[0]) for r in db.execute("SELECT digest FROM own_addresses")])

    async def add_address_digests(self, digests: list[str]) -> None:
        def write(db: sqlite3.Connection) -> None:
            transaction(db, lambda: db.executemany(
                "INSERT OR IGNORE INTO own_addresses (digest) VALUES (?)",
                [(d,) for d in digests]))

        if digests:
            await self.db.run(write)


def summarise_analysis(measurement: dict[str, Any]) -> Verdict:
    """The line ``status`` shows for one measurement: its kind of test's own
    (``NetTest.line``: the ladder counts as a target, a censor trace is kept under
    ``trace:<url>``, apart from the URL's own verdicts), else the verdict under its input."""
    keys = measurement.get("test_keys") or {}
    analysis = keys.get("analysis") or {}
    start = str(measurement.get("measurement_start_time"))
    name = str(measurement.get("test_name"))
    kind = by_test_name(name)
    line = kind.line(measurement) if kind is not None else None
    if line is not None:
        return Verdict(line.target, name, start, line.verdict, line.layer, line.mechanism,
                       line.summary)
    return Verdict(str(measurement.get("input") or name), name, start, analysis.get("verdict"),
                   analysis.get("layer"), analysis.get("mechanism"))
