"""Client for the collector's control endpoint (OONI's test helper).

A control that fails or cannot be reached returns a failure string, which the analysis turns
into an *inconclusive* verdict, never *accessible*.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from probe.core import failures
from probe.netx.tls import client_context


class ControlClient:
    """Posts ``{http_request, tcp_connect}`` to ``{base}/api/v1/control``."""

    def __init__(self, base_url: str, timeout: float = 30.0, ca_file: str | None = None) -> None:
        self.url = base_url.rstrip("/") + "/api/v1/control"
        self.timeout = timeout
        self.ca_file = ca_file

    async def measure(
        self, url: str, endpoints: list[str]
    ) -> tuple[dict[str, Any] | None, str | None]:
        """Returns (control view, None) or (None, failure string)."""
        context = client_context(self.ca_file)
        body = {"http_request": url, "tcp_connect": endpoints}
        try:
            async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(ssl=context),
            ) as session:
                async with session.post(self.url, json=body) as response:
                    if response.status != 200:
                        return None, failures.unknown(f"control answered HTTP {response.status}")
                    view = await response.json()
        except (aiohttp.ContentTypeError, json.JSONDecodeError):
            return None, failures.unknown("control answered with invalid JSON")
        except Exception as exc:
            return None, failures.classify(exc)
        if not isinstance(view, dict):
            return None, failures.unknown("control answered with a non-object")
        return view, None
