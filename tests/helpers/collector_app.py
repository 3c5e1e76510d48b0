"""Run the real collector application on loopback for a test, with tokens issued in its store."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from collector.api.tokens import new_token, token_hash
from collector.app import create_app
from collector.config import CollectorConfig
from collector.keys import registry_key, store_key
from collector.store import Store

TARGETS = ("https://kloop.kg/", "https://vlast.kz/")


@dataclass
class Running:
    client: TestClient[web.Request, web.Application]
    app: web.Application

    @property
    def store(self) -> Store:
        return self.app[store_key]

    @property
    def registry(self) -> CollectorRegistry:
        return self.app[registry_key]

    async def token(self, probe_id: str = "p1") -> dict[str, str]:
        """Issue a token for ``probe_id``; returns the Authorization header."""
        token = new_token()
        await self.store.add_token(probe_id, token_hash(token), "2024-05-01 00:00:00")
        return {"Authorization": f"Bearer {token}"}

    def sample(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return self.registry.get_sample_value(name, labels or {})


@contextlib.asynccontextmanager
async def running(database: str, **changes: Any) -> AsyncIterator[Running]:
    config = dataclasses.replace(CollectorConfig(database=database, targets=TARGETS),
                                 **changes)
    app = create_app(config)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield Running(client, app)
