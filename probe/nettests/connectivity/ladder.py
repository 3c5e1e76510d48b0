"""The connectivity ladder: gateway, ISP resolver, domestic site, foreign anycast, collector.

It answers "is this network online at all?" before any verdict about a site is trusted: a
probe without Internet access must say so ("no connectivity: gateway reachable, foreign hosts
unreachable") and not report every site as blocked. Each rung is a plain TCP connect (or a DNS
query for the resolver); the interpretation is the pure function ``summarise``.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.netx import dns, tcp
from probe.netx.trace import Trace

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class LadderConfig:
    """Endpoints of each rung; empty means "skip this rung"."""

    gateway_port: int = 53
    resolver_name: str = "kloop.kg"
    domestic: tuple[str, ...] = ()
    foreign: tuple[str, ...] = ("1.1.1.1:443", "8.8.8.8:443", "9.9.9.9:443")
    collector: str | None = None
    timeout: float = 3.0
    route_file: str = "/proc/net/route"
    arp_file: str = "/proc/net/arp"


# The version of ``summarise`` (online or not, and the sentence), carried by every ladder
# measurement's analysis as ``analysis_version`` (declared to the registry by this kind's
# ``nettest.py``): bump it whenever a rule changes what any ``online`` or summary would be.
ANALYSIS_VERSION = 1


def default_gateway(route_file: str = "/proc/net/route") -> str | None:
    """The IPv4 default gateway from the kernel's routing table, or None."""
    try:
        lines = Path(route_file).read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) > 2 and parts[1] == "00000000":
            return socket.inet_ntoa(struct.pack("<L", int(parts[2], 16)))
    return None


def _arp_complete(address: str, arp_file: str) -> bool:
    try:
        lines = Path(arp_file).read_text().splitlines()[1:]
    except OSError:
        return False
    return any(p[0] == address and p[2] == "0x2" for p in (line.split() for line in lines)
               if len(p) > 3)


async def _tcp_ok(endpoint: str, trace: Trace, timeout: float) -> tuple[bool, str | None]:
    host, _, port = endpoint.rpartition(":")
    record, stream = await tcp.connect(host.strip("[]"), int(port), trace, timeout)
    await tcp.close(stream)
    failure = record["status"]["failure"]
    # A refusal proves the host answered: it is reachable, just not listening there.
    return record["status"]["success"] or failure == "connection_refused", failure


async def measure(config: LadderConfig) -> Record:
    """Climb every rung concurrently and return the raw observations."""
    trace = Trace()
    rungs: Record = {}
    gateway = default_gateway(config.route_file)

    async def gateway_rung() -> None:
        if gateway is None:
            rungs["gateway"] = {"reachable": False, "failure": "no_default_route"}
            return
        ok, failure = await _tcp_ok(f"{gateway}:{config.gateway_port}", trace, config.timeout)
        ok = ok or _arp_complete(gateway, config.arp_file)
        rungs["gateway"] = {"reachable": ok, "failure": None if ok else failure}

    async def resolver_rung() -> None:
        query = await dns.getaddrinfo(config.resolver_name, trace, config.timeout)
        rungs["resolver"] = {"reachable": query["failure"] is None, "failure": query["failure"]}

    async def group(name: str, endpoints: tuple[str, ...]) -> None:
        if not endpoints:
            return
        results = await asyncio.gather(*(_tcp_ok(e, trace, config.timeout) for e in endpoints))
        ok = [e for e, (good, _) in zip(endpoints, results, strict=True) if good]
        rungs[name] = {"reachable": bool(ok), "reached": len(ok), "tried": len(endpoints),
                       "failure": None if ok else results[0][1]}

    tasks = [gateway_rung(), resolver_rung(), group("domestic", config.domestic),
             group("foreign", config.foreign)]
    if config.collector:
        tasks.append(group("collector", (config.collector,)))
    await asyncio.gather(*tasks)
    return {"rungs": rungs, "gateway_known": gateway is not None}


def summarise(observation: Record) -> tuple[bool, str]:
    """(online, one honest sentence) from the ladder's observations."""
    rungs = observation["rungs"]

    def ok(name: str) -> bool | None:
        return rungs[name]["reachable"] if name in rungs else None

    if ok("foreign") or (ok("foreign") is None and ok("collector")):
        parts = ["online"]
        if ok("domestic") is False:
            parts.append("domestic hosts unreachable")
        return True, ", ".join(parts)
    gateway = ok("gateway")
    facts = []
    if not observation.get("gateway_known"):
        facts.append("no default route")
    else:
        facts.append("gateway reachable" if gateway else "gateway unreachable")
    if ok("resolver") is not None:
        facts.append("resolver answers" if ok("resolver") else "resolver fails")
    if ok("domestic") is not None:
        facts.append("domestic hosts reachable" if ok("domestic") else "domestic hosts unreachable")
    facts.append("foreign hosts unreachable")
    if ok("domestic"):
        return False, "international cut: " + ", ".join(facts)
    return False, "no connectivity: " + ", ".join(facts)
