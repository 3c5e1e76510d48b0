"""Web connectivity: DNS, TCP, TLS and HTTP for one URL, compared with the control vantage.

Observation only: this module records what the network did. The verdict comes from
``probe.nettests.web_connectivity.analysis.analyze``, a pure function over the keys recorded here.
The flow follows OONI's Web Connectivity (ts-017, v0.5):

1. resolve the host with the system resolver (getaddrinfo, IPv4 and IPv6), and in parallel
   with each configured UDP resolver (A and AAAA, listening for late answers) and DoH server;
2. ask the control what it sees from outside, with every address we resolved;
3. connect to every resolved address (system resolver first), handshake TLS with the URL's
   SNI for https, and fetch the page over the first connection that worked, in that order;
4. follow up to ten redirects, each hop measured like the first. A ``Location`` is parsed
   defensively (``redirect_target``) and a redirect never leads into loopback or private
   space unless the starting URL was there itself (``probe.core.bogons.redirect_allowed``; the
   README's "Redirect policy").

Every record carries OONI's ``transaction_id`` and ``tags`` (``depth=N``, ``fetch_body=true``
and ``classic`` for addresses from the system resolver), so OONI's own tooling can regroup
them, plus ``x_origin`` (which resolver gave the address). The records are in OONI's data
format, judged by OONI's own loader (``oonidata``): Kuzot's extra keys carry the ``x_`` prefix,
DNS answers get the ``asn`` the control reported for them, and the response bodies of one
measurement together stay under ``MAX_BODIES`` of JSON (each is already cut at OONI's 512 KiB),
so that a long redirect chain cannot make a measurement larger than the collector accepts.
Loopback answers for a name that is not itself local are not dialled (as OONI does) unless
``dial_loopback`` is set, which only tests use: connecting to a volunteer's own machine would
measure the wrong thing.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import ipaddress
import json
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

from probe.core import failures, wire
from probe.core.bogons import is_bogon, is_loopback, redirect_allowed, scope
from probe.core.urls import REDIRECT_CODES, redirect_target, split_url
from probe.nettests.control_client import ControlClient
from probe.nettests.web_connectivity.analysis import analyze
from probe.netx import dns, tcp, tls
from probe.netx import http as netx_http
from probe.netx.trace import Trace

Record = dict[str, Any]
MAX_REDIRECTS = 10
# JSON bytes of all response bodies of one measurement: half the collector's default limit
# for a whole measurement (2 MiB), which leaves room for certificates and everything else.
MAX_BODIES = 1 << 20
# JSON bytes of all response headers of one measurement (each response's are capped already,
# probe.netx.http.Limits): eleven hops of the largest leave room for the bodies above.
MAX_HEADERS = 256 * 1024
ORIGINS = ("system", "udp", "doh")


@dataclass(frozen=True, slots=True)
class WebOptions:
    """Timeouts in seconds, the resolvers to use beside the system one, and limits.

    ``lookup`` replaces the system resolver's backend (tests only; see ``dns.Lookup``);
    ``source_address`` binds the local address of every connection (one uplink of several).
    """

    dns_timeout: float = 4.0
    connect_timeout: float = 10.0
    tls_timeout: float = 10.0
    http_timeout: float = 15.0
    udp_resolvers: tuple[str, ...] = ()
    doh_resolvers: tuple[str, ...] = ()
    ca_file: str | None = None
    max_addresses: int = 16
    dns_linger: float = 0.5
    max_redirects: int = MAX_REDIRECTS
    dial_loopback: bool = False
    lookup: dns.Lookup | None = None
    source_address: str | None = None


@dataclass(slots=True)
class _State:
    trace: Trace
    queries: list[Record] = field(default_factory=list)
    tcp_connect: list[Record] = field(default_factory=list)
    tls_handshakes: list[Record] = field(default_factory=list)
    requests: list[Record] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Endpoint:
    ip: str
    origin: str  # "system" | "udp" | "doh" | "literal"


def ipv6_available() -> bool:
    """Whether this host has an IPv6 route; connecting a UDP socket sends no packet."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.connect(("2001:db8::1", 53))
    except OSError as exc:
        return exc.errno not in (errno.ENETUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT,
                                 errno.EHOSTUNREACH)
    return True


def _host_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _local_name(host: str) -> bool:
    return host == "localhost" or host.endswith(".localhost") or (
        _host_literal(host) and is_loopback(host.strip("[]")))


def _split_resolver(resolver: str) -> tuple[str, int]:
    """``IP``, ``IP:PORT``, ``[IPv6]:PORT`` or a bare IPv6 address."""
    if resolver.startswith("["):
        address, _, port = resolver[1:].partition("]:")
        return address, int(port or 53)
    if resolver.count(":") == 1:
        address, _, port = resolver.partition(":")
        return address, int(port)
    return resolver, 53


def _tag(record: Record, depth: int, *extra: str) -> Record:
    record["tags"] = [f"depth={depth}", *extra]
    return record


async def _resolve(
    host: str, port: int, depth: int, opts: WebOptions, state: _State
) -> list[_Endpoint]:
    """Addresses from the system resolver, then the UDP resolvers, then DoH, deduplicated."""
    if _host_literal(host):
        return [_Endpoint(host.strip("[]"), "literal")]
    trace = state.trace
    lookups = [dns.getaddrinfo(host, trace, opts.dns_timeout, port, lookup=opts.lookup)]
    for resolver in opts.udp_resolvers:
        address, rport = _split_resolver(resolver)
        for qtype in ("A", "AAAA"):
            lookups.append(dns.query_udp(host, address, trace, opts.dns_timeout, qtype, rport,
                                         opts.dns_linger))
    for url in opts.doh_resolvers:
        for qtype in ("A", "AAAA"):
            lookups.append(dns.query_doh(host, url, trace, opts.dns_timeout, qtype,
                                         opts.ca_file))
    results = await asyncio.gather(*lookups)
    ordered: list[_Endpoint] = []
    seen: set[str] = set()
    for origin in ORIGINS:
        for query in results:
            if _ORIGIN_OF_ENGINE[query["engine"]] != origin:
                continue
            for address in dns.addresses_of(query):
                if address not in seen:
                    seen.add(address)
                    ordered.append(_Endpoint(address, origin))
    for query in results:
        query["transaction_id"] = trace.transaction()
        state.queries.append(_tag(query, depth))
    return ordered


_ORIGIN_OF_ENGINE = {"getaddrinfo": "system", "udp": "udp", "doh": "doh"}


def _dialable(endpoint: _Endpoint, host: str, opts: WebOptions) -> bool:
    if not is_loopback(endpoint.ip):
        return True
    return opts.dial_loopback or _local_name(host)


@dataclass(slots=True)
class _Flow:
    """One endpoint's TCP (and TLS) result and, when it worked, its open stream."""

    endpoint: _Endpoint
    transaction_id: int
    connect: Record
    handshake: Record | None = None
    stream: tcp.Stream | None = None


async def _connect_all(
    endpoints: list[_Endpoint], host: str, port: int, secure: bool, depth: int,
    opts: WebOptions, context: ssl.SSLContext, state: _State,
) -> list[_Flow]:
    """TCP (and TLS) to each endpoint in parallel; flows come back in endpoint order."""

    async def one(endpoint: _Endpoint) -> _Flow:
        tags = ["fetch_body=true"] + (["classic"] if endpoint.origin in ("system", "literal")
                                      else [])
        txid = state.trace.transaction()
        record, stream = await tcp.connect(endpoint.ip, port, state.trace, opts.connect_timeout,
                                           opts.source_address)
        record.update(transaction_id=txid, x_origin=endpoint.origin)
        state.tcp_connect.append(_tag(record, depth, *tags))
        flow = _Flow(endpoint, txid, record, stream=stream)
        if stream is None or not secure:
            return flow
        handshake, tls_stream = await tls.handshake(stream, host, state.trace, opts.tls_timeout,
                                                    context)
        handshake.update(transaction_id=txid, x_origin=endpoint.origin)
        state.tls_handshakes.append(_tag(handshake, depth, *tags))
        flow.handshake = handshake
        if tls_stream is None:
            await tcp.close(stream)
        flow.stream = tls_stream
        return flow

    return list(await asyncio.gather(*(one(e) for e in endpoints[: opts.max_addresses])))


def _location(response: Record) -> str | None:
    return next((v for k, v in (response.get("headers") or {}).items()
                 if k.lower() == "location"), None)


def _timings(request: Record, flow: _Flow, dns_seconds: float | None) -> Record:
    """Per-phase durations in seconds: dns, connect, tls, ttfb, transfer (None if not run)."""

    def span(record: Record | None) -> float | None:
        if record is None or record.get("t") is None:
            return None
        return round(float(record["t"]) - float(record["t0"]), 6)

    ttfb = request.get("x_ttfb")
    return {
        "dns": dns_seconds,
        "connect": span(flow.connect),
        "tls": span(flow.handshake),
        "ttfb": round(ttfb - request["t0"], 6) if ttfb is not None else None,
        "transfer": round(request["t"] - ttfb, 6) if ttfb is not None else None,
    }


def _dns_seconds(state: _State, depth: int) -> float | None:
    spans = [q["t"] - q["t0"] for q in state.queries
             if q["tags"][0] == f"depth={depth}" and q.get("t") is not None]
    return round(max(spans), 6) if spans else None


async def _fetch_chain(
    url: str, opts: WebOptions, context: ssl.SSLContext, state: _State,
    first_endpoints: list[_Endpoint],
) -> None:
    """Fetch ``url`` following redirects; each hop is measured like the first."""
    current = url
    endpoints: list[_Endpoint] | None = first_endpoints
    start_scopes: frozenset[str] = frozenset()
    for depth in range(opts.max_redirects + 1):
        scheme, host, port, path = split_url(current)
        if endpoints is None:
            endpoints = await _resolve(host, port, depth, opts, state)
        dialable = [e for e in endpoints if _dialable(e, host, opts)]
        if depth == 0:
            start_scopes = frozenset(scope(e.ip) for e in dialable)
        else:
            # The redirect policy: resolved addresses count, not only literals (README).
            allowed = [e for e in dialable if redirect_allowed(e.ip, start_scopes)]
            if dialable and not allowed:
                state.requests[0]["failure"] = failures.HTTP_REDIRECT_PRIVATE
                state.requests[0]["x_operation"] = failures.OP_HTTP_ROUND_TRIP
                return
            dialable = allowed
        if not dialable:
            return
        flows = await _connect_all(dialable, host, port, scheme == "https", depth, opts,
                                   context, state)
        working = [f for f in flows if f.stream is not None]
        if not working:
            return
        chosen = working[0]
        host_header = host if port in (80, 443) else f"{host}:{port}"
        assert chosen.stream is not None
        try:
            request = await netx_http.get(chosen.stream, current, host_header, path,
                                          state.trace, opts.http_timeout)
        finally:
            for flow in working:
                await tcp.close(flow.stream)
        request.update(transaction_id=chosen.transaction_id, x_origin=chosen.endpoint.origin)
        request["x_timings"] = _timings(request, chosen, _dns_seconds(state, depth))
        _tag(request, depth, "fetch_body=true",
             *(["classic"] if chosen.endpoint.origin in ("system", "literal") else []))
        state.requests.insert(0, request)  # OONI order: requests[0] is the last hop
        response = request["response"]
        if response is None or response["code"] not in REDIRECT_CODES:
            return
        location = _location(response)
        if not location:
            return
        following, failure = redirect_target(current, location)
        if following is None:
            request["failure"] = failure
            request["x_operation"] = failures.OP_HTTP_ROUND_TRIP
            return
        if depth >= opts.max_redirects:
            request["failure"] = failures.TOO_MANY_REDIRECTS
            request["x_operation"] = failures.OP_HTTP_ROUND_TRIP
            return
        current = following
        request["x_redirect_to"] = current
        endpoints = None


def _body_size(body: object) -> int:
    """Bytes a body takes in the measurement's JSON: its escaped text, or its base64 data."""
    if isinstance(body, dict):
        return len(str(body.get("data") or ""))
    return len(json.dumps(str(body), ensure_ascii=False).encode("utf-8")) - 2


def _shortened(body: Any, limit: int) -> Any:
    """A prefix of ``body`` (OONI's text or base64 form) of at most ``limit`` bytes in JSON."""
    if isinstance(body, dict):
        raw = wire.body_bytes(body)[: limit // 4 * 3]
        return {"format": "base64", "data": base64.b64encode(raw).decode("ascii")}
    text = str(body)
    keep = len(text) * limit // max(1, _body_size(text))
    while keep > 0 and _body_size(text[:keep]) > limit:
        keep = keep * 9 // 10
    return text[:keep]


def bound_bodies(requests: list[Record], budget: int = MAX_BODIES) -> None:
    """Cut the response bodies of ``requests`` so that together they take at most ``budget``
    bytes of JSON: the final page (``requests[0]``) first, then the earlier hops; a cut body
    is marked ``body_is_truncated`` as OONI marks its snapshot."""
    for request in requests:
        response = request.get("response")
        if not response or "body" not in response:
            continue
        size = _body_size(response["body"])
        if size > budget:
            response["body"] = _shortened(response["body"], budget)
            response["body_is_truncated"] = True
            size = _body_size(response["body"])
        budget = max(0, budget - size)


def bound_headers(requests: list[Record], budget: int = MAX_HEADERS) -> None:
    """Cut the recorded response headers of ``requests`` to ``budget`` bytes of JSON in all:
    the final page first, then the earlier hops. A response over what is left keeps its header
    names with empty values, or none at all; ``x_headers_truncated`` counts the lines cut."""
    for request in requests:
        response = request.get("response")
        if not response or not response.get("headers_list"):
            continue
        lines = response["headers_list"]
        size = len(json.dumps([response["headers"], lines], ensure_ascii=False).encode())
        if size > budget:
            cut = [[name, ""] for name, _value in lines]
            size = len(json.dumps(cut, ensure_ascii=False).encode()) * 2
            if size > budget:
                cut, size = [], 0
            response["x_headers_truncated"] = response.get("x_headers_truncated", 0) + sum(
                1 for line in lines if line[1] or not cut)
            response["headers_list"] = cut
            response["headers"] = {name: value for name, value in cut}
        budget = max(0, budget - size)


def add_answer_asns(queries: list[Record], control: Record | None) -> None:
    """OONI's ``answers[].asn`` where it is known: the control's ``ip_info`` names the ASN of
    each address it looked up (the probe carries no ASN database of its own)."""
    ip_info = (control or {}).get("ip_info") or {}
    for query in queries:
        for answer in query.get("answers") or []:
            info = ip_info.get(answer.get("ipv4") or answer.get("ipv6") or "")
            asn = info.get("asn") if isinstance(info, dict) else None
            if isinstance(asn, int) and not isinstance(asn, bool) and asn > 0:
                answer["asn"] = asn


def _experiment_failure(state: _State) -> str | None:
    """OONI's ``dns_experiment_failure``: the system resolver's failure for the input host."""
    for query in state.queries:
        if query["engine"] == "getaddrinfo" and query["tags"][0] == "depth=0":
            return query["failure"]  # type: ignore[no-any-return]
    return None


async def measure(
    url: str,
    opts: WebOptions,
    control: ControlClient | None,
    trace: Trace | None = None,
    cc: str | None = None,
) -> Record:
    """Run web connectivity for ``url`` and return its ``test_keys`` (with ``analysis``).

    ``cc`` is the probe's country, used only to decide which known fingerprints apply.

    Network failures end up in the returned records, never as exceptions; a malformed URL
    raises ValueError (bad input).
    """
    scheme, host, port, _path = split_url(url)
    state = _State(trace or Trace())
    context = tls.client_context(opts.ca_file)
    endpoints = await _resolve(host, port, 0, opts, state)
    have_v6 = ipv6_available()

    control_request: Record | None = None
    control_task = None
    if control is not None:
        control_request = {"http_request": url,
                           "tcp_connect": [tcp.endpoint(e.ip, port) for e in endpoints]}
        control_task = asyncio.create_task(
            control.measure_via(url, control_request["tcp_connect"]))
    await _fetch_chain(url, opts, context, state, endpoints)
    control_view: Record | None = None
    control_failure: str | None = "unknown_failure: no control configured"
    # Which control answered and by which path (probe.nettests.control_client): direct, front, a
    # proxy; never an address.
    control_used: Record = {"x_control_endpoint": None, "x_control_path": None,
                            "x_controls_blocked": False}
    if control_task is not None:
        answer = await control_task
        control_view, control_failure = answer.view, answer.failure
        control_used = {"x_control_endpoint": answer.endpoint, "x_control_path": answer.path,
                        "x_controls_blocked": answer.blocked}
    add_answer_asns(state.queries, control_view)
    bound_bodies(state.requests)
    bound_headers(state.requests)

    keys: Record = {
        "queries": state.queries,
        "tcp_connect": state.tcp_connect,
        "tls_handshakes": state.tls_handshakes,
        "requests": state.requests,
        "network_events": state.trace.network_events,
        "x_control_request": control_request,
        "control": control_view or {},
        "control_failure": control_failure,
        **control_used,
        "dns_experiment_failure": _experiment_failure(state),
        "http_experiment_failure": state.requests[0]["failure"] if state.requests else None,
        "x_ipv6_available": have_v6,
        "x_bogon_answers": sorted({a for q in state.queries for a in dns.addresses_of(q)
                                   if is_bogon(a)}),
    }
    keys.update(analyze(keys, url, cc))
    return keys
