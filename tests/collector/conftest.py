"""Collector fixtures: a throwaway PostgreSQL cluster and a parametrized database.

Tests that take ``database`` or ``store`` run once on SQLite and once on PostgreSQL. The
PostgreSQL runs skip (with the reason) only when the server is not installed on this machine;
with ``CI=true`` they fail instead, because CI installs it.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from collector.store import Store, open_store
from tests.helpers.postgres import PostgresCluster, cluster_for_test

BACKENDS = [pytest.param("sqlite", id="sqlite"),
            pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    with cluster_for_test() as cluster:
        yield cluster


@pytest.fixture
def postgres_dsn(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh, empty database for one test."""
    name = f"kuzot_{secrets.token_hex(6)}"
    postgres_cluster.execute(f"CREATE DATABASE {name}")
    try:
        yield postgres_cluster.dsn(name)
    finally:
        postgres_cluster.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQLite path or a PostgreSQL DSN, each new and empty."""
    if request.param == "sqlite":
        return str(tmp_path / "kuzot.sqlite")
    dsn: str = request.getfixturevalue("postgres_dsn")
    return dsn


@pytest.fixture
async def store(database: str) -> AsyncIterator[Store]:
    opened = await open_store(database)
    try:
        yield opened
    finally:
        await opened.close()
