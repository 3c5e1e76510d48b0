"""The control vantage (OONI's test helper): the same DNS/TCP/TLS/HTTP steps from outside.

Given ``{"http_request": URL, "tcp_connect": ["ip:port", ...]}`` it resolves the URL's host
with this host's system resolver, connects (and for https handshakes TLS with the URL's SNI)
to the union of the probe's and its own addresses, fetches the page following redirects, and
answers in OONI's test-helper shape, plus ``x_issuer``/``x_sha256`` per TLS endpoint so the
probe can tell interception from a plain bad certificate.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any
from urllib.parse import urljoin

from probe.checks.web import split_url
from probe.netx import dns, tcp, tls
from probe.netx import http as netx_http
from probe.netx.trace import Trace

Record = dict[str, Any]
MAX_ENDPOINTS = 8


class BadControlRequest(ValueError):
    pass


def _allowed(ip: str, allow_private: bool) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return allow_private or address.is_global


def parse_request(body: object) -> tuple[str, list[tuple[str, int]]]:
    if not isinstance(body, dict) or not isinstance(body.get("http_request"), str):
        raise BadControlRequest("http_request: required URL string")
    url = body["http_request"]
    try:
        split_url(url)
    except ValueError as exc:
        raise BadControlRequest(f"http_request: {exc}") from exc
    endpoints = []
    raw = body.get("tcp_connect") or []
    if not isinstance(raw, list) or len(raw) > 32:
        raise BadControlRequest("tcp_connect: list of at most 32 'ip:port' strings")
    for item in raw:
        host, _, port = str(item).rpartition(":")
        host = host.strip("[]")
        try:
            ipaddress.ip_address(host)
            endpoints.append((host, int(port)))
        except ValueError as exc:
            raise BadControlRequest(f"tcp_connect: not ip:port: {item!r}") from exc
    return url, endpoints


async def measure(
    url: str, probe_endpoints: list[tuple[str, int]], timeout: float, allow_private: bool,
    ca_file: str | None = None,
) -> Record:
    trace = Trace()
    scheme, host, port, path = split_url(url)
    query = await dns.getaddrinfo(host, trace, min(timeout, 5.0), port)
    own = dns.addresses_of(query)
    view: Record = {
        "dns": {"failure": query["failure"], "addrs": own},
        "tcp_connect": {},
        "tls_handshake": {},
        "http_request": {"failure": None, "status_code": None, "body_length": None,
                         "headers": {}, "title": ""},
        "ip_info": {a: {"asn": None, "flags": (1 if a in own else 0)} for a in own},
    }
    endpoints: list[tuple[str, int]] = []
    for ip, p in [*probe_endpoints, *((a, port) for a in own)]:
        if (ip, p) not in endpoints and _allowed(ip, allow_private):
            endpoints.append((ip, p))
    endpoints = endpoints[:MAX_ENDPOINTS]
    context = tls.client_context(ca_file)

    async def one(ip: str, p: int) -> None:
        key = tcp.endpoint(ip, p)
        record, stream = await tcp.connect(ip, p, trace, min(timeout, 10.0))
        view["tcp_connect"][key] = {"status": record["status"]["success"],
                                    "failure": record["status"]["failure"]}
        if stream is None or scheme != "https":
            await tcp.close(stream)
            return
        handshake, tls_stream = await tls.handshake(stream, host, trace, min(timeout, 10.0),
                                                    context)
        await tcp.close(tls_stream or stream)
        certificates = handshake["peer_certificates"]
        view["tls_handshake"][key] = {
            "server_name": host, "status": handshake["failure"] is None,
            "failure": handshake["failure"],
            "x_issuer": certificates[0]["issuer"] if certificates else None,
            "x_sha256": certificates[0]["sha256"] if certificates else None,
        }

    await asyncio.gather(*(one(ip, p) for ip, p in endpoints))
    view["http_request"] = await _fetch(url, own, timeout, allow_private, context, trace)
    return view


async def _fetch(url: str, first: list[str], timeout: float, allow_private: bool,
                 context: Any, trace: Trace) -> Record:
    current, addresses = url, first
    failure: str | None = "unknown_failure: no address"
    for _ in range(10):
        scheme, host, port, path = split_url(current)
        if addresses is None:
            addresses = dns.addresses_of(await dns.getaddrinfo(host, trace, 5.0, port))
        candidates = [a for a in addresses if _allowed(a, allow_private)]
        if not candidates:
            return {"failure": failure, "status_code": None, "body_length": None,
                    "headers": {}, "title": ""}
        record, stream = await tcp.connect(candidates[0], port, trace, min(timeout, 10.0))
        if stream is None:
            return {"failure": record["status"]["failure"], "status_code": None,
                    "body_length": None, "headers": {}, "title": ""}
        if scheme == "https":
            handshake, stream = await tls.handshake(stream, host, trace, 10.0, context)
            if stream is None:
                return {"failure": handshake["failure"], "status_code": None,
                        "body_length": None, "headers": {}, "title": ""}
        host_header = host if port in (80, 443) else f"{host}:{port}"
        try:
            request = await netx_http.get(stream, current, host_header, path, trace, timeout)
        finally:
            await tcp.close(stream)
        response = request["response"]
        if response is None:
            return {"failure": request["failure"], "status_code": None, "body_length": None,
                    "headers": {}, "title": ""}
        location = next((v for k, v in response["headers"].items() if k.lower() == "location"),
                        None)
        if response["code"] in (301, 302, 303, 307, 308) and location:
            current, addresses = urljoin(current, location), None  # type: ignore[assignment]
            continue
        return {"failure": None, "status_code": response["code"],
                "body_length": response["body_length"], "headers": response["headers"],
                "title": response["title"], "x_body_sha256": response["body_sha256"]}
    return {"failure": "unknown_failure: too many redirects", "status_code": None,
            "body_length": None, "headers": {}, "title": ""}
