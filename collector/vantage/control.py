"""The control vantage (OONI's test helper): the same DNS/TCP/TLS/HTTP steps from outside.

Given ``{"http_request": URL, "tcp_connect": ["ip:port", ...]}`` it resolves the URL's host
(this host's system resolver, or the UDP resolver the operator configured), connects (and for
https handshakes TLS with the URL's SNI) to the union of the probe's and its own addresses,
fetches the page following up to ten redirects, and answers in OONI's test-helper shape:
``dns{failure, addrs}``, ``tcp_connect{ep: {status, failure}}``,
``tls_handshake{ep: {server_name, status, failure}}``, ``http_request{failure, status_code,
body_length, headers, title}`` and ``ip_info{ip: {asn, flags}}`` (flags as OONI's: 1 resolved
by the probe, 2 resolved here, 4 bogon, 8 valid TLS for the domain).

Kuzot adds what the probe needs to tell interception from an ordinary bad certificate:
``x_issuer``/``x_sha256`` of the leaf certificate per TLS endpoint (read even when
validation fails) and ``x_tls_issuer``/``x_tls_sha256``/``x_body_sha256`` for the final page.
A redirect whose Location has no host ends the chain with that redirect as the final page
(failure null), and more than ten redirects is ``unknown_failure: stopped after too many
redirects``, which is how OONI's test helper reports them. A Location that is not a URL at all
(``http://[::1/evil``, ``http://host:99999/``) is ``http_invalid_redirect_location``, and a
redirect into loopback or private space, from a URL that was not there itself, is
``http_redirect_to_private_address`` (the probe's redirect policy, see the README).

Budgets: anyone with a probe token can make the control fetch any URL, so one request costs at
most what the probe's HTTP client allows per response (``probe.netx.http.Limits``: 256 KiB of
headers, a 512 KiB body snapshot) and ``control.timeout`` seconds in all; ``ControlGate``
bounds how many run at once (``control.max_concurrent``), and a request beyond that is answered
503 with ``Retry-After`` at once instead of queueing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Callable
from typing import Any

from probe.core import failures
from probe.core.bogons import is_bogon, redirect_allowed, scope
from probe.core.urls import REDIRECT_CODES, redirect_target, split_url
from probe.netx import dns, tcp, tls
from probe.netx import http as netx_http
from probe.netx.trace import Trace

Record = dict[str, Any]
MAX_ENDPOINTS = 8
MAX_REDIRECTS = 10
FLAG_PROBE, FLAG_CONTROL, FLAG_BOGON, FLAG_VALID = 1, 2, 4, 8


class BadControlRequest(ValueError):
    pass


class ControlGate:
    """At most ``limit`` control measurements at once; ``try_enter`` never waits.

    Refusing at once (503 and ``Retry-After``) rather than queueing keeps a burst of hostile
    requests from holding memory or connections while they wait.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0

    def try_enter(self) -> bool:
        if self.active >= self.limit:
            return False
        self.active += 1
        return True

    def leave(self) -> None:
        self.active -= 1


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
            number = int(port)
        except ValueError as exc:
            raise BadControlRequest(f"tcp_connect: not ip:port: {item!r}") from exc
        if not 0 < number < 65536:
            raise BadControlRequest(f"tcp_connect: port out of range: {item!r}")
        endpoints.append((host, number))
    return url, endpoints


async def _lookup(host: str, port: int, trace: Trace, timeout: float,
                  resolver: str | None) -> Record:
    """``{failure, addrs}`` for ``host`` from the system resolver or the configured one."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return {"failure": None, "addrs": [host.strip("[]")]}
    if resolver is None:
        query = await dns.getaddrinfo(host, trace, timeout, port)
        return {"failure": query["failure"], "addrs": dns.addresses_of(query)}
    address, _, rport = resolver.partition(":") if resolver.count(":") == 1 else (
        resolver, "", "53")
    answers = await asyncio.gather(*(
        dns.query_udp(host, address, trace, timeout, qtype, int(rport or 53), linger=0.0)
        for qtype in ("A", "AAAA")))
    addrs = [a for answer in answers for a in dns.addresses_of(answer)]
    failure = None if addrs else (answers[0]["failure"] or failures.DNS_NO_ANSWER)
    return {"failure": failure, "addrs": addrs}


def _leaf(handshake: Record) -> Record:
    chain = handshake.get("x_certificates") or []
    return chain[0] if chain else {}


def _page(failure: str | None, response: Record | None = None,
          handshake: Record | None = None) -> Record:
    page: Record = {"failure": failure, "status_code": None, "body_length": None,
                    "headers": {}, "title": ""}
    if response is not None:
        page.update(status_code=response["code"], body_length=response["x_body_length"],
                    headers=response["headers"], title=response["x_title"],
                    x_body_sha256=response["x_body_sha256"])
    if handshake is not None:
        leaf = _leaf(handshake)
        page.update(x_tls_issuer=leaf.get("issuer"), x_tls_sha256=leaf.get("sha256"))
    return page


async def _fetch(url: str, first: list[str], timeout: float, allow_private: bool,
                 context: ssl.SSLContext, trace: Trace, resolver: str | None) -> Record:
    """The final page of ``url`` as the control sees it, following redirects."""
    current, addresses = url, first
    start_scopes: frozenset[str] = frozenset()
    for depth in range(MAX_REDIRECTS + 1):
        scheme, host, port, path = split_url(current)
        if depth > 0:
            looked_up = await _lookup(host, port, trace, min(timeout, 5.0), resolver)
            if looked_up["failure"]:
                return _page(looked_up["failure"])
            addresses = looked_up["addrs"]
        candidates = [a for a in addresses if _allowed(a, allow_private)]
        if depth == 0:
            start_scopes = frozenset(scope(a) for a in candidates)
        elif addresses and not [a for a in candidates if redirect_allowed(a, start_scopes)]:
            return _page(failures.HTTP_REDIRECT_PRIVATE)
        else:
            candidates = [a for a in candidates if redirect_allowed(a, start_scopes)]
        if not candidates:
            return _page("unknown_failure: no address the control may dial")
        record, stream = await tcp.connect(candidates[0], port, trace, min(timeout, 10.0))
        if stream is None:
            return _page(record["status"]["failure"])
        handshake = None
        if scheme == "https":
            handshake, stream = await tls.handshake(stream, host, trace, min(timeout, 10.0),
                                                    context, presented_on_failure=False)
            if stream is None:
                return _page(handshake["failure"])
        host_header = host if port in (80, 443) else f"{host}:{port}"
        try:
            request = await netx_http.get(stream, current, host_header, path, trace, timeout)
        finally:
            await tcp.close(stream)
        response = request["response"]
        if response is None:
            return _page(request["failure"])
        location = next((v for k, v in response["headers"].items() if k.lower() == "location"),
                        None)
        if response["code"] not in REDIRECT_CODES or not location:
            return _page(None, response, handshake)
        following, failure = redirect_target(current, location)
        if following is None:
            # OONI's test helper ends the chain at a Location without a host, failure null.
            return _page(None if failure == failures.HTTP_INVALID_REDIRECT else failure,
                         response, handshake)
        if depth >= MAX_REDIRECTS:
            return _page(failures.TOO_MANY_REDIRECTS)
        current = following
    return _page(failures.TOO_MANY_REDIRECTS)


async def measure(
    url: str, probe_endpoints: list[tuple[str, int]], timeout: float, allow_private: bool,
    ca_file: str | None = None, resolver: str | None = None,
    asn_of: Callable[[str], int | None] | None = None,
) -> Record:
    """The control view of ``url`` (see the module docstring for its shape).

    ``asn_of`` names the network of an address (the collector's GeoIP ASN database): with
    it, ``ip_info`` carries each address's ASN, which OONI's DNS consistency reads (the same
    network as the control's answers is consistent: a CDN) and which the probe copies into
    ``answers[].asn``. Without it the ASN is null, as OONI's helper says when it cannot tell.

    ``timeout`` bounds the whole measurement: what is not done by then is reported as
    ``generic_timeout_error`` (the final page's failure, or the lookup's), never raised.
    """
    view: Record = {
        "dns": {"failure": failures.TIMEOUT, "addrs": []},
        "tcp_connect": {},
        "tls_handshake": {},
        "http_request": _page(failures.TIMEOUT),
        "ip_info": {},
    }
    try:
        async with asyncio.timeout(timeout):
            await _measure(view, url, probe_endpoints, timeout, allow_private, ca_file,
                           resolver, asn_of)
    except TimeoutError:
        pass
    return view


async def _measure(
    view: Record, url: str, probe_endpoints: list[tuple[str, int]], timeout: float,
    allow_private: bool, ca_file: str | None, resolver: str | None,
    asn_of: Callable[[str], int | None] | None = None,
) -> None:
    trace = Trace()
    scheme, host, port, _path = split_url(url)
    looked_up = await _lookup(host, port, trace, min(timeout, 5.0), resolver)
    own: list[str] = looked_up["addrs"]
    probe_ips = {ip for ip, _ in probe_endpoints}
    view["dns"] = looked_up
    for ip in [*own, *(ip for ip, _ in probe_endpoints)]:
        flags = (FLAG_PROBE if ip in probe_ips else 0) | (FLAG_CONTROL if ip in own else 0) | (
            FLAG_BOGON if is_bogon(ip) else 0)
        view["ip_info"][ip] = {"asn": asn_of(ip) if asn_of else None, "flags": flags}
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
        leaf = _leaf(handshake)
        view["tls_handshake"][key] = {
            "server_name": host, "status": handshake["failure"] is None,
            "failure": handshake["failure"],
            "x_issuer": leaf.get("issuer"), "x_sha256": leaf.get("sha256"),
        }
        if handshake["failure"] is None:
            view["ip_info"][ip]["flags"] |= FLAG_VALID

    await asyncio.gather(*(one(ip, p) for ip, p in endpoints))
    if looked_up["failure"]:
        view["http_request"] = _page(looked_up["failure"])
    else:
        view["http_request"] = await _fetch(url, own, timeout, allow_private, context, trace,
                                            resolver)
