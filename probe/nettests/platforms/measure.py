"""Platform checks: Telegram, WhatsApp, Signal, Messenger, YouTube, TikTok, Instagram, X.

Observation only. Each endpoint group of a platform (``configs/platforms.yaml``) is measured
either with web connectivity (``urls``: DNS, TCP, TLS, HTTP, compared with the control) or as
reachability (``hosts``/``addresses``: DNS, TCP connect to each address and port, optionally an
HTTP GET, and the control's view of the same endpoints). Verdicts come from
``probe.nettests.platforms.analysis``. Test keys are OONI's im-test keys where OONI has them, the
usual ``queries``/``tcp_connect``/``tls_handshakes``/``requests`` lists, ``x_endpoints`` (one
record per endpoint with its verdict) and ``analysis`` (the platform verdict).

When an endpoint is blocked by a reset after the handshake, the reset's TTL and IP ID are
compared with the real server's packets (``probe.netx.packet``), so injected resets are marked
as such in the evidence. That needs CAP_NET_RAW; without it ``x_injection`` records
``permission_denied`` and the check goes on.
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass
from typing import Any

from probe.config.platforms import EndpointGroup, PlatformsConfig
from probe.core.evidence import Fact, written
from probe.core.urls import split_url
from probe.nettests.censor_trace import analysis as censor_analysis
from probe.nettests.control_client import ControlClient
from probe.nettests.platforms import analysis as platform_analysis
from probe.nettests.web_connectivity import measure as web
from probe.netx import dns, packet, tcp
from probe.netx import http as netx_http
from probe.netx.trace import Trace

Record = dict[str, Any]
PARALLEL = 8
"""Endpoints measured at once inside one platform check (a platform has up to ~20), unless
the caller shares its own slots (the daemon does: its ``schedule.concurrency`` bounds every
endpoint of every job together)."""


@dataclass(frozen=True, slots=True)
class PlatformOptions:
    """What the command line or the daemon adds to the platforms file."""

    udp_resolvers: tuple[str, ...] = ()
    ca_file: str | None = None
    fingerprint: bool = True


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _web_options(config: PlatformsConfig, group: EndpointGroup,
                 options: PlatformOptions) -> web.WebOptions:
    t = config.timeouts
    return web.WebOptions(dns_timeout=t.dns, connect_timeout=t.connect, tls_timeout=t.tls,
                          http_timeout=t.http, udp_resolvers=options.udp_resolvers,
                          ca_file=group.ca_file or options.ca_file,
                          max_addresses=config.max_addresses)


async def _resolve(host: str, port: int, config: PlatformsConfig, options: PlatformOptions,
                   trace: Trace) -> tuple[list[Record], list[str]]:
    if _is_address(host):
        return [], [host]
    lookups = [dns.getaddrinfo(host, trace, config.timeouts.dns, port)]
    for resolver in options.udp_resolvers:
        address, _, rport = resolver.rpartition(":") if resolver.count(":") == 1 else (
            resolver, "", "53")
        lookups.append(dns.query_udp(host, address, trace, config.timeouts.dns, "A",
                                     int(rport or 53)))
    queries = list(await asyncio.gather(*lookups))
    addresses: list[str] = []
    for query in queries:
        for address in dns.addresses_of(query):
            if address not in addresses:
                addresses.append(address)
    return queries, addresses[: config.max_addresses]


async def measure_reachability(
    host: str, group: EndpointGroup, config: PlatformsConfig, options: PlatformOptions,
    control: ControlClient | None, trace: Trace,
) -> Record:
    """DNS, TCP to every address and port (and an HTTP GET for ``exchange: http``)."""
    t = config.timeouts
    queries, addresses = await _resolve(host, group.ports[0], config, options, trace)
    endpoints = [tcp.endpoint(a, p) for a in addresses for p in group.ports]
    control_task = None
    if control is not None:
        port = group.ports[0]
        url = f"http://{host}/" if port == 80 else f"http://{host}:{port}/"
        control_task = asyncio.create_task(control.measure_via(url, endpoints))

    async def one(address: str, port: int) -> tuple[Record, Record | None]:
        record, stream = await tcp.connect(address, port, trace, t.connect)
        request = None
        if stream is not None and group.exchange == "http":
            target = tcp.endpoint(address, port)
            host_header = host if port == 80 else f"{host}:{port}"
            request = await netx_http.get(stream, f"http://{target}/", host_header, "/", trace,
                                          t.http)
        await tcp.close(stream)
        return record, request

    results = await asyncio.gather(*(one(a, p) for a in addresses for p in group.ports))
    control_view: Record | None = None
    control_failure: str | None = "unknown_failure: no control configured"
    control_endpoint = control_path = None
    if control_task is not None:
        answer = await control_task
        control_view, control_failure = answer.view, answer.failure
        control_endpoint, control_path = answer.endpoint, answer.path
    return {
        "queries": queries,
        "tcp_connect": [r for r, _ in results],
        "tls_handshakes": [],
        "requests": [q for _, q in results if q is not None],
        "control": control_view or {},
        "control_failure": control_failure,
        "x_control_endpoint": control_endpoint,
        "x_control_path": control_path,
    }


def _endpoint_record(group_name: str, target: str, kind: str, keys: Record,
                     analysis: Record, dns_consistency: str | None, failure: str | None
                     ) -> Record:
    return {
        "group": group_name,
        "target": target,
        "kind": kind,
        "tcp_ok": any(c["status"]["success"] for c in keys.get("tcp_connect") or []),
        "http_ok": any(r.get("response") is not None for r in keys.get("requests") or []),
        "dns_consistency": dns_consistency,
        "failure": failure,
        "analysis": analysis,
        "control_failure": keys.get("control_failure"),
        # Which control answered, by which path (probe.nettests.control_client); names only.
        "x_control_endpoint": keys.get("x_control_endpoint"),
        "x_control_path": keys.get("x_control_path"),
    }


async def _fingerprint(endpoint: Record, keys: Record, timeout: float) -> None:
    """Compare an after-handshake reset with the server's own packets; adds evidence."""
    analysis = endpoint["analysis"]
    if analysis["mechanism"] != "reset" or analysis["layer"] not in ("tls", "http"):
        return
    connected = next((c for c in keys.get("tcp_connect") or [] if c["status"]["success"]),
                     None)
    if connected is None or ":" in connected["ip"]:
        return
    target = endpoint["target"]
    scheme, host, _port, path = split_url(target)
    trigger = (packet.client_hello(host) if scheme == "https"
               else packet.http_request(host, path))
    result = await packet.reset_fingerprint(connected["ip"], connected["port"], trigger,
                                            timeout)
    if result.get("response_packet") and result.get("server_packet"):
        result.update(censor_analysis.injection(result["response_packet"],
                                                [result["server_packet"]]))
    endpoint["x_injection"] = result
    if result.get("injected") is True:
        analysis["evidence"] = [*analysis["evidence"], "reset:injected",
                                *result.get("evidence", [])]
    elif result.get("failure"):
        analysis["evidence"] = [*analysis["evidence"], f"fingerprint:{result['failure']}"]


async def measure(
    name: str, config: PlatformsConfig, options: PlatformOptions,
    control: ControlClient | None, trace: Trace | None = None,
    slots: asyncio.Semaphore | None = None,
) -> Record:
    """Measure platform ``name`` and return its test keys (with ``analysis``); each endpoint
    holds one of ``slots`` (default: ``PARALLEL`` of its own) while it is measured."""
    platform = config.platforms[name]
    trace = trace or Trace()
    semaphore = slots or asyncio.Semaphore(PARALLEL)
    endpoints: list[Record] = []
    lists: Record = {"queries": [], "tcp_connect": [], "tls_handshakes": [], "requests": []}
    raw: list[tuple[Record, Record]] = []

    async def web_endpoint(group_name: str, group: EndpointGroup, url: str) -> None:
        async with semaphore:
            keys = await web.measure(url, _web_options(config, group, options), control, trace)
        record = _endpoint_record(group_name, url, "web", keys, keys["analysis"],
                                  keys.get("dns_consistency"),
                                  platform_analysis.web_failure(keys))
        record["ooni"] = {"blocking": keys.get("blocking"), "accessible": keys.get("accessible")}
        endpoints.append(record)
        raw.append((record, keys))

    async def reach_endpoint(group_name: str, group: EndpointGroup, host: str) -> None:
        async with semaphore:
            keys = await measure_reachability(host, group, config, options, control, trace)
        verdict = platform_analysis.endpoint_verdict(keys, group.networks, group.exchange)
        failed = next((c["status"]["failure"] for c in keys["tcp_connect"]
                       if c["status"]["failure"]), None)
        dns_failure = next((q["failure"] for q in keys["queries"]
                            if q.get("engine") == "getaddrinfo" and q["failure"]), None)
        record = _endpoint_record(
            group_name, host, "reachability", keys, verdict,
            platform_analysis.endpoint_consistency(keys, group.networks),
            None if verdict["verdict"] == "ok" else (dns_failure or failed or next(
                (r["failure"] for r in keys["requests"] if r["failure"]), None)))
        record["control"] = keys["control"]
        endpoints.append(record)
        raw.append((record, keys))

    jobs = []
    for group_name, group in platform.groups.items():
        jobs += [web_endpoint(group_name, group, url) for url in group.urls]
        jobs += [reach_endpoint(group_name, group, h) for h in (*group.hosts, *group.addresses)]
    await asyncio.gather(*jobs)

    order = {(g, t): i for i, (g, t) in enumerate(
        (g, t) for g, grp in platform.groups.items()
        for t in (*grp.urls, *grp.hosts, *grp.addresses))}
    pairs = sorted(raw, key=lambda pair: order[(pair[0]["group"], pair[0]["target"])])
    if options.fingerprint:
        for record, keys in pairs:
            await _fingerprint(record, keys, config.timeouts.connect)
    endpoints = [record for record, _ in pairs]
    for _, keys in pairs:
        for key in lists:
            lists[key].extend(keys.get(key) or [])

    groups = {g: platform_analysis.group_verdict(
        platform.groups[g].need, [e for e in endpoints if e["group"] == g])
        for g in platform.groups}
    analysis = platform_analysis.platform_stated(groups)
    analysis["evidence"] += [Fact("injected_reset", e["target"]) for e in endpoints
                             if (e.get("x_injection") or {}).get("injected") is True]
    result: Record = {
        **platform_analysis.ooni_keys(name, endpoints),
        **lists,
        "network_events": trace.network_events,
        "x_platform": name,
        "x_endpoints": endpoints,
        "x_groups": groups,
        "analysis": written(analysis),
    }
    return result
