"""Censor location: a TTL-limited trace with the triggering request (test name ``censor_trace``).

For ``http://`` URLs the trigger is a GET whose Host header is the URL's host; for
``https://`` URLs it is a TLS ClientHello whose SNI is. The control request is the same with a
harmless name (``example.com`` by default). Observation is ``probe.netx.packet.censor_trace``;
the verdict and the censor's hop come from ``probe.nettests.censor_trace.analysis.locate``. Without
CAP_NET_RAW the test keys carry ``failure: permission_denied`` and an inconclusive verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probe.core.evidence import Fact, written
from probe.core.urls import split_url
from probe.nettests.censor_trace import analysis as censor_analysis
from probe.netx import dns, packet
from probe.netx.trace import Trace

Record = dict[str, Any]


@dataclass(frozen=True, slots=True)
class TraceOptions:
    address: str | None = None
    control_name: str = "example.com"
    max_ttl: int = 30
    step_timeout: float = 1.0
    connect_timeout: float = 5.0
    dns_timeout: float = 4.0


def payloads(url: str, control_name: str) -> tuple[bytes, bytes, str]:
    """(trigger, control, layer) for ``url``."""
    scheme, host, _port, path = split_url(url)
    if scheme == "https":
        return packet.client_hello(host), packet.client_hello(control_name), "tls"
    return packet.http_request(host, path), packet.http_request(control_name, path), "http"


async def measure(url: str, options: TraceOptions) -> Record:
    """Trace towards ``url``'s server and locate whatever acts on its name."""
    _scheme, host, port, _path = split_url(url)
    trigger, control, layer = payloads(url, options.control_name)
    keys: Record = {"trigger": host, "control_name": options.control_name, "layer": layer,
                    "queries": [], "failure": None}
    address = options.address
    if address is None:
        query = await dns.getaddrinfo(host, Trace(), options.dns_timeout, port)
        keys["queries"].append(query)
        candidates = [a for a in dns.addresses_of(query) if ":" not in a]
        if not candidates:
            keys["failure"] = query["failure"] or "dns_no_answer"
            keys["analysis"] = written(censor_analysis.verdict(
                "inconclusive", "dns", evidence=[Fact("probe_dns", keys["failure"])]))
            return keys
        address = candidates[0]
    observed = await packet.censor_trace(address, port, trigger, control, options.max_ttl,
                                         options.step_timeout, options.connect_timeout)
    keys.update(observed)
    if observed["failure"]:
        keys["censor"] = None
        keys["analysis"] = written(censor_analysis.verdict(
            "inconclusive", evidence=[Fact("failure", observed["failure"])]))
        return keys
    located = censor_analysis.locate_stated(observed["control_hops"], observed["trigger_hops"],
                                            layer)
    keys["censor"] = located["censor"]
    analysis = located["analysis"]
    injection = located["censor"].get("injection")
    if injection and injection.get("injected"):
        analysis["evidence"].append(Fact("response", "injected"))
    keys["analysis"] = written(analysis)
    return keys
