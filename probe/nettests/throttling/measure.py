"""Throttling: a target and its co-hosted baseline fetched back to back, plus an SNI A/B test.

Observation only; the verdict comes from ``probe.nettests.throttling.analysis``. Design (detection
notes 6.4, OONI dd-007, Wehe):

* the target and its configured baseline (same CDN or prefix, as OONI compared azattyq.org with
  i.pinimg.com) are fetched back to back, in a random order each round, for several rounds, so
  that a slow minute of the path hits both alike;
* each fetch is a timed transfer (``probe.netx.transfer``) with a byte-time curve from the
  kernel's byte count, the TLS handshake duration and the TTFB, capped in bytes and in time;
* the SNI A/B test fetches the collector's fixed object from the collector's address, once with
  the target's SNI and once with an innocuous SNI, in a random order each round: the same server
  and the same bytes, only the name differs;
* every transfer draws from the per-day byte budget first; flows the budget cannot cover are
  skipped and counted.
"""

from __future__ import annotations

import random
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from probe.core import failures
from probe.core.urls import split_url
from probe.daemon.budget import ByteBudget
from probe.nettests.throttling.analysis import Thresholds, analyze
from probe.nettests.throttling.sni_ab import ABEndpoint
from probe.netx import dns, tls, transfer
from probe.netx.trace import Trace

Record = dict[str, Any]

DEFAULT_INNOCUOUS_SNI = "example.com"


@dataclass(frozen=True, slots=True)
class ThrottleOptions:
    """How much to measure: rounds, caps per transfer (bytes, seconds) and timeouts."""

    repetitions: int = 3
    ab_repetitions: int = 3
    byte_limit: int = 512 * 1024
    transfer_timeout: float = 8.0
    connect_timeout: float = 10.0
    tls_timeout: float = 10.0
    dns_timeout: float = 4.0
    ca_file: str | None = None
    innocuous_sni: str | None = None
    resolve: Mapping[str, str] = field(default_factory=dict)
    thresholds: Thresholds = field(default_factory=Thresholds)


def _is_literal(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


async def _address(host: str, port: int, opts: ThrottleOptions, trace: Trace,
                   queries: list[Record]) -> str | None:
    """One address for ``host``: an override, a literal, or the system resolver's first IPv4
    answer (IPv6 only when there is no IPv4), so target and baseline use the same family."""
    if host in opts.resolve:
        queries.append({"engine": "x_override", "hostname": host, "failure": None,
                        "answers": [{"answer_type": "AAAA" if ":" in opts.resolve[host]
                                     else "A", "ipv4": opts.resolve[host]}]})
        return opts.resolve[host]
    if _is_literal(host):
        return host
    query = await dns.getaddrinfo(host, trace, opts.dns_timeout, port)
    queries.append(query)
    addresses = dns.addresses_of(query)
    v4 = [a for a in addresses if ":" not in a]
    chosen = v4 or addresses
    return chosen[0] if chosen else None


def _flow_bytes(flow: Record) -> int:
    """Bytes this flow cost: the kernel's count, else what the application read."""
    if flow.get("curve_source") == "tcp_info" and flow.get("samples"):
        return int(flow["samples"][-1][1])
    request = flow.get("request") or {}
    return int(request.get("x_bytes_received") or 0)


@dataclass(slots=True)
class _Run:
    trace: Trace
    rng: random.Random
    opts: ThrottleOptions
    budget: ByteBudget | None
    skipped: int = 0
    used: int = 0

    async def fetch(self, role: str, index: int, url: str, ip: str, port: int, sni: str,
                    path: str, verify: bool) -> Record | None:
        if self.budget is not None and not await self.budget.allows(self.opts.byte_limit):
            self.skipped += 1
            return None
        _scheme, host, url_port, _ = split_url(url)
        host_header = host if url_port in (80, 443) else f"{host}:{url_port}"
        context = tls.client_context(self.opts.ca_file, verify=verify)
        flow = await transfer.fetch(
            ip, port, sni=sni, url=url, host_header=host_header, path=path, trace=self.trace,
            context=context, connect_timeout=self.opts.connect_timeout,
            tls_timeout=self.opts.tls_timeout, transfer_timeout=self.opts.transfer_timeout,
            byte_limit=self.opts.byte_limit, rng=self.rng)
        response = (flow.get("request") or {}).get("response")
        if response:
            # The bodies here are bulk bytes (random for the A/B object): they say nothing
            # and would only bloat the measurement; their length and hash stay.
            response.pop("body", None)
        cost = _flow_bytes(flow)
        self.used += cost
        if self.budget is not None:
            await self.budget.charge(cost)
        return {"role": role, "round": index, **flow}


async def measure(
    target_url: str,
    baseline_url: str | None,
    opts: ThrottleOptions,
    ab: ABEndpoint | None = None,
    ab_failure: str | None = None,
    *,
    budget: ByteBudget | None = None,
    trace: Trace | None = None,
    rng: random.Random | None = None,
) -> Record:
    """Run the throttling test for ``target_url``; returns its ``test_keys`` with analysis."""
    run = _Run(trace or Trace(), rng or random.Random(), opts, budget)
    queries: list[Record] = []
    _, target_host, target_port, target_path = split_url(target_url)
    target_ip = await _address(target_host, target_port, opts, run.trace, queries)
    baseline_ip: str | None = None
    baseline_host = baseline_port = baseline_path = None
    if baseline_url:
        _, baseline_host, baseline_port, baseline_path = split_url(baseline_url)
        baseline_ip = await _address(baseline_host, baseline_port, opts, run.trace, queries)

    flows: list[Record] = []
    for index in range(opts.repetitions):
        plan: list[tuple[str, str, str | None, int, str, str]] = [
            ("target", target_url, target_ip, target_port, target_host, target_path)]
        if baseline_url and baseline_host and baseline_port and baseline_path:
            plan.append(("baseline", baseline_url, baseline_ip, baseline_port, baseline_host,
                         baseline_path))
        run.rng.shuffle(plan)
        for role, url, ip, port, host, path in plan:
            if ip is None:
                continue
            flow = await run.fetch(role, index, url, ip, port, host, path, verify=True)
            if flow is not None:
                flows.append(flow)

    sni_ab: Record | None = None
    ab_ip = None if ab is None else await _address(ab.host, ab.port, opts, run.trace, queries)
    if ab is not None and ab_ip is None:
        # The collector's A/B host did not resolve: say why, as the lookup recorded it.
        ab_failure = ab_failure or queries[-1].get("failure") or failures.DNS_NO_ANSWER
    elif ab is not None and ab_ip is not None:
        innocuous = opts.innocuous_sni or baseline_host or DEFAULT_INNOCUOUS_SNI
        ab_flows: list[Record] = []
        for index in range(opts.ab_repetitions):
            sides = [("ab_original", target_host), ("ab_control", innocuous)]
            run.rng.shuffle(sides)
            # Ask for exactly the bytes measured: the rest would be data paid for nothing.
            path = f"{ab.path}?bytes={min(opts.byte_limit, ab.object_bytes)}"
            for role, sni in sides:
                url = f"https://{sni}:{ab.port}{path}" if ab.port != 443 else \
                    f"https://{sni}{path}"
                # The collector's certificate names no target; it is checked by fingerprint
                # in the analysis instead of by name here.
                flow = await run.fetch(role, index, url, ab_ip, ab.port, sni, path,
                                       verify=False)
                if flow is not None:
                    ab_flows.append(flow)
        sni_ab = {"endpoint": f"{ab.host}:{ab.port}", "address": ab_ip,
                  "original_sni": target_host,
                  "control_sni": innocuous, "certificate_sha256": ab.certificate_sha256,
                  "flows": ab_flows}

    keys: Record = {
        "target": target_url,
        "baseline": baseline_url,
        "queries": queries,
        "flows": flows,
        "sni_ab": sni_ab,
        "sni_ab_failure": ab_failure,
        "network_events": run.trace.network_events,
        "x_budget": {"bytes_used": run.used, "skipped_flows": run.skipped,
                     "daily_bytes": budget.daily_bytes if budget else None,
                     "remaining_bytes": await budget.remaining() if budget else None},
    }
    keys.update(analyze(keys, opts.thresholds))
    return keys
