"""The real collector on a fixed loopback port that a test can take away and bring back.

Taking it away closes the listening socket (connections are refused, as when a shutdown
cuts the route and the kernel answers with an ICMP error); the SQLite file stays, so what was
stored before is still there when it comes back.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from collector.api.tokens import new_token, token_hash
from collector.app import create_app
from collector.config import CollectorConfig
from collector.store import open_store


async def issue_token(config: CollectorConfig, probe_id: str) -> str:
    token = new_token()
    store = await open_store(config.database)
    try:
        await store.add_token(probe_id, token_hash(token),
                              datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"))
    finally:
        await store.close()
    return token


class SwitchableCollector:
    def __init__(self, config: CollectorConfig, port: int) -> None:
        self.config = config
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.app: web.Application | None = None
        self._runner: web.AppRunner | None = None

    @property
    def up(self) -> bool:
        return self._runner is not None

    async def start(self) -> None:
        self.app = create_app(self.config)
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
