"""The storage interface. SQLite is the embedded default; PostgreSQL implements the same one.

Both implementations must pass ``tests/collector/store`` unchanged. ``add_measurements`` returns
only after the rows are durable (committed), and is idempotent by ``measurement_uid``: a uid
is stored once whatever the number of retries, collectors or concurrent requests.

Times cross this interface as UTC strings ``"YYYY-MM-DD HH:MM:SS"`` (OONI's format), which sort
as text in the same order as in time. A store that cannot reach its database raises
``StoreUnavailable`` so the HTTP layer answers 503 (retry later) instead of acknowledging.

To add a method, declare it in ``Store`` (``collector/store/interface.py``), write its SQL
once in ``collector/store/sql.py`` (a ``Dialect`` spells what SQLite and PostgreSQL write
differently), call it from ``SQLiteStore`` and ``PostgresStore``, add a migration to both for
any schema change, and test it in ``tests/collector/store``, which runs on both (README: "How
to add a store method").

This package's ``__init__`` is the factory (``open_store``) and re-exports the interface; the
stores import the interface from its own module, so they never import the factory that imports
them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from collector.store.coming import WritesComing
from collector.store.interface import (
    AXES,
    COUNT_COLUMNS,
    FILTER_COLUMNS,
    MEASUREMENT_COLUMNS,
    TIME_FORMAT,
    VERDICTS,
    Axis,
    EventFilter,
    FeedRow,
    Filters,
    Store,
    StoredMeasurement,
    StoreUnavailable,
    domain_of,
    is_postgres,
    target_key,
)

if TYPE_CHECKING:
    from collector.store.archive_targets import S3Settings

__all__ = [
    "VERDICTS",
    "AXES",
    "Axis",
    "TIME_FORMAT",
    "StoreUnavailable",
    "StoredMeasurement",
    "Filters",
    "MEASUREMENT_COLUMNS",
    "FILTER_COLUMNS",
    "COUNT_COLUMNS",
    "domain_of",
    "target_key",
    "FeedRow",
    "EventFilter",
    "Store",
    "is_postgres",
    "open_store",
    "WritesComing",
]


async def open_store(database: str, *, pool_size: int = 10,
                     archive_dir: str | None = None,
                     archive_s3: S3Settings | None = None,
                     archive_cache_bytes: int = 64 * 1024 * 1024,
                     coming: WritesComing | None = None, commit_wait: float = 0.0) -> Store:
    """Open the store named by a path (SQLite) or a ``postgresql://`` DSN; runs migrations.
    Archived bodies are read back from the bucket ``archive_s3`` when given, else from the
    directory ``archive_dir`` (``collector.store.archive``), through a cache of decoded members
    of at most ``archive_cache_bytes`` (a bucket's settings carry their own).

    ``coming`` counts the uploads being prepared; either store waits up to ``commit_wait``
    seconds for them to commit them together (``collector.store.coming``; PostgreSQL's
    groups: ``collector.store.postgres_groups``)."""
    from collector.store.archive_targets import open_target

    target = open_target(archive_dir, archive_s3, archive_cache_bytes)
    if is_postgres(database):
        from collector.store.postgres import PostgresStore

        postgres = await PostgresStore.open(database, pool_size=pool_size, coming=coming,
                                            commit_wait=commit_wait)
        postgres.archive_target = target
        return postgres
    from collector.store.sqlite import SQLiteStore

    store = await SQLiteStore.open(database, coming=coming, commit_wait=commit_wait)
    store.archive_target = target
    return store
