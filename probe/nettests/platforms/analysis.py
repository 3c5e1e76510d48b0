"""Verdicts for platform checks: pure functions of the recorded keys, no I/O, no clock.

A platform is a set of endpoint groups (``probe.config.platforms``). Each endpoint gets a verdict
from the same primitives as web connectivity (``probe.nettests.web_connectivity.analysis``: DNS
consistency against the control, failure -> mechanism, bogons); a group combines its endpoints by
its ``need`` (``any``: one working endpoint is enough, as Telegram's data centres; ``all``: every
endpoint must work); the platform is ``blocked`` if any group is, ``ok`` if every group is, ``down``
when the control failed the same way, and ``inconclusive`` otherwise. A failure without a usable
control is *inconclusive*, never *ok* and never *blocked*.

OONI's own keys for its im tests (``telegram_tcp_blocking``, ``whatsapp_endpoints_status``,
``signal_backend_status``, ``facebook_dns_blocking``, ...) are derived here too, with OONI's
meaning: they are failure-based and ignore the control, as OONI's probe does.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from typing import Any

from probe.core.bogons import is_bogon
from probe.core.evidence import Fact, flag, written
from probe.nettests.web_connectivity import analysis

Record = dict[str, Any]

# The version of these rules, carried by every verdict as ``analysis_version`` (declared to the
# registry by this kind's ``nettest.py``): bump it whenever a rule changes what any
# measurement's verdict, layer, mechanism or evidence would be (see the README).
ANALYSIS_VERSION = 1

FACEBOOK_KEYS = {
    "stun.fbsbx.com": "stun",
    "b-api.facebook.com": "b_api",
    "b-graph.facebook.com": "b_graph",
    "edge-mqtt.facebook.com": "edge",
    "external.xx.fbcdn.net": "external_cdn",
    "scontent.xx.fbcdn.net": "scontent_cdn",
    "star.c10r.facebook.com": "star",
}
"""OONI's key names for the Messenger endpoints (facebook_<key>_reachable, ...)."""


def _stated(
    kind: str, layer: str | None = None, mechanism: str | None = None,
    confidence: float = 0.0, evidence: list[Fact] | None = None,
) -> Record:
    """A verdict with its facts, still typed (``platform_verdict`` writes them for the wire)."""
    return {"verdict": kind, "layer": layer, "mechanism": mechanism,
            "confidence": round(confidence, 2), "evidence": evidence or []}


def verdict(
    kind: str, layer: str | None = None, mechanism: str | None = None,
    confidence: float = 0.0, evidence: list[Fact] | None = None,
) -> Record:
    """An endpoint's or a group's verdict as it is recorded, its facts written as their
    ``key:value`` text: only the platform's verdict carries ``evidence_fields``."""
    return _text(_stated(kind, layer, mechanism, confidence, evidence))


def _text(found: Record) -> Record:
    return {**found, "evidence": [str(fact) for fact in found["evidence"]]}


def _answers(keys: Record) -> list[str]:
    out: list[str] = []
    for query in keys.get("queries") or []:
        for answer in query.get("answers") or []:
            address = answer.get("ipv4") or answer.get("ipv6")
            if address and address not in out:
                out.append(address)
    return out


def in_networks(address: str, networks: tuple[str, ...] | list[str]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in networks
               if ipaddress.ip_network(n, strict=False).version == ip.version)


def endpoint_consistency(keys: Record, networks: tuple[str, ...] | list[str] = ()) -> str | None:
    """Web connectivity's DNS consistency, widened by the platform's known networks.

    Answers inside the platform's networks are consistent whatever the control says; answers
    outside them are inconsistent unless the control confirms them (a stale network list must
    not turn into a false block). With no control and no networks, None.
    """
    if not keys.get("queries"):
        return "consistent"  # an address literal: nothing was resolved
    addresses = _answers(keys)
    if networks and addresses and all(in_networks(a, networks) for a in addresses):
        return "consistent"
    consistency = analysis.dns_consistency(keys)
    if consistency is None and networks and addresses:
        return "inconsistent"  # OONI's rule for Messenger: an answer outside AS32934
    return consistency


def _control_tcp(keys: Record) -> list[bool]:
    """Control outcomes for the endpoints the probe connected to."""
    control = keys.get("control") or {}
    table = control.get("tcp_connect") or {}
    out = []
    for connect in keys.get("tcp_connect") or []:
        ip, port = connect["ip"], connect["port"]
        entry = table.get(f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}")
        if entry is not None:
            out.append(bool(entry.get("status", entry.get("failure") is None)))
    return out


def _injection(keys: Record) -> Record | None:
    for query in keys.get("queries") or []:
        first = {a.get("ipv4") or a.get("ipv6") for a in query.get("answers") or []}
        for late in query.get("x_late_answers") or []:
            again = {a.get("ipv4") or a.get("ipv6") for a in late.get("answers") or []}
            if not late.get("identical") and again != first:
                return verdict("blocked", "dns", "injected", 0.9,
                               [Fact("dns_duplicate_answers", query.get("query_type"))])
    return None


def endpoint_verdict(
    keys: Record, networks: tuple[str, ...] | list[str] = (), exchange: str = "connect"
) -> Record:
    """Verdict for one reachability endpoint (a host or address on some ports).

    ``keys`` holds ``queries``, ``tcp_connect``, ``requests`` (for ``exchange == "http"``),
    ``control`` and ``control_failure`` in web connectivity's shapes.
    """
    injected = _injection(keys)
    if injected:
        return injected
    control = keys.get("control") or {}
    have_control = not keys.get("control_failure") and bool(control)
    system = next((q for q in keys.get("queries") or [] if q.get("engine") == "getaddrinfo"),
                  None)
    control_dns = control.get("dns") or {}
    control_addrs = control_dns.get("addrs") or []

    if system is not None and system.get("failure"):
        failure = system["failure"]
        evidence = [Fact("probe_dns", failure)]
        if not have_control:
            return verdict("inconclusive", "dns", analysis.mechanism_of(failure),
                           evidence=[*evidence, Fact("control", "missing")])
        if control_dns.get("failure") or not control_addrs:
            return verdict("down", "dns", analysis.mechanism_of(failure), 0.8,
                           [*evidence, Fact("control_dns", control_dns.get("failure"))])
        return verdict("blocked", "dns", analysis.mechanism_of(failure) or "unknown", 0.8,
                       [*evidence, Fact("control_dns", "ok")])

    addresses = _answers(keys)
    if system is not None and addresses and all(is_bogon(a) for a in addresses) and not (
            control_addrs and all(is_bogon(a) for a in control_addrs)):
        return verdict("blocked", "dns", "bogon", 0.9 if have_control else 0.6,
                       [Fact("probe_answers", ",".join(sorted(addresses)))])

    consistency = endpoint_consistency(keys, networks)
    connects = keys.get("tcp_connect") or []
    requests = keys.get("requests") or []
    tcp_ok = any(c["status"]["success"] for c in connects)
    http_ok = any(r.get("response") is not None for r in requests)
    worked = http_ok if exchange == "http" else tcp_ok
    if worked:
        if consistency == "inconsistent":
            return verdict("blocked", "dns", "spoofed", 0.7 if have_control else 0.5,
                           [flag("dns_inconsistent"),
                            Fact("probe_answers", ",".join(sorted(addresses)))])
        return verdict("ok", confidence=0.9 if have_control else 0.7,
                       evidence=[Fact("http" if exchange == "http" else "tcp", "ok")])

    if not connects:
        return verdict("inconclusive", evidence=[flag("no_address")])
    if not tcp_ok:
        layer, failure = "tcp", connects[0]["status"]["failure"]
    else:
        failed = next((r for r in requests if r.get("failure")), None)
        layer, failure = "http", failed["failure"] if failed else None
    evidence = [Fact(f"probe_{layer}", failure)]
    if consistency == "inconsistent":
        return verdict("blocked", "dns", "spoofed", 0.7, [flag("dns_inconsistent"), *evidence])
    if not have_control:
        return verdict("inconclusive", layer, analysis.mechanism_of(failure),
                       evidence=[*evidence, Fact("control_failure", keys.get("control_failure"))])
    if layer == "tcp":
        control_tcp = _control_tcp(keys)
        if any(control_tcp):
            return verdict("blocked", "tcp", analysis.mechanism_of(failure) or "unknown", 0.8,
                           [*evidence, Fact("control_tcp", "ok")])
        if control_tcp:
            return verdict("down", "tcp", analysis.mechanism_of(failure), 0.8,
                           [*evidence, Fact("control_tcp", "failed")])
        return verdict("inconclusive", "tcp", analysis.mechanism_of(failure),
                       evidence=[*evidence, Fact("control_tcp", "missing")])
    control_http = control.get("http_request") or {}
    if control_http.get("failure") is None and control_http.get("status_code") is not None:
        return verdict("blocked", "http", analysis.mechanism_of(failure) or "unknown", 0.8,
                       [*evidence, Fact("control_http", "ok")])
    if control_http.get("failure"):
        return verdict("down", "http", analysis.mechanism_of(failure), 0.7,
                       [*evidence, Fact("control_http", control_http["failure"])])
    return verdict("inconclusive", "http", analysis.mechanism_of(failure),
                   evidence=[*evidence, Fact("control_http", "missing")])


def web_failure(keys: Record) -> str | None:
    """The first failure of a web connectivity measurement, OONI-style (None if it worked)."""
    requests = keys.get("requests") or []
    if requests and requests[0].get("response") is not None:
        return None
    if keys.get("dns_experiment_failure"):
        return str(keys["dns_experiment_failure"])
    connects = keys.get("tcp_connect") or []
    if connects and not any(c["status"]["success"] for c in connects):
        return str(connects[0]["status"]["failure"])
    handshakes = keys.get("tls_handshakes") or []
    if handshakes and not any(h.get("failure") is None for h in handshakes):
        return str(handshakes[0]["failure"])
    if keys.get("http_experiment_failure"):
        return str(keys["http_experiment_failure"])
    return "unknown_failure: no response"


def _dominant(records: list[Record]) -> tuple[str | None, str | None]:
    counts = Counter((r.get("layer"), r.get("mechanism")) for r in records)
    return counts.most_common(1)[0][0]


def combine(need: str, parts: list[tuple[str, Record]]) -> Record:
    """Combine named verdicts: ``need`` is ``any`` (one ok part is enough) or ``all``."""
    return _text(_combined(need, parts))


def _combined(need: str, parts: list[tuple[str, Record]]) -> Record:
    if not parts:
        return _stated("inconclusive", evidence=[flag("nothing_measured")])
    ok = [name for name, v in parts if v["verdict"] == "ok"]
    bad = [(name, v) for name, v in parts if v["verdict"] in ("blocked", "throttled")]
    down = [name for name, v in parts if v["verdict"] == "down"]
    evidence = [Fact(name, v["verdict"] + (f":{v['layer']}/{v['mechanism']}"
                                           if v["verdict"] in ("blocked", "throttled", "down")
                                           else ""))
                for name, v in parts]
    if need == "any" and ok:
        confidence = max(v["confidence"] for _, v in parts if v["verdict"] == "ok")
        return _stated("ok", confidence=confidence,
                       evidence=[Fact("ok", f"{len(ok)}/{len(parts)}"), *evidence])
    if bad:
        kind = "blocked" if any(v["verdict"] == "blocked" for _, v in bad) else "throttled"
        chosen = [v for _, v in bad if v["verdict"] == kind]
        layer, mechanism = _dominant(chosen)
        return _stated(kind, layer, mechanism, max(v["confidence"] for v in chosen), evidence)
    if len(ok) == len(parts):
        return _stated("ok", confidence=min(v["confidence"] for _, v in parts), evidence=evidence)
    if down and len(ok) + len(down) == len(parts):
        downs = [v for _, v in parts if v["verdict"] == "down"]
        layer, mechanism = _dominant(downs)
        return _stated("down", layer, mechanism, min(v["confidence"] for v in downs), evidence)
    return _stated("inconclusive", evidence=evidence)


def group_verdict(need: str, endpoints: list[Record]) -> Record:
    """A group's verdict from its endpoint records (``target`` and ``analysis`` each)."""
    return combine(need, [(e["target"], e["analysis"]) for e in endpoints])


def platform_stated(groups: dict[str, Record]) -> Record:
    """Every group must work for the platform to work: the platform's verdict with its facts
    still typed, for the measurement to add its own (``injected_reset``) before writing it
    (``probe.core.evidence.written``)."""
    return _combined("all", list(groups.items()))


def platform_verdict(groups: dict[str, Record]) -> Record:
    """The platform's verdict as it is recorded: ``evidence`` and ``evidence_fields``."""
    return written(platform_stated(groups))


def _status(failure: str | None) -> str:
    return "blocked" if failure else "ok"


def _first(endpoints: list[Record]) -> str | None:
    return next((e["failure"] for e in endpoints if e.get("failure")), None)


def ooni_keys(platform: str, endpoints: list[Record]) -> Record:
    """OONI's test keys for its im tests, from our endpoint records.

    Each endpoint record has ``group``, ``target``, ``failure`` (first failure or None),
    ``tcp_ok``, ``http_ok`` and ``dns_consistency``.
    """
    by_group: dict[str, list[Record]] = {}
    for endpoint in endpoints:
        by_group.setdefault(endpoint["group"], []).append(endpoint)
    if platform == "telegram":
        dcs, web = by_group.get("datacenters", []), by_group.get("web", [])
        web_failure_ = _first(web)
        return {"telegram_tcp_blocking": not any(e["tcp_ok"] for e in dcs),
                "telegram_http_blocking": not any(e["http_ok"] for e in dcs),
                "telegram_web_status": _status(web_failure_),
                "telegram_web_failure": web_failure_}
    if platform == "whatsapp":
        hosts = by_group.get("endpoints", [])
        registration = _first(by_group.get("registration", []))
        web_failure_ = _first(by_group.get("web", []))
        return {
            "whatsapp_endpoints_status": "ok" if any(e["tcp_ok"] for e in hosts) else "blocked",
            "whatsapp_endpoints_blocked": [e["target"] for e in hosts if not e["tcp_ok"]],
            "whatsapp_endpoints_dns_inconsistent": [
                e["target"] for e in hosts if e["dns_consistency"] == "inconsistent"],
            "registration_server_status": _status(registration),
            "registration_server_failure": registration,
            "whatsapp_web_status": _status(web_failure_),
            "whatsapp_web_failure": web_failure_,
        }
    if platform == "signal":
        failure = _first(by_group.get("backend", []))
        return {"signal_backend_status": _status(failure), "signal_backend_failure": failure}
    if platform == "facebook_messenger":
        keys: Record = {}
        dns_blocking = tcp_blocking = False
        for endpoint in by_group.get("endpoints", []):
            name = FACEBOOK_KEYS.get(endpoint["target"],
                                     endpoint["target"].split(".")[0].replace("-", "_"))
            consistent = endpoint["dns_consistency"] == "consistent"
            keys[f"facebook_{name}_dns_consistent"] = consistent
            keys[f"facebook_{name}_reachable"] = endpoint["tcp_ok"]
            dns_blocking |= not consistent
            tcp_blocking |= consistent and not endpoint["tcp_ok"]
        keys["facebook_dns_blocking"] = dns_blocking
        keys["facebook_tcp_blocking"] = tcp_blocking
        return keys
    return {}
