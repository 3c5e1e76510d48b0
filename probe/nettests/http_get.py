"""A plain HTTP(S) GET through the measured network layer, with no control and no analysis.

This is the like-for-like counterpart of blackbox_exporter's http module: resolve, connect,
handshake, fetch, report success and phase timings. The probe uses it where a full web
connectivity check would be wasted (for example a cheap liveness check of a baseline).
"""

from __future__ import annotations

from typing import Any

from probe.core.urls import split_url
from probe.netx import dns, tcp, tls
from probe.netx import http as netx_http
from probe.netx.trace import Trace


async def http_get(url: str, timeout: float = 10.0, ca_file: str | None = None) -> dict[str, Any]:
    """Fetch ``url`` once; returns ``{success, status_code, failure, operation, phases}``."""
    trace = Trace()
    scheme, host, port, path = split_url(url)
    result: dict[str, Any] = {"success": False, "status_code": None, "failure": None,
                              "operation": None, "phases": {}}
    query = await dns.getaddrinfo(host, trace, timeout, port)
    result["phases"]["resolve"] = query["t"] - query["t0"]
    addresses = dns.addresses_of(query)
    if not addresses:
        result.update(failure=query["failure"], operation="resolve")
        return result
    record, stream = await tcp.connect(addresses[0], port, trace, timeout)
    result["phases"]["connect"] = record["t"] - record["t0"]
    if stream is None:
        result.update(failure=record["status"]["failure"], operation="connect")
        return result
    try:
        if scheme == "https":
            handshake, tls_stream = await tls.handshake(stream, host, trace, timeout,
                                                        tls.client_context(ca_file))
            result["phases"]["tls"] = handshake["t"] - handshake["t0"]
            if tls_stream is None:
                result.update(failure=handshake["failure"], operation="tls_handshake")
                return result
            stream = tls_stream
        host_header = host if port in (80, 443) else f"{host}:{port}"
        request = await netx_http.get(stream, url, host_header, path, trace, timeout)
        result["phases"]["http"] = request["t"] - request["t0"]
        if request["response"] is None:
            result.update(failure=request["failure"], operation="http_round_trip")
            return result
        code = request["response"]["code"]
        result.update(status_code=code, success=200 <= code < 300)
        return result
    finally:
        await tcp.close(stream)
