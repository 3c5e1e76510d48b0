"""A throwaway PostgreSQL database for the benches that run beside SQLite with ``--postgres``:
a cluster of Debian's ``postgresql`` binaries (``tests.helpers.postgres``, as the tests use) on
loopback, stopped and deleted at the end of the run.

Shared by ``collector_archive.py`` and ``collector_ingest.py``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def throwaway_database(parser: argparse.ArgumentParser, name: str) -> Iterator[str]:
    """The DSN of a new database ``name`` on a cluster started for the run; the bench's usage
    error with the reason when PostgreSQL cannot run on this machine."""
    from tests.helpers.postgres import PostgresCluster, unavailable_reason

    reason = unavailable_reason()
    if reason:
        parser.error(reason)
    cluster = PostgresCluster.start()
    try:
        cluster.execute(f"CREATE DATABASE {name}")
        yield cluster.dsn(name)
    finally:
        cluster.stop()
