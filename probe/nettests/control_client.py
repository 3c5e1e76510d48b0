"""Client for the collector's control endpoint (OONI's test helper), over several controls.

A control that fails or cannot be reached returns a failure string, which the analysis turns
into an *inconclusive* verdict, never *accessible*.

A censor that blocks the monitor blocks its control too, and then every site's verdict would
be inconclusive. So the client knows an ordered list of control endpoints
(``probe.daemon.endpoints``: other names, addresses, a CDN-fronted one) and an optional proxy
(``probe.netx.proxy``), fails over on network failures (no answer: refused, reset, timeout,
DNS) and remembers which worked, as the uploader does. An answer that is not a control view
(HTTP 503 from a busy control, bad JSON) also moves on: another control may answer; but it is
not a sign of blocking.

Each answer says which control gave it and by which path (``ControlAnswer``), so a measurement
records it (``x_control_endpoint``, ``x_control_path``), and ``blocked`` says whether the last
attempt found every control unreachable by the network: a probe cut off its controls.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from typing import Any

import aiohttp

from probe.core import failures
from probe.daemon.endpoints import Endpoint, EndpointList, route
from probe.netx.proxy import connector
from probe.netx.tls import client_context


@dataclass(frozen=True, slots=True)
class ControlAnswer:
    """What the controls said about one URL: the view or the failure, which control answered
    (None when none did) and by which path, and the controls tried, in order."""

    view: dict[str, Any] | None
    failure: str | None
    endpoint: str | None
    path: str | None
    tried: tuple[str, ...]
    blocked: bool = False  # no control answered and every failure was the network's


class ControlClient:
    """Posts ``{http_request, tcp_connect}`` to ``{base}/api/v1/control`` of each control
    endpoint in turn until one answers with a view."""

    def __init__(self, base_url: str | None = None, timeout: float = 30.0,
                 ca_file: str | None = None, *, endpoints: EndpointList | None = None,
                 proxy: str | None = None) -> None:
        if endpoints is None:
            if base_url is None:
                raise ValueError("a control base URL or endpoints are needed")
            endpoints = EndpointList([Endpoint(name="control", url=base_url)])
        self.endpoints = endpoints
        self.timeout = timeout
        self.ca_file = ca_file
        self.proxy = proxy
        self.blocked = False  # the last attempt reached no control at all (network failures)

    @property
    def url(self) -> str:
        """The control URL tried first now."""
        return self.endpoints.order()[0].url.rstrip("/") + "/api/v1/control"

    async def measure(
        self, url: str, endpoints: list[str]
    ) -> tuple[dict[str, Any] | None, str | None]:
        """Returns (control view, None) or (None, failure string)."""
        answer = await self.measure_via(url, endpoints)
        return answer.view, answer.failure

    async def measure_via(self, url: str, endpoints: list[str]) -> ControlAnswer:
        """The control view of ``url`` from the first control that gives one."""
        body = {"http_request": url, "tcp_connect": endpoints}
        context = client_context(self.ca_file)
        tried: list[str] = []
        failure = "unknown_failure: no control endpoint"
        network_only = True
        for endpoint in self.endpoints.order():
            tried.append(endpoint.name)
            view, failure, network = await self._one(endpoint, body, context)
            if view is not None:
                self.endpoints.worked(endpoint)
                self.blocked = False
                return ControlAnswer(view, None, endpoint.name, route(endpoint, self.proxy)[2],
                                     tuple(tried))
            network_only = network_only and network
        self.blocked = network_only
        return ControlAnswer(None, failure, None, None, tuple(tried), network_only)

    async def _one(self, endpoint: Endpoint, body: dict[str, Any],
                   context: ssl.SSLContext) -> tuple[dict[str, Any] | None, str, bool]:
        """(view, "", False) or (None, failure, whether the failure is the network's)."""
        base, options, _path = route(endpoint, self.proxy)
        headers = options.pop("headers", {})
        try:
            async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=connector(self.proxy, context),
            ) as session:
                async with session.post(base + "/api/v1/control", json=body, headers=headers,
                                        **options) as response:
                    if response.status != 200:
                        return None, failures.unknown(
                            f"control answered HTTP {response.status}"), False
                    view = await response.json()
        except (aiohttp.ContentTypeError, json.JSONDecodeError):
            return None, failures.unknown("control answered with invalid JSON"), False
        except Exception as exc:
            return None, failures.classify(exc), True
        if not isinstance(view, dict):
            return None, failures.unknown("control answered with a non-object"), False
        return view, "", False
