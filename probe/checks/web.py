"""Web connectivity: DNS, TCP, TLS and HTTP for one URL, compared with the control vantage.

Observation only: this module records what the network did. The verdict comes from
``probe.analysis.analyze``, a pure function over the keys recorded here. The flow follows
OONI's Web Connectivity (ts-017): resolve with the system resolver (and optional UDP
resolvers), ask the control what it sees from outside, connect to every address, handshake TLS
with the URL's SNI, fetch the page over one working connection, follow redirects.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from probe import failures
from probe.analysis import analyze
from probe.bogons import is_bogon
from probe.control_client import ControlClient
from probe.netx import dns, tcp, tls
from probe.netx import http as netx_http
from probe.netx.trace import Trace

Record = dict[str, Any]
MAX_REDIRECTS = 10


@dataclass(frozen=True, slots=True)
class WebOptions:
    """Timeouts in seconds and the resolvers to use beside the system one."""

    dns_timeout: float = 4.0
    connect_timeout: float = 10.0
    tls_timeout: float = 10.0
    http_timeout: float = 15.0
    udp_resolvers: tuple[str, ...] = ()
    ca_file: str | None = None
    max_addresses: int = 4
    dns_linger: float = 0.5


@dataclass(slots=True)
class _State:
    trace: Trace
    queries: list[Record] = field(default_factory=list)
    tcp_connect: list[Record] = field(default_factory=list)
    tls_handshakes: list[Record] = field(default_factory=list)
    requests: list[Record] = field(default_factory=list)


def split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path-with-query); raises ValueError for a non-http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, port, path


def ipv6_available() -> bool:
    """Whether this host has an IPv6 route; connecting a UDP socket sends no packet."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.connect(("2001:db8::1", 53))
    except OSError as exc:
        return exc.errno not in (errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)
    return True


def _host_literal(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


async def _resolve(host: str, port: int, opts: WebOptions, state: _State) -> list[str]:
    """Addresses from the system resolver first, then the UDP resolvers, deduplicated."""
    if _host_literal(host):
        return [host]
    lookups = [dns.getaddrinfo(host, state.trace, opts.dns_timeout, port)]
    for resolver in opts.udp_resolvers:
        address, _, rport = resolver.rpartition(":") if resolver.count(":") == 1 else (
            resolver, "", "53")
        for qtype in ("A", "AAAA"):
            lookups.append(dns.query_udp(host, address, state.trace, opts.dns_timeout, qtype,
                                         int(rport or 53), opts.dns_linger))
    results = await asyncio.gather(*lookups)
    state.queries.extend(results)
    ordered: list[str] = []
    for query in results:
        for address in dns.addresses_of(query):
            if address not in ordered:
                ordered.append(address)
    return ordered


async def _connect_all(
    addresses: list[str], host: str, port: int, secure: bool, opts: WebOptions,
    context: ssl.SSLContext, state: _State,
) -> list[tcp.Stream]:
    """TCP (and TLS) to each address in parallel; returns the working streams in order."""

    async def one(ip: str) -> tcp.Stream | None:
        record, stream = await tcp.connect(ip, port, state.trace, opts.connect_timeout)
        state.tcp_connect.append(record)
        if stream is None or not secure:
            return stream
        tls_record, tls_stream = await tls.handshake(
            stream, host, state.trace, opts.tls_timeout, context
        )
        if tls_stream is None:
            await tcp.close(stream)
            if tls_record["failure"] in (failures.SSL_UNKNOWN_AUTHORITY,
                                         failures.SSL_INVALID_CERTIFICATE,
                                         failures.SSL_INVALID_HOSTNAME):
                tls_record["x_presented_certificate"] = await tls.fetch_presented_certificate(
                    ip, port, host, opts.tls_timeout)
        state.tls_handshakes.append(tls_record)
        return tls_stream

    streams = await asyncio.gather(*(one(ip) for ip in addresses[: opts.max_addresses]))
    return [s for s in streams if s is not None]


async def _fetch_chain(
    url: str, opts: WebOptions, context: ssl.SSLContext, state: _State,
    first_addresses: list[str],
) -> None:
    """Fetch ``url`` following redirects; each hop is measured like the first."""
    current = url
    addresses: list[str] | None = first_addresses
    for _hop in range(MAX_REDIRECTS + 1):
        scheme, host, port, path = split_url(current)
        if addresses is None:
            addresses = await _resolve(host, port, opts, state)
        if not addresses:
            return
        streams = await _connect_all(addresses, host, port, scheme == "https", opts, context,
                                     state)
        if not streams:
            return
        host_header = host if port in (80, 443) else f"{host}:{port}"
        try:
            request = await netx_http.get(streams[0], current, host_header, path, state.trace,
                                          opts.http_timeout)
        finally:
            for stream in streams:
                await tcp.close(stream)
        state.requests.insert(0, request)  # OONI order: requests[0] is the last hop
        response = request["response"]
        location = (response or {}).get("headers", {}).get("Location") or next(
            (v for k, v in (response or {}).get("headers", {}).items() if k.lower() == "location"),
            None,
        )
        if response is None or response["code"] not in (301, 302, 303, 307, 308) or not location:
            return
        current = urljoin(current, location)
        addresses = None


async def measure(
    url: str,
    opts: WebOptions,
    control: ControlClient | None,
    trace: Trace | None = None,
) -> Record:
    """Run web connectivity for ``url`` and return its ``test_keys`` (with ``analysis``)."""
    scheme, host, port, _path = split_url(url)
    state = _State(trace or Trace())
    context = tls.client_context(opts.ca_file)
    addresses = await _resolve(host, port, opts, state)
    have_v6 = ipv6_available()

    control_task = None
    if control is not None:
        endpoints = [tcp.endpoint(a, port) for a in addresses]
        control_task = asyncio.create_task(control.measure(url, endpoints))
    await _fetch_chain(url, opts, context, state, addresses)
    control_view: Record | None = None
    control_failure: str | None = "unknown_failure: no control configured"
    if control_task is not None:
        control_view, control_failure = await control_task

    system = next((q for q in state.queries if q["engine"] == "getaddrinfo"), None)
    keys: Record = {
        "queries": state.queries,
        "tcp_connect": state.tcp_connect,
        "tls_handshakes": state.tls_handshakes,
        "requests": state.requests,
        "network_events": state.trace.network_events,
        "control": control_view or {},
        "control_failure": control_failure,
        "dns_experiment_failure": system["failure"] if system else None,
        "http_experiment_failure": state.requests[0]["failure"] if state.requests else None,
        "x_ipv6_available": have_v6,
        "x_bogon_answers": sorted({a for q in state.queries for a in dns.addresses_of(q)
                                   if is_bogon(a)}),
    }
    keys.update(analyze(keys, url))
    return keys
