"""Uploads measurements to the collector in batches; a failure leaves them for the next try."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp

from probe import failures


class UploadError(Exception):
    """The collector did not acknowledge the batch; ``permanent`` for a 4xx other than 429."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Uploader:
    def __init__(self, base_url: str, token: str | None, ca_file: str | None = None,
                 timeout: float = 30.0) -> None:
        self.base = base_url.rstrip("/")
        self.token = token
        self.ca_file = ca_file
        self.timeout = timeout

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _connector(self) -> aiohttp.TCPConnector:
        context = ssl.create_default_context()
        if self.ca_file:
            context.load_verify_locations(cafile=self.ca_file)
        return aiohttp.TCPConnector(ssl=context)

    async def _post(self, path: str, body: Any) -> dict[str, Any]:
        try:
            async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout), connector=self._connector()
            ) as session:
                async with session.post(self.base + path, json=body,
                                        headers=self._headers()) as response:
                    text = await response.text()
                    if response.status != 200:
                        permanent = 400 <= response.status < 500 and response.status != 429
                        raise UploadError(f"HTTP {response.status}: {text[:200]}", permanent)
                    result: dict[str, Any] = await response.json(content_type=None)
                    return result
        except UploadError:
            raise
        except Exception as exc:
            raise UploadError(failures.classify(exc)) from exc

    async def upload(self, measurements: list[dict[str, Any]]) -> list[str]:
        """Post a batch; returns the uids the collector acknowledged as durable."""
        result = await self._post("/api/v1/measurements", {"measurements": measurements})
        return list(result.get("stored", []))

    async def heartbeat(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._post("/api/v1/heartbeat", body)
