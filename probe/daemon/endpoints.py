"""An ordered list of collector endpoints with failover memory.

A censor's first move during protests may be to reset connections to the monitor itself. A
probe that knows several endpoints (other names, other addresses) keeps reporting: on a network
failure it tries the next endpoint, remembers the one that worked so the next request goes
there first, and after ``retry_first_after`` seconds tries the first (preferred) endpoint again,
since blocks end and the first endpoint is the operator's choice.

Only network failures (no answer: refused, reset, timeout, DNS) move to the next endpoint. An
answer from a collector (401, 422, 5xx) is the collector speaking; another endpoint of the same
collector would say the same, and a batch must not be sent twice.

Which endpoint carried a request is recorded by its ``name`` (never an address of the
volunteer), so a partner can see that a probe reaches the monitor only through a fallback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from probe.core.typed_config import is_http_url
from probe.daemon.uploader import Uploader, UploadError
from probe.netx.proxy import kind_of, path_of, request_options

T = TypeVar("T")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _name(value: object) -> str | None:
    ok = isinstance(value, str) and 0 < len(value) <= 40 and value.replace("-", "").isalnum()
    return None if ok else "must be 1-40 letters, digits or dashes"


def _front(value: object) -> str | None:
    ok = value is None or (isinstance(value, str) and 0 < len(value) <= 253
                           and not any(c in value for c in "/:@ \t"))
    return None if ok else "must be a bare host name or IPv4 address"


def fronted(endpoint: Endpoint) -> tuple[str, dict[str, Any]]:
    """The base URL to connect to and the request options (Host header, TLS server name)
    for ``endpoint``; an endpoint without ``front`` is used as it is."""
    url = endpoint.url.rstrip("/")
    if endpoint.front is None:
        return url, {}
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    options: dict[str, Any] = {"headers": {"Host": host + port}}
    if parts.scheme == "https":
        options["server_hostname"] = host
    return urlunsplit(parts._replace(netloc=endpoint.front + port)), options


def route(endpoint: Endpoint, proxy: str | None) -> tuple[str, dict[str, Any], str]:
    """The base URL, request options and path name (``probe.netx.proxy.path_of``) of a request
    to ``endpoint`` through ``proxy``. Through SOCKS5 the front is not used: the proxy hides
    the destination already, and its connector checks TLS against the URL's own host."""
    use_front = endpoint.front is not None and kind_of(proxy) != "socks5"
    base, options = fronted(endpoint) if use_front else (endpoint.url.rstrip("/"), {})
    options.update(request_options(proxy))
    return base, options, path_of(use_front, proxy)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One way to reach the collector, as its operator documents it."""

    name: str = field(metadata={"check": _name})
    url: str = field(metadata={"check": is_http_url})
    # CDN fronting: connect to this host (name or address) instead of the URL's, while the
    # HTTP Host header and TLS SNI stay those of the URL, as the operator's CDN documents it.
    front: str | None = field(default=None, metadata={"check": _front})


class EndpointList:
    """Which endpoint to try first, learned from what worked."""

    def __init__(self, endpoints: Sequence[Endpoint], retry_first_after: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not endpoints:
            raise ValueError("at least one endpoint is needed")
        names = [e.name for e in endpoints]
        if len(set(names)) != len(names):
            raise ValueError("endpoint names must be unique")
        self.endpoints = tuple(endpoints)
        self.configured_count = len(self.endpoints)  # the rest were announced
        self.retry_first_after = retry_first_after
        self._clock = clock
        self._current = 0
        self._since = clock()
        self.last_used: str | None = None  # name of the endpoint of the last success

    def order(self) -> list[Endpoint]:
        """Endpoints in the order to try now: the remembered one first, then the rest in
        configured order; the first endpoint again once ``retry_first_after`` has passed."""
        if self._current and self._clock() - self._since >= self.retry_first_after:
            self._current = 0
        current = self.endpoints[self._current]
        return [current, *(e for e in self.endpoints if e is not current)]

    def worked(self, endpoint: Endpoint) -> None:
        index = self.endpoints.index(endpoint)
        if index != self._current:
            self._current = index
            self._since = self._clock()
        self.last_used = endpoint.name

    def remember(self, name: str) -> bool:
        """Start from the endpoint called ``name`` (one that worked before a restart), as if it
        had just worked; False when no such endpoint is listed any more."""
        for endpoint in self.endpoints:
            if endpoint.name == name:
                self.worked(endpoint)
                return True
        return False

    def announce(self, endpoints: Sequence[Endpoint]) -> None:
        """Put signed announced endpoints (``probe.daemon.announce``) after the configured
        ones, replacing those of an earlier announcement; a name already configured keeps its
        configured entry. The remembered endpoint stays remembered when it is still listed."""
        current = self.endpoints[self._current]
        configured = self.endpoints[:self.configured_count]
        names = {e.name for e in configured}
        self.endpoints = (*configured, *(e for e in endpoints if e.name not in names))
        self._current = self.endpoints.index(current) if current in self.endpoints else 0

    async def call(self, attempt: Callable[[Endpoint], Awaitable[T]]) -> tuple[T, Endpoint]:
        """Run ``attempt`` against each endpoint in turn until one answers; network failures
        move on, any other UploadError is raised at once; the last network failure is raised
        when every endpoint failed."""
        last: UploadError | None = None
        for endpoint in self.order():
            try:
                result = await attempt(endpoint)
            except UploadError as exc:
                if exc.kind != "network":
                    raise
                last = exc
                continue
            self.worked(endpoint)
            return result, endpoint
        assert last is not None
        raise last


def configured(url: str, endpoints: Sequence[Endpoint]) -> tuple[Endpoint, ...]:
    """The endpoints of a probe config: the ``endpoints`` list, or the single ``url`` form
    (named ``primary``) so existing configs keep working."""
    return tuple(endpoints) or (Endpoint(name="primary", url=url),)


class FailoverUploader(Uploader):
    """An Uploader whose every request (batches and heartbeats) goes through an EndpointList.

    One HTTP session serves every endpoint (aiohttp keeps a connection pool per host), so a
    failover costs no new session; ``endpoint_used`` names the endpoint of the last success.
    """

    def __init__(self, endpoints: EndpointList, token: str | None, ca_file: str | None = None,
                 timeout: float = 30.0, compress: bool = True,
                 proxy: str | None = None) -> None:
        super().__init__(endpoints.endpoints[0].url, token, ca_file, timeout, compress)
        self.endpoints = endpoints
        self.proxy = proxy  # HTTP CONNECT or SOCKS5 for every endpoint (probe.netx.proxy), or None
        self.path_used: str | None = None  # probe.netx.proxy.path_of the last success
        # Whether the last success came from an endpoint after the first of the list: told in
        # heartbeats, so the collector sees networks that reach it only by a detour.
        self.fallback_used: bool | None = None

    @property
    def endpoint_used(self) -> str | None:
        return self.endpoints.last_used

    def last_success(self, at: datetime) -> str | None:
        """What the local journal keeps of the last success (``resume`` reads it back, ``probe
        status`` shows it): the endpoint's name, the path and whether it was a fallback, at
        ``at``; None before any success."""
        if self.endpoint_used is None:
            return None
        return json.dumps({"endpoint": self.endpoint_used, "path": self.path_used,
                           "fallback": self.fallback_used,
                           "at": at.astimezone(UTC).strftime(TIME_FORMAT)})

    def resume(self, saved: str | None, now: datetime) -> bool:
        """After a restart, go first to the endpoint that worked last (``last_success``) when
        that was less than ``retry_first_after`` ago and it is still listed: a probe restarted
        during a block does not knock at the blocked endpoint first, and its first heartbeat
        tells the way that worked last (the path as the config gives it now). Anything
        unreadable is ignored (False)."""
        try:
            found = json.loads(saved or "null")
            at = datetime.strptime(found["at"], TIME_FORMAT).replace(tzinfo=UTC)
            name = found["endpoint"]
        except (ValueError, TypeError, KeyError):
            return False
        if not isinstance(name, str) \
                or not 0 <= (now - at).total_seconds() < self.endpoints.retry_first_after \
                or not self.endpoints.remember(name):
            return False
        endpoint = self.endpoints.order()[0]
        self.path_used = route(endpoint, self.proxy)[2]
        self.fallback_used = endpoint is not self.endpoints.endpoints[0]
        return True

    async def _send(self, path: str, data: bytes, headers: dict[str, str]) -> dict[str, Any]:
        async def attempt(endpoint: Endpoint) -> dict[str, Any]:
            self.base, self.request_options, _path = route(endpoint, self.proxy)
            return await Uploader._send(self, path, data, headers)

        result, endpoint = await self.endpoints.call(attempt)
        self.path_used = route(endpoint, self.proxy)[2]
        self.fallback_used = endpoint is not self.endpoints.endpoints[0]
        return result
