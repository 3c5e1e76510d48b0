"""The storage interface. SQLite is the embedded default; PostgreSQL implements the same one.

Both implementations must pass ``tests/collector/store`` unchanged. ``add_measurements`` returns
only after the rows are durable (committed), and is idempotent by ``measurement_uid``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class StoredMeasurement:
    """Columns extracted from a validated measurement; ``body`` is the JSON document."""

    uid: str
    probe_id: str
    test_name: str
    input: str | None
    probe_cc: str
    probe_asn: str
    start_time: str
    received_at: str
    verdict: str | None
    layer: str | None
    mechanism: str | None
    body: str


class Store(Protocol):
    async def add_measurements(self, rows: list[StoredMeasurement]) -> list[str]:
        """Store the rows durably; returns the uids newly inserted (duplicates are skipped)."""

    async def measurements(
        self, *, since: str | None = None, until: str | None = None, cc: str | None = None,
        asn: str | None = None, test_name: str | None = None, input: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]: ...

    async def count_measurements(self) -> int: ...

    async def latest_by_target(self) -> list[dict[str, Any]]:
        """The latest verdict per (cc, asn, test_name, input)."""

    async def verdict_counts(self) -> list[tuple[str, str, str, str, int]]:
        """(test_name, cc, asn, verdict, count) over everything stored."""

    async def add_heartbeat(self, probe_id: str, sent_at: str, received_at: str,
                            body: str) -> None: ...

    async def add_token(self, probe_id: str, token_hash: str, created_at: str) -> None: ...

    async def revoke_token(self, probe_id: str, revoked_at: str) -> bool: ...

    async def probe_for_token(self, token_hash: str) -> tuple[str, bool] | None:
        """(probe_id, revoked) for a token hash, or None when unknown."""

    async def tokens(self) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


async def open_store(database: str) -> Store:
    """Open the store named by a path (SQLite) or a ``postgresql://`` DSN."""
    if database.startswith(("postgresql://", "postgres://")):
        raise ValueError("database: the PostgreSQL store is not built yet; use a SQLite path")
    from collector.store.sqlite import SQLiteStore

    store: Store = await SQLiteStore.open(database)
    return store
