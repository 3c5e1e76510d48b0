"""Shared fixtures: a test CA, a CA bundle file, and a running collector on loopback."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from aiohttp.test_utils import TestClient, TestServer

from collector.app import create_app
from collector.config import Auth, CollectorConfig, Control


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def collector_config(tmp_path: Path, ca_file: str) -> CollectorConfig:
    return CollectorConfig(
        database=str(tmp_path / "kuzot.sqlite"),
        auth=Auth(require_token=True),
        control=dataclasses.replace(Control(), allow_private_addresses=True, ca_file=ca_file),
    )


@pytest.fixture
async def collector_client(collector_config: CollectorConfig) -> AsyncIterator[TestClient]:
    app = create_app(collector_config)
    async with TestClient(TestServer(app)) as client:
        yield client
