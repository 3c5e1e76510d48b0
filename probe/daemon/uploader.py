"""Talks to the collector: measurement batches and heartbeats.

A failure is classified so the caller can act on it (``UploadError.kind``):

* ``network``: no answer (refused, reset, timeout, DNS): keep everything, back off;
* ``throttled``: 429 or 503: keep everything, wait at least ``Retry-After``;
* ``server``: other 5xx: keep everything, back off;
* ``auth``: 401 or 403: the token is wrong or revoked: keep everything (the operator can fix
  the token; the data must not be lost), back off long;
* ``rejected``: 400, 413 or 422: the batch itself is refused; ``reason`` says why, so the
  caller can set the bad measurement aside and send the rest.

Each answer's HTTP ``Date`` header is kept (``server_date``, from 200 answers only, which the
collector itself wrote): the daemon compares it with its own clock (``probe.daemon.clock_check``).

The daemon keeps one HTTP session open (``open``/``close``) so heartbeats every minute reuse a
connection instead of paying a TCP and TLS handshake each time. Batches are sent gzip-encoded
(measurements compress about tenfold), which matters on a metered link.
"""

from __future__ import annotations

import gzip
import json
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp

from probe.core import failures
from probe.netx.proxy import connector as proxy_connector

# Rough bytes of HTTP framing (request line, headers, TCP/IP headers) per exchange, counted
# into the data budget on top of the bodies.
FRAMING = 600


class UploadError(Exception):
    """The collector did not acknowledge the request; see the module docstring for kinds."""

    def __init__(self, message: str, permanent: bool = False, *, kind: str = "network",
                 status: int | None = None, retry_after: float | None = None,
                 rejected: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        # The collector's list of refused measurements ({index, uid, reason, message}), when
        # it sends one: the caller can set exactly those aside.
        self.rejected = rejected or []


@dataclass(frozen=True, slots=True)
class UploadResult:
    stored: list[str]
    duplicates: list[str]


def _kind(status: int) -> str:
    if status in (401, 403):
        return "auth"
    if status in (429, 503):
        return "throttled"
    if status in (400, 413, 415, 422):
        return "rejected"
    return "server" if status >= 500 else "rejected"


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None  # an HTTP-date; the exponential backoff covers it


def _reason(text: str) -> tuple[str, list[dict[str, Any]]]:
    """The error message of a refusal and its ``rejected`` list, if any."""
    try:
        body = json.loads(text)
    except ValueError:
        return text[:300], []
    if not isinstance(body, dict):
        return text[:300], []
    rejected = body.get("rejected")
    listed = [r for r in rejected if isinstance(r, dict)] if isinstance(rejected, list) else []
    return str(body.get("error", text))[:300], listed


class Uploader:
    def __init__(self, base_url: str, token: str | None, ca_file: str | None = None,
                 timeout: float = 30.0, compress: bool = True) -> None:
        self.base = base_url.rstrip("/")
        self.token = token
        self.ca_file = ca_file
        self.timeout = timeout
        self.compress = compress
        self.traffic = 0  # bytes sent and received so far, with framing (for the budget)
        self.server_date: str | None = None  # Date of the last request's answer, if 200
        self._session: aiohttp.ClientSession | None = None
        # Per-request connection options (probe.daemon.endpoints sets server_hostname and Host for a
        # CDN-fronted endpoint).
        self.request_options: dict[str, Any] = {}
        # A SOCKS5 proxy is the session's connector (probe.netx.proxy); set before the session.
        self.proxy: str | None = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def _connector(self) -> aiohttp.BaseConnector:
        context = ssl.create_default_context()
        if self.ca_file:
            context.load_verify_locations(cafile=self.ca_file)
        return proxy_connector(self.proxy, context, limit=2)

    def _new_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout),
                                     connector=self._connector())

    async def open(self) -> None:
        """Keep one session (and its connections) for all later requests."""
        if self._session is None:
            self._session = self._new_session()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _send(self, path: str, data: bytes, headers: dict[str, str]) -> dict[str, Any]:
        options = dict(self.request_options)
        headers = {**self._headers(), "Content-Type": "application/json", **headers,
                   **options.pop("headers", {})}
        session = self._session or self._new_session()
        self.traffic += len(data) + FRAMING
        self.server_date = None
        try:
            async with session.post(self.base + path, data=data, headers=headers,
                                    **options) as response:
                text = await response.text()
                self.traffic += len(text) + FRAMING // 2
                if response.status != 200:
                    kind = _kind(response.status)
                    reason, rejected = _reason(text)
                    raise UploadError(f"HTTP {response.status}: {reason}",
                                      kind == "rejected", kind=kind, status=response.status,
                                      retry_after=_retry_after(
                                          response.headers.get("Retry-After")),
                                      rejected=rejected)
                self.server_date = response.headers.get("Date")
                result = json.loads(text) if text else {}
                return result if isinstance(result, dict) else {}
        except UploadError:
            raise
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UploadError("collector answered with invalid JSON", kind="server") from exc
        except Exception as exc:
            raise UploadError(failures.classify(exc), kind="network") from exc
        finally:
            if session is not self._session:
                await session.close()

    async def _post(self, path: str, body: Any) -> dict[str, Any]:
        return await self._send(path, json.dumps(body).encode(), {})

    async def upload_bodies(self, bodies: list[str]) -> UploadResult:
        """Post serialized measurements as one batch, exactly as spooled (no re-encoding, so
        timestamps and every other byte stay as measured)."""
        payload = ('{"measurements":[' + ",".join(bodies) + "]}").encode()
        headers: dict[str, str] = {}
        if self.compress:
            payload = gzip.compress(payload, compresslevel=6)
            headers["Content-Encoding"] = "gzip"
        try:
            result = await self._send("/api/v1/measurements", payload, headers)
        except UploadError as exc:
            if exc.status == 415 and self.compress:
                self.compress = False  # a collector that cannot read gzip: send plain JSON
                return await self.upload_bodies(bodies)
            raise
        return UploadResult([str(u) for u in result.get("stored") or []],
                            [str(u) for u in result.get("duplicates") or []])

    async def upload(self, measurements: list[dict[str, Any]]) -> list[str]:
        """Post a batch; returns the uids the collector acknowledged as durable."""
        result = await self._post("/api/v1/measurements", {"measurements": measurements})
        return list(result.get("stored", []))

    async def heartbeat(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._post("/api/v1/heartbeat", body)
