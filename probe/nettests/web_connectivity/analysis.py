"""The verdict for one web connectivity measurement: a pure function of its test keys.

No I/O, no clock, no randomness: ``analyze(keys, url, cc)`` reads the keys that
``probe.nettests.web_connectivity.measure`` recorded (the probe's observations and the control's
view) and returns

* OONI's keys, as OONI Probe's Web Connectivity would compute them
  (``probe.nettests.web_connectivity.ooni_classic``: ``dns_consistency``, ``body_proportion``,
  ``*_match``, ``blocking``, ``accessible``, ``http_experiment_failure``,
  ``dns_experiment_failure``), and
* Kuzot's ``analysis``: ``{verdict, layer, mechanism, confidence, evidence,
  analysis_version}``.

It reads OONI's measurements as well as Kuzot's: the same keys, OONI's names for the system
resolver (``getaddrinfo``, ``golang_net_resolver``, ``system``), the stored response body.

OONI's keys follow OONI exactly, with three deliberate exceptions, all ``null``/``null``
("could not determine") where OONI decides: a CDN challenge page over plain HTTP (OONI QA
case 5, which OONI calls ``http-diff``), a failed lookup without a usable control (which
OONI calls accessible, probe-engine#579), and an IPv6 connect that failed for want of a route
(network or host unreachable), which OONI's classic walk calls ``tcp_ip`` when no other
endpoint decides (an IPv6-only site seen from a host without IPv6); OONI's own minipipeline
already sets such failures apart as a misconfigured IPv6 stack (ooni/probe#2284, #2456), and
so does R4 below. Kuzot's verdict follows these rules, first match wins:

R1  Injection. A UDP query that received two answers with different addresses (or rcodes)
    is ``blocked/dns/injected``: a resolver answers once; a censor on the path races it.
R2  Secure page. A final response over HTTPS with a certificate that validated cannot be
    forged by the network: ``ok`` (also without a control, OONI case 8; also when the
    page is a CDN challenge). Exception: a chain whose issuer is a known interception CA
    (the user trusts the state CA) is ``blocked/tls/mitm``, confirmed.
R3  No control. Without a usable control, nothing else is judged: ``inconclusive``. A
    failure, a blockpage or a plain-HTTP page alone never becomes ``blocked`` or ``ok``.
R4  The verdict follows the user's own path: the system resolver's answers (or the URL's
    address literal) and the endpoints dialled from them to fetch the page, as OONI's
    classic subset has it (``ooni_classic.user_path``). A page that came only through an
    address another resolver (``--resolver``, ``resolvers:``, DoH) gave is not the user's
    page (R12). The decisive step is taken at the hop where that path ends (the first hop
    without a page of its own, or whose page is not a followed redirect), in this order:
    DNS (no address on the path to dial), TCP (every relevant connect failed), TLS (every
    handshake failed), HTTP (the request failed, or a final page came back).
    Relevant endpoints: those of the path; IPv6 endpoints count only when the host has
    IPv6 connectivity and the failure is not "network/host unreachable" (an IPv6 failure
    without IPv6 is not evidence).
    After the first hop the control has no per-step data, so its final page stands in:
    a probe failure where the control fetched the page is blocking, a failure the control
    shares is the site being down.
R5  DNS evidence at the first hop modifies later steps: the probe's answers are
    *inconsistent* when they share no address (nor ASN) with the control's and no TLS
    handshake validated one of them for the domain; *bogon* when they are all in IANA
    special-purpose ranges and the control's are not the same; *ghost* when the probe got
    addresses for a name the control could not resolve (``blocked/dns/spoofed`` at once).
    A TCP, TLS or HTTP failure, or a differing page, on inconsistent or bogon answers is
    ``blocked/dns/spoofed`` (or ``bogon``); a page that matches the control's on
    inconsistent answers is ``ok`` with ``dns_inconsistent`` in the evidence (a
    transparent proxy serving the real content).
R6  DNS step: the system resolver failed (or gave only loopback addresses, which are not
    dialled): ``down`` when the control failed too (or also saw only loopback), else
    ``blocked/dns/<nxdomain|no_answer|servfail|timeout>`` (``bogon`` for loopback).
R7  TCP step: ``blocked/tcp/<refused|reset|timeout>`` when the control connected to the
    same endpoint; ``down`` when it failed too; ``inconclusive`` without its data.
R8  TLS step, certificate failures: the chain the probe was shown is compared with the
    control's. Same leaf as the control (or the control failed the same way): ``down``
    (the site's own certificate is bad: expired, wrong name, private CA). An issuer the
    control did not see: ``blocked/tls/mitm`` with issuer and fingerprint in the evidence
    (Kazakhstan's state CA is the model), confirmed when the issuer is a known
    interception CA. No control certificate: ``inconclusive``. Other TLS failures
    (reset, EOF, timeout after the ClientHello) follow R7 with layer ``tls``.
R9  HTTP step, failed request: a broken redirect (no host in Location, more than ten
    redirects) is ``down`` when the control saw the same; otherwise R7 with layer
    ``http``; a timeout while bytes were still arriving is ``throttled``.
R10 HTTP step, final page over plain HTTP: a CDN challenge page is ``inconclusive`` (not
    censorship, OONI's known false positive); OONI's comparison (status, and body length,
    headers or title) decides between ``ok`` and ``blocked/http/diff``; a control that could
    not fetch the page leaves it ``inconclusive``. The evidence names Kuzot's header
    comparison ``uncommon_headers_shared`` (OONI's common headers and framing headers left
    out), not ``headers_match``, which is OONI's key with another meaning. A differing page
    that carries a blocking phrase (``probe.nettests.web_connectivity.blockphrases``: in its title,
    or in the text of a short page much smaller than the control's) is an unknown blockpage:
    ``blocked/http/blockpage`` at 0.7 (layer ``dns`` at 0.8 on inconsistent answers, R5), the
    phrase in the evidence, never confirmed.
R11 Known blockpage on the redirect chain, checked after R1 (before R2): a blockpage
    fingerprint that decides in the probe's country (``Fingerprint.decides``: Kuzot's own
    and header fingerprints anywhere, OONI's body fingerprints where they were seen, never
    a vague one) in the headers (``Location``, ``Server``...) or the body of any response
    that came over plain HTTP, at any hop, is ``blocked/http/blockpage``
    (layer ``dns`` at the first hop on inconsistent answers), confirmed when the fingerprint
    is expected in the probe's country; only plain HTTP, because a validated HTTPS response
    is the site's own. A body fingerprint on the final page counts only when that page
    differs from the control's (a news page that quotes a blockpage's address is no
    blockpage). Without a control, R3.
R12 Another resolver reached the site. When the user's path ended in a block or a failure
    and a page came through an address only another resolver gave, the verdict stays what
    the user's path says (most users use the ISP's resolver: for them the site is
    blocked), and the evidence adds ``alternative_resolver_reached:<engine>:<status>:
    <resolver>`` for each such page: the site works, the ISP's resolver is the block.

``verdict=down`` means the site failed the same way from the control; evidence strings are
short ``key:value`` facts; ``confirmed:<fingerprint>`` marks a deterministic fingerprint.
An ``ok`` verdict still names each relevant endpoint (R4) of the first hop that failed where
the control connected, as ``endpoint_failed:<endpoint>:<failure>``: the page came through
another address, but one was blocked (a site's IPv6 address alone, say), and that is seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import dns.rcode

from probe.core import failures
from probe.core.bogons import is_bogon, is_loopback
from probe.core.evidence import Fact, flag, of_facts
from probe.nettests.web_connectivity import blockpages, blockphrases, ooni_classic

Record = dict[str, Any]

# The version of the rules below, carried by every verdict as ``analysis_version``: bump it
# whenever a rule changes what any measurement's verdict, layer, mechanism or evidence would
# be, so that stored verdicts can be told apart and re-analysed (see the README).
ANALYSIS_VERSION = 2

_MECHANISM = {
    failures.DNS_NXDOMAIN: "nxdomain",
    "android_dns_cache_no_data": "nxdomain",  # OONI's string for Android's NXDOMAIN
    failures.DNS_NO_ANSWER: "no_answer",
    failures.DNS_SERVFAIL: "servfail",
    failures.DNS_REFUSED: "servfail",
    failures.DNS_TEMPORARY: "servfail",
    failures.TIMEOUT: "timeout",
    failures.CONNECTION_REFUSED: "refused",
    failures.CONNECTION_RESET: "reset",
    failures.EOF_ERROR: "eof",
}
_IPV6_NO_ROUTE = frozenset({failures.NETWORK_UNREACHABLE, failures.HOST_UNREACHABLE})
_REDIRECT_FAILURES = frozenset({failures.HTTP_INVALID_REDIRECT, failures.TOO_MANY_REDIRECTS,
                                failures.HTTP_INVALID_REDIRECT_URL,
                                failures.HTTP_REDIRECT_PRIVATE})
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})


def _mechanism(failure: str | None) -> str | None:
    """The ``analysis.mechanism`` a failure string points to, if any."""
    if failure is None:
        return None
    return _MECHANISM.get(failure)


def mechanism_of(failure: str | None) -> str | None:
    """Like ``_mechanism``, for checks without certificate comparison (the platform checks):
    any certificate failure counts as interception, any other unnamed failure as unknown."""
    if failure in failures.CERTIFICATE_FAILURES:
        return "mitm"
    if failure is not None and failure.startswith("unknown"):
        return "unknown"
    return _mechanism(failure)


def dns_consistency(keys: Record) -> str | None:
    """DNS consistency of the system resolver's answers with the control's, for checks that
    record no redirect depth (the platform checks): OONI's classic rule plus OONI v0.5's TLS
    rescue. Returns "consistent", "inconsistent" or None (no control to compare with).
    Web connectivity reports OONI's exact ``dns_consistency`` from
    ``probe.nettests.web_connectivity.ooni_classic``.
    """
    control = keys.get("control") or {}
    control_dns = control.get("dns")
    if keys.get("control_failure") or not control_dns:
        return None
    system = next((q for q in keys.get("queries") or []
                   if ooni_classic.is_system_engine(q.get("engine"))), None)
    if system is None:
        return "consistent"  # the URL's host is an address literal
    probe_addrs = _addresses(system)
    control_addrs = set(control_dns.get("addrs") or [])
    if system.get("failure"):
        if control_dns.get("failure") and system["failure"] == failures.DNS_NXDOMAIN:
            return "consistent"
        if control_dns.get("failure") and not control_addrs:
            return "consistent"
        return "inconsistent"
    if probe_addrs & control_addrs:
        return "consistent"
    if not control_addrs:
        return "inconsistent"  # "ghost" answers: the probe resolved, the control did not
    # A certificate valid for the domain proves the address serves it (OONI v0.5 TLS rescue).
    good_tls = {h["address"].rsplit(":", 1)[0].strip("[]")
                for h in keys.get("tls_handshakes") or [] if h.get("failure") is None}
    if probe_addrs & good_tls:
        return "consistent"
    if all(is_bogon(a) for a in probe_addrs) and not all(is_bogon(a) for a in control_addrs):
        return "inconsistent"
    control_asns = {v.get("asn") for v in (control.get("ip_info") or {}).values() if v.get("asn")}
    probe_asns = {(control.get("ip_info") or {}).get(a, {}).get("asn") for a in probe_addrs}
    if control_asns & {a for a in probe_asns if a}:
        return "consistent"
    return "inconsistent"


def _verdict(
    verdict: str, layer: str | None = None, mechanism: str | None = None,
    confidence: float = 0.0, evidence: list[Fact] | None = None,
) -> Record:
    """A verdict with its facts, still typed: ``verdict`` writes them for the wire."""
    return {"verdict": verdict, "layer": layer, "mechanism": mechanism,
            "confidence": round(confidence, 2), "evidence": evidence or []}


def _addresses(record: Record) -> set[str]:
    out = set()
    for answer in record.get("answers") or []:
        address = answer.get("ipv4") or answer.get("ipv6")
        if address:
            out.add(address)
    return out


def _depth(record: Record) -> int:
    for tag in record.get("tags") or []:
        if tag.startswith("depth="):
            return int(tag.removeprefix("depth="))
    return 0


def _ip_of(address: str) -> str:
    return address.rsplit(":", 1)[0].strip("[]")


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(slots=True)
class _Flow:
    connect: Record
    on_path: bool
    handshake: Record | None = None
    request: Record | None = None

    @property
    def ip(self) -> str:
        return str(self.connect["ip"])

    @property
    def endpoint(self) -> str:
        return _endpoint(self.ip, int(self.connect["port"]))


@dataclass(slots=True)
class _Hop:
    """One redirect hop. ``flows`` and ``request`` are the user's own path (R4);
    ``alternatives`` are pages fetched through addresses only another resolver gave."""

    depth: int
    queries: list[Record] = field(default_factory=list)
    flows: list[_Flow] = field(default_factory=list)
    request: Record | None = None
    alternatives: list[_Flow] = field(default_factory=list)

    @property
    def system(self) -> Record | None:
        return next((q for q in self.queries if ooni_classic.is_system_engine(q.get("engine"))),
                    None)


def _hops(keys: Record, path: frozenset[int]) -> list[_Hop]:
    hops: dict[int, _Hop] = {}

    def hop(depth: int) -> _Hop:
        return hops.setdefault(depth, _Hop(depth))

    for query in keys.get("queries") or []:
        hop(_depth(query)).queries.append(query)
    flows: dict[Any, _Flow] = {}
    for index, connect in enumerate(keys.get("tcp_connect") or []):
        txid = connect.get("transaction_id")
        flow = _Flow(connect, on_path=int(txid or 0) in path)
        flows[txid if txid is not None else ("index", index)] = flow
        if flow.on_path:
            hop(_depth(connect)).flows.append(flow)
    for handshake in keys.get("tls_handshakes") or []:
        flow_for = flows.get(handshake.get("transaction_id"))
        if flow_for is not None:
            flow_for.handshake = handshake
    for request in keys.get("requests") or []:
        depth = _depth(request)
        flow_for = flows.get(request.get("transaction_id"))
        if flow_for is not None:
            flow_for.request = request
        if flow_for is not None and not flow_for.on_path:
            hop(depth).alternatives.append(flow_for)
            continue
        hop(depth).request = hop(depth).request or request
    return [hops[d] for d in sorted(hops)]


def _decisive(hops: list[_Hop]) -> _Hop | None:
    """The hop where the user's path ends (R4): the first without a page of its own, or
    whose page is not a redirect the probe followed."""
    for index, hop in enumerate(hops):
        request = hop.request
        if request is None or request.get("failure") is not None or \
                request.get("response") is None or index + 1 == len(hops) or \
                (request["response"].get("code") not in _REDIRECT_CODES):
            return hop
    return None


def _alternative_reach(hops: list[_Hop], start: int) -> list[Fact]:
    """``alternative_resolver_reached:<engine>:<status>:<resolver>`` for each page fetched
    at or after ``start`` through an address that only another resolver gave (R12)."""
    facts: list[Fact] = []
    for hop in hops:
        if hop.depth < start:
            continue
        for flow in hop.alternatives:
            request = flow.request or {}
            response = request.get("response")
            if request.get("failure") is not None or response is None:
                continue
            engine, resolver = _resolver_of(hop, flow.ip, request)
            facts.append(Fact("alternative_resolver_reached",
                              f"{engine}:{response.get('code')}:{resolver}"))
    return facts


def _resolver_of(hop: _Hop, ip: str, request: Record) -> tuple[str, str]:
    """(engine, resolver address) of the lookup that gave the address a request went to."""
    for query in hop.queries:
        if ooni_classic.is_system_engine(query.get("engine")):
            continue
        if ip in _addresses(query):
            return str(query.get("engine")), str(query.get("resolver_address") or "")
    return str(request.get("x_origin") or "control"), ""


@dataclass(slots=True)
class _Control:
    """The control's view, with helpers; ``usable`` is False when it failed or is absent."""

    view: Record
    usable: bool

    @property
    def dns(self) -> Record:
        return self.view.get("dns") or {}

    @property
    def addrs(self) -> set[str]:
        return set(self.dns.get("addrs") or [])

    @property
    def http(self) -> Record:
        return self.view.get("http_request") or {}

    @property
    def http_ok(self) -> bool:
        return not self.http.get("failure") and self.http.get("status_code") is not None

    def tcp(self, endpoint: str) -> bool | None:
        entry = (self.view.get("tcp_connect") or {}).get(endpoint)
        return None if entry is None else bool(entry.get("status"))

    def tls(self, endpoint: str) -> Record | None:
        entry = (self.view.get("tls_handshake") or {}).get(endpoint)
        return entry if isinstance(entry, dict) else None

    def certificates(self) -> tuple[set[str], set[str]]:
        """(issuers, leaf SHA-256 fingerprints) the control was shown for the site."""
        issuers, fingerprints = set(), set()
        entries = [*(self.view.get("tls_handshake") or {}).values(), self.http]
        for entry in entries:
            issuer = entry.get("x_issuer") or entry.get("x_tls_issuer")
            sha = entry.get("x_sha256") or entry.get("x_tls_sha256")
            if issuer:
                issuers.add(issuer)
            if sha:
                fingerprints.add(sha)
        return issuers, fingerprints


@dataclass(slots=True)
class _DNSView:
    inconsistent: bool = False
    bogon: bool = False
    ghost: bool = False
    evidence: list[Fact] = field(default_factory=list)


def _dns_view(first: _Hop | None, control: _Control, domain: str, keys: Record) -> _DNSView:
    view = _DNSView()
    system = first.system if first else None
    if system is None or system.get("failure") or not control.usable:
        return view
    probe = _addresses(system)
    if not probe:
        return view
    if control.dns.get("failure") or not control.addrs:
        view.ghost = True
        view.evidence = [Fact("probe_answers", ','.join(sorted(probe))),
                         Fact("control_dns", control.dns.get('failure') or 'no_addresses')]
        return view
    if probe & control.addrs:
        return view
    validated = {_ip_of(h["address"]) for h in keys.get("tls_handshakes") or []
                 if h.get("failure") is None and h.get("server_name") == domain}
    if probe & validated:
        return view
    ip_info = control.view.get("ip_info") or {}
    probe_asns = {(ip_info.get(a) or {}).get("asn") for a in probe} - {None, 0}
    control_asns = {(ip_info.get(a) or {}).get("asn") for a in control.addrs} - {None, 0}
    if probe_asns & control_asns:
        return view
    view.inconsistent = True
    view.bogon = all(is_bogon(a) for a in probe)
    view.evidence = [Fact("probe_answers", ','.join(sorted(probe))),
                     Fact("control_answers", ','.join(sorted(control.addrs)))]
    return view


def _relevant(flows: list[_Flow], keys: Record) -> list[_Flow]:
    """The flows of the user's path whose outcome is evidence (R4)."""
    classic = [f for f in flows if f.on_path]
    have_v6 = keys.get("x_ipv6_available") is not False

    def counts(flow: _Flow) -> bool:
        if ":" not in flow.ip:
            return True
        failure = (flow.connect.get("status") or {}).get("failure")
        return have_v6 and failure not in _IPV6_NO_ROUTE

    return [f for f in classic if counts(f)]


def _rcode_text(rcode: Any) -> Any:
    """A DNS rcode as its name (``3`` -> ``NXDOMAIN``) for the evidence; as given otherwise."""
    if isinstance(rcode, int) and not isinstance(rcode, bool):
        try:
            return dns.rcode.to_text(dns.rcode.Rcode(rcode))
        except ValueError:
            return rcode
    return rcode


def _injection(keys: Record) -> Record | None:
    for query in keys.get("queries") or []:
        first = _addresses(query)
        for late in query.get("x_late_answers") or []:
            if late.get("identical"):
                continue
            later = _addresses(late)
            if later == first and late.get("rcode") == query.get("rcode"):
                continue
            return _verdict("blocked", "dns", "injected", 0.9, [
                Fact("dns_duplicate_answers",
                     f"{query.get('resolver_address')}:{query.get('query_type')}"),
                Fact("first", ','.join(sorted(first)) or _rcode_text(query.get('rcode'))),
                Fact("late", ','.join(sorted(later)) or _rcode_text(late.get('rcode'))),
            ])
    return None


def _dns_fingerprint(hop: _Hop | None, cc: str | None) -> list[Fact]:
    if hop is None or hop.system is None:
        return []
    for address in sorted(_addresses(hop.system)):
        found = blockpages.match_dns(address, cc)
        if found and found.applies_to(cc):
            return [Fact("blockpage", found.name), Fact("confirmed", found.name)]
    return []


def _secure_page(final: Record, control: _Control, dns: _DNSView, cc: str | None,
                 keys: Record) -> Record:
    response = final["response"]
    handshake = next((h for h in keys.get("tls_handshakes") or []
                      if h.get("transaction_id") == final.get("transaction_id")), None)
    leaf = ((handshake or {}).get("x_certificates") or [{}])[0]
    issuers = [c.get("issuer") for c in (handshake or {}).get("x_certificates") or []]
    for issuer in issuers:
        found = blockpages.match_value("tls.issuer", issuer)
        if found and found.applies_to(cc):
            return _verdict("blocked", "tls", "mitm", 0.95, [
                Fact("issuer", issuer), Fact("sha256", leaf.get('sha256')),
                flag("chain_validated_locally"), Fact("confirmed", found.name)])
    evidence = [Fact("https_status", response.get('code'))]
    if dns.inconsistent:
        evidence += [flag("dns_inconsistent"), *dns.evidence]
    challenge = blockpages.match_response(response, frozenset({"challenge"}))
    if challenge:
        evidence.append(Fact("challenge", challenge.name))
    if not control.usable:
        evidence.append(Fact("control_failure", keys.get('control_failure')))
    return _verdict("ok", confidence=0.95 if control.usable else 0.85, evidence=evidence)


def _after_first_hop(hop: _Hop, control: _Control, layer: str, failure: str | None,
                     extra: list[Fact]) -> Record:
    """Steps after a redirect: the control's final page stands in for per-step data."""
    evidence = [Fact(f"probe_{layer}", failure), Fact("depth", hop.depth), *extra]
    if control.http_ok:
        return _verdict("blocked", layer, _mechanism(failure), 0.7,
                        [*evidence, Fact("control_http", "ok")])
    if control.http.get("failure"):
        return _verdict("down", layer, _mechanism(failure), 0.6,
                        [*evidence, Fact("control_http", control.http['failure'])])
    return _verdict("inconclusive", layer, _mechanism(failure), 0.0,
                    [*evidence, Fact("control_http", "missing")])


def _spoofed(dns: _DNSView, evidence: list[Fact]) -> Record:
    mechanism = "bogon" if dns.bogon else "spoofed"
    return _verdict("blocked", "dns", mechanism, 0.85 if dns.bogon else 0.8,
                    [flag("dns_inconsistent"), *dns.evidence, *evidence])


def _dns_step(hop: _Hop, control: _Control, keys: Record) -> Record:
    system = hop.system
    failure = system.get("failure") if system else None
    probe = _addresses(system) if system else set()
    # What each other resolver answered, under its engine's name (``udp``, ``doh``).
    extra = [Fact(str(q["engine"]), f"{q.get('resolver_address')}:{q.get('query_type')}:"
                                    f"{q.get('failure') or ','.join(sorted(_addresses(q)))}")
             for q in hop.queries if not ooni_classic.is_system_engine(q.get("engine"))]
    if failure is None and probe and all(is_loopback(a) for a in probe):
        # Loopback answers are not dialled (R6).
        evidence = [Fact("probe_answers", ','.join(sorted(probe))), *extra]
        if hop.depth > 0:
            return _after_first_hop(hop, control, "dns", failures.DNS_BOGON, evidence)
        if control.addrs and all(is_loopback(a) for a in control.addrs):
            return _verdict("down", "dns", None, 0.7, [*evidence, flag("control_answers_loopback")])
        if control.addrs:
            return _verdict("blocked", "dns", "bogon", 0.9, [
                *evidence, Fact("control_answers", ','.join(sorted(control.addrs)))])
        return _verdict("inconclusive", "dns", "bogon", 0.0,
                        [*evidence, Fact("control_dns", "none")])
    failure = failure or failures.DNS_NO_ANSWER
    if hop.depth > 0:
        return _after_first_hop(hop, control, "dns", failure, extra)
    evidence = [Fact("probe_dns", failure), *extra]
    control_failure = control.dns.get("failure")
    if control_failure or not control.addrs:
        return _verdict("down", "dns", _mechanism(failure), 0.8,
                        [*evidence, Fact("control_dns", control_failure or 'no_addresses')])
    return _verdict("blocked", "dns", _mechanism(failure), 0.85,
                    [*evidence, Fact("control_dns", f"{len(control.addrs)}_addresses")])


def _tcp_step(hop: _Hop, flows: list[_Flow], control: _Control, dns: _DNSView) -> Record:
    failure = (flows[0].connect.get("status") or {}).get("failure")
    evidence = [Fact("probe_tcp", failure), *[Fact("endpoint", f.endpoint) for f in flows[:4]]]
    if hop.depth > 0:
        return _after_first_hop(hop, control, "tcp", failure, evidence[1:])
    if dns.inconsistent:
        return _spoofed(dns, evidence)
    at_control = [control.tcp(f.endpoint) for f in flows]
    if any(ok is True for ok in at_control):
        return _verdict("blocked", "tcp", _mechanism(failure), 0.8,
                        [*evidence, Fact("control_tcp", "ok")])
    if at_control and all(ok is False for ok in at_control):
        return _verdict("down", "tcp", _mechanism(failure), 0.8,
                        [*evidence, Fact("control_tcp", "failed")])
    return _verdict("inconclusive", "tcp", _mechanism(failure), 0.0,
                    [*evidence, Fact("control_tcp", "missing")])


def _certificate_step(hop: _Hop, flow: _Flow, control: _Control, dns: _DNSView,
                      cc: str | None) -> Record:
    assert flow.handshake is not None
    failure = flow.handshake.get("failure")
    chain = flow.handshake.get("x_certificates") or []
    leaf = chain[0] if chain else {}
    issuer, sha = leaf.get("issuer"), leaf.get("sha256")
    evidence = [Fact("probe_tls", failure), Fact("issuer", issuer), Fact("sha256", sha),
                Fact("sni", flow.handshake.get('server_name'))]
    if hop.depth == 0 and dns.inconsistent:
        return _spoofed(dns, evidence)
    for certificate in chain:
        found = blockpages.match_value("tls.issuer", certificate.get("issuer"))
        if found and found.applies_to(cc):
            return _verdict("blocked", "tls", "mitm", 0.95,
                            [*evidence, Fact("confirmed", found.name)])
    control_issuers, control_shas = control.certificates()
    control_entry = control.tls(flow.endpoint) if hop.depth == 0 else None
    shared_failure = control_entry is not None and control_entry.get("failure") == failure
    if (sha and sha in control_shas) or shared_failure:
        return _verdict("down", "tls", None, 0.8,
                        [*evidence, Fact("control_tls", (control_entry or {}).get('failure'))])
    if not control_issuers:
        return _verdict("inconclusive", "tls", "mitm", 0.0,
                        [*evidence, Fact("control_certificate", "missing")])
    if issuer and issuer not in control_issuers:
        return _verdict("blocked", "tls", "mitm", 0.9, [
            *evidence, Fact("control_issuer", ','.join(sorted(control_issuers)))])
    return _verdict("inconclusive", "tls", None, 0.0,
                    [*evidence, flag("same_issuer_as_control")])


def _tls_step(hop: _Hop, flows: list[_Flow], control: _Control, dns: _DNSView,
              cc: str | None) -> Record:
    failed = [f for f in flows if f.handshake is not None]
    certificate = next((f for f in failed if f.handshake and f.handshake.get("failure")
                        in failures.CERTIFICATE_FAILURES), None)
    if certificate is not None:
        return _certificate_step(hop, certificate, control, dns, cc)
    flow = failed[0]
    assert flow.handshake is not None
    failure = flow.handshake.get("failure")
    evidence = [Fact("probe_tls", failure), Fact("sni", flow.handshake.get('server_name')),
                Fact("endpoint", flow.endpoint)]
    if hop.depth > 0:
        return _after_first_hop(hop, control, "tls", failure, evidence[1:])
    if dns.inconsistent:
        return _spoofed(dns, evidence)
    entry = control.tls(flow.endpoint)
    if entry is not None and entry.get("status"):
        return _verdict("blocked", "tls", _mechanism(failure), 0.85,
                        [*evidence, Fact("control_tls", "ok")])
    if entry is not None:
        return _verdict("down", "tls", _mechanism(failure), 0.8,
                        [*evidence, Fact("control_tls", entry.get('failure'))])
    if control.http_ok:
        return _verdict("blocked", "tls", _mechanism(failure), 0.7,
                        [*evidence, Fact("control_http", "ok")])
    return _verdict("inconclusive", "tls", _mechanism(failure), 0.0,
                    [*evidence, Fact("control_tls", "missing")])


def _failed_request(hop: _Hop, request: Record, control: _Control, dns: _DNSView) -> Record:
    failure = request["failure"]
    evidence = [Fact("probe_http", failure), Fact("operation", request.get('x_operation'))]
    if failure in _REDIRECT_FAILURES:
        code = (request.get("response") or {}).get("code")
        if control.http.get("failure") == failure or control.http.get("status_code") == code:
            return _verdict("down", "http", None, 0.7,
                            [*evidence, Fact("control_http", control.http.get('failure') or code)])
        return _verdict("inconclusive", "http", None, 0.0, evidence)
    if control.http.get("failure"):
        return _verdict("down", "http", _mechanism(failure), 0.7,
                        [*evidence, Fact("control_http", control.http['failure'])])
    if hop.depth == 0 and dns.inconsistent:
        return _spoofed(dns, evidence)
    if request.get("x_slow"):
        return _verdict("throttled", "http", None, 0.5,
                        [*evidence, Fact("bytes", request.get('x_bytes_received')),
                         Fact("goodput_bps", request.get('x_goodput_bps'))])
    if not control.http_ok:
        return _verdict("inconclusive", "http", _mechanism(failure), 0.0,
                        [*evidence, Fact("control_http", "missing")])
    return _verdict("blocked", "http", _mechanism(failure), 0.75,
                    [*evidence, Fact("control_http", "ok")])


# Headers that describe how an HTTP/1.1 message was framed and delivered, not who served it:
# nearly every response carries them, so counting them makes any two pages' headers "match"
# and hides an unknown blockpage behind its ordinary Content-Length. OONI's classic keys keep
# OONI's own list (``ooni_classic``); Kuzot's verdict leaves these out as well.
FRAMING_HEADERS = frozenset({"content-length", "connection", "transfer-encoding", "keep-alive"})


def page_comparison(response: Record, control_http: Record) -> ooni_classic.HTTPDiff:
    """OONI's comparison of one probe response with the control's final page, read from the
    same recorded fields as OONI's (the stored body and headers), except that framing headers
    (``FRAMING_HEADERS``) do not count as shared headers. Its ``headers_match`` is therefore
    not OONI's key of that name: the evidence calls it ``uncommon_headers_shared``."""
    diff = ooni_classic.HTTPDiff()
    length = ooni_classic.response_body_length(response)
    control_length = int(control_http.get("body_length") or 0)
    if length > 0 and control_length > 0 and not response.get("body_is_truncated"):
        diff.body_proportion = min(length, control_length) / max(length, control_length)
        diff.body_length_match = diff.body_proportion > 0.7
    code, control_code = response.get("code"), control_http.get("status_code")
    if code == control_code:
        diff.status_code_match = True
    elif control_code is not None and control_code // 100 == 2:
        diff.status_code_match = False
    common = ooni_classic.COMMON_HEADERS | FRAMING_HEADERS
    probe_keys = {k.lower() for k in ooni_classic.response_header_names(response)} - common
    control_keys = {k.lower() for k in control_http.get("headers") or {}} - common
    diff.headers_match = bool(probe_keys & control_keys)
    words = ooni_classic.title_words
    diff.title_match = not (words(ooni_classic.response_title(response)) ^
                            words(control_http.get("title") or ""))
    return diff


def _final_page(hop: _Hop, request: Record, control: _Control, dns: _DNSView,
                cc: str | None) -> Record:
    response = request["response"]
    evidence = [Fact("http_status", response.get('code'))]
    challenge = blockpages.match_response(response, frozenset({"challenge"}))
    if challenge:
        return _verdict("inconclusive", "http", None, 0.0,
                        [*evidence, Fact("challenge", challenge.name)])
    if not control.http_ok:
        return _verdict("inconclusive", "http", None, 0.0,
                        [*evidence, Fact("control_http", control.http.get('failure') or 'missing')])
    diff = page_comparison(response, control.http)
    facts = [Fact("status_code_match", diff.status_code_match),
             Fact("body_length_match", diff.body_length_match),
             Fact("uncommon_headers_shared", diff.headers_match),
             Fact("title_match", diff.title_match)]
    if not diff.differs():
        if hop.depth == 0 and dns.inconsistent:
            return _verdict("ok", confidence=0.7,
                            evidence=[*evidence, flag("dns_inconsistent"), *dns.evidence])
        return _verdict("ok", confidence=0.8, evidence=evidence)
    phrase = blockphrases.match(response, control.http.get("body_length"))  # R10
    if phrase is not None and hop.depth == 0 and dns.inconsistent:
        return _verdict("blocked", "dns", "blockpage", 0.8, [
            *evidence, *phrase.evidence(), flag("dns_inconsistent"), *dns.evidence, *facts])
    if phrase is not None:
        return _verdict("blocked", "http", "blockpage", 0.7,
                        [*evidence, *phrase.evidence(), *facts])
    if hop.depth == 0 and dns.inconsistent:
        return _spoofed(dns, facts)
    return _verdict("blocked", "http", "diff", 0.5, [*evidence, *facts])


def _chain_blockpage(hops: list[_Hop], control: _Control, dns: _DNSView,
                     cc: str | None) -> Record | None:
    """R11: a known blockpage fingerprint on any plain-HTTP response of the redirect chain."""
    for hop in hops:
        request = hop.request
        response = (request or {}).get("response")
        if request is None or not response or \
                urlsplit(str((request.get("request") or {}).get("url"))).scheme != "http":
            continue
        found = blockpages.match_blockpage(response, cc)
        if found is None:
            continue
        if found.location == "body" and hop is hops[-1] and not _differs(response, control):
            continue
        layer = "dns" if hop.depth == 0 and dns.inconsistent else "http"
        evidence = [Fact("http_status", response.get('code')), Fact("blockpage", found.name),
                    Fact("fingerprint_in", found.location),
                    Fact("fingerprint_origin", found.origin)]
        if hop.depth:
            evidence.append(Fact("depth", hop.depth))
        if found.applies_to(cc):
            evidence.append(Fact("confirmed", found.name))
        if layer == "dns":
            evidence += [flag("dns_inconsistent"), *dns.evidence]
        return _verdict("blocked", layer, "blockpage", 0.95, evidence)
    return None


def _differs(response: Record, control: _Control) -> bool:
    """Whether a final page differs from the control's: not the same body, and (when the
    control fetched the page) not the same page by the comparison of R10."""
    sha = response.get("x_body_sha256") or response.get("body_sha256")
    same_body = sha and sha == control.http.get("x_body_sha256")
    if same_body:
        return False
    return not control.http_ok or page_comparison(response, control.http).differs()


def _with_failed_endpoints(result: Record, hop: _Hop, control: _Control,
                           keys: Record) -> Record:
    """An ``ok`` result plus the first hop's relevant endpoints that failed at TCP or TLS
    although the control connected to them (only the first hop has per-endpoint control)."""
    if result["verdict"] != "ok" or hop.depth != 0 or not control.usable:
        return result
    for flow in _relevant(hop.flows, keys):
        failure = (flow.connect.get("status") or {}).get("failure") or \
            (flow.handshake or {}).get("failure")
        if failure and control.tcp(flow.endpoint):
            result["evidence"].append(Fact("endpoint_failed", f"{flow.endpoint}:{failure}"))
    return result


def verdict(keys: Record, url: str, cc: str | None = None) -> Record:
    """Kuzot's ``analysis`` object for the test keys of ``url`` (rules R1-R12 above),
    stamped with the ``analysis_version`` of these rules."""
    return _wire(_verdict_of(keys, url, cc))


def _wire(found: Record) -> Record:
    """A verdict as it is recorded: its facts written as ``key:value`` for people
    (``evidence``) and read into typed fields for programs (``evidence_fields``, from the
    facts themselves: no text is parsed back), with the ``analysis_version``."""
    facts: list[Fact] = found["evidence"]
    return {**found, "evidence": [str(fact) for fact in facts],
            "analysis_version": ANALYSIS_VERSION,
            "evidence_fields": of_facts(facts).to_wire()}


def _verdict_of(keys: Record, url: str, cc: str | None) -> Record:
    injected = _injection(keys)
    if injected:
        return injected
    domain = ooni_classic.input_domain(url)
    control = _Control(keys.get("control") or {},
                       usable=not keys.get("control_failure") and bool(keys.get("control")))
    hops = _hops(keys, ooni_classic.user_path(keys, url))
    first = hops[0] if hops else None
    dns = _dns_view(first, control, domain, keys)
    last = _decisive(hops)
    final = last.request if last else None
    chained = _chain_blockpage(hops, control, dns, cc)  # R11
    if chained is None and last is not None and final is not None \
            and final.get("response") is not None and final.get("failure") is None \
            and urlsplit(final["request"]["url"]).scheme == "https":
        return _with_failed_endpoints(_secure_page(final, control, dns, cc, keys), last,
                                      control, keys)
    if not control.usable:
        return _verdict("inconclusive", None, None, 0.0,
                        [Fact("control_failure", keys.get('control_failure'))])
    if last is None:
        return _verdict("inconclusive", None, None, 0.0, [flag("no_observations")])
    if dns.ghost:
        return _verdict("blocked", "dns", "spoofed", 0.85, [flag("dns_ghost"), *dns.evidence])
    fingerprint = _dns_fingerprint(first, cc)
    if chained is not None:
        verdict_ = chained
    elif last.request is not None:
        if last.request.get("failure") is not None:
            verdict_ = _failed_request(last, last.request, control, dns)
        else:
            verdict_ = _final_page(last, last.request, control, dns, cc)
    else:
        flows = _relevant(last.flows, keys)
        if not last.flows:
            verdict_ = _dns_step(last, control, keys)
        elif not flows:
            verdict_ = _verdict("inconclusive", "tcp", None, 0.0, [flag("only_ipv6_without_ipv6")])
        elif any(f.handshake is not None for f in flows):
            verdict_ = _tls_step(last, [f for f in flows if f.handshake is not None], control,
                                 dns, cc)
        elif any((f.connect.get("status") or {}).get("success") for f in flows):
            verdict_ = _verdict("inconclusive", "http", None, 0.0, [flag("no_http_request")])
        else:
            verdict_ = _tcp_step(last, flows, control, dns)
    if fingerprint and verdict_["verdict"] == "blocked":
        verdict_["evidence"] += [e for e in fingerprint if e not in verdict_["evidence"]]
    if verdict_["verdict"] != "ok":
        verdict_["evidence"] += _alternative_reach(hops, last.depth)
    return _with_failed_endpoints(verdict_, last, control, keys)


def _without_unroutable_ipv6(keys: Record) -> Record:
    """The keys less the IPv6 connects that failed for want of a route (and their TLS and
    HTTP records): such a failure is a fact about the probe's network, not about the site."""
    dropped = {c.get("transaction_id") for c in keys.get("tcp_connect") or []
               if ":" in str(c.get("ip"))
               and (c.get("status") or {}).get("failure") in _IPV6_NO_ROUTE}
    if not dropped:
        return keys
    return {**keys, **{name: [r for r in keys.get(name) or []
                              if r.get("transaction_id") not in dropped]
                       for name in ("tcp_connect", "tls_handshakes", "requests")}}


def analyze(keys: Record, url: str, cc: str | None = None) -> Record:
    """OONI's keys plus ``analysis`` for the given test keys of ``url`` measured in ``cc``."""
    # Departure 3: an IPv6 connect without a route is no observation of the site.
    ooni = ooni_classic.analyze(_without_unroutable_ipv6(keys), url)
    found = _verdict_of(keys, url, cc)
    analysis = _wire(found)
    if urlsplit(url).scheme == "http" and ooni["blocking"] == "http-diff" and any(
            fact.key == "challenge" for fact in found["evidence"]):
        # Departure 1 from OONI (QA case 5): a challenge page is not a diff.
        ooni["blocking"], ooni["accessible"] = None, None
    if ooni["accessible"] is True and analysis["verdict"] != "ok" and (
            keys.get("control_failure") or not keys.get("control")):
        # Departure 2 (OONI probe-engine#579): without a control, a failed lookup is not
        # "accessible"; only a validated HTTPS page is.
        ooni["blocking"], ooni["accessible"] = None, None
    return {**ooni, "analysis": analysis}



# Where Kuzot's verdict and OONI's keys of the same measurement may disagree in class.
#
# The invariant, tested over every table case, lab scenario and OONI QA measurement: when
# OONI's ``blocking`` is a string (OONI sees blocking), Kuzot's verdict is not ``ok``; when it
# is ``false`` (OONI sees an accessible or a down site), Kuzot's verdict is not ``blocked``.
# ``down``, ``inconclusive`` and ``throttled`` never contradict OONI. The departures below are
# the only exceptions; each is a case OONI's probe-side keys cannot see by construction.


@dataclass(frozen=True, slots=True)
class Departure:
    """A documented disagreement: Kuzot says ``blocked`` at ``layer``/``mechanism`` (any
    layer when None) where OONI's keys say ``blocking: false, accessible: true``."""

    name: str
    layer: str | None
    mechanism: str
    reason: str


DEPARTURES: tuple[Departure, ...] = (
    Departure(
        "dns_injection", "dns", "injected",
        "OONI's keys read the system resolver only. Two different answers to one query to "
        "another resolver show a censor racing the real answer on the path (R1); OONI keeps "
        "them in x_dns_duplicate_responses but its blocking key cannot say so."),
    Departure(
        "trusted_interception_ca", "tls", "mitm",
        "A state CA the user's system trusts makes the intercepted handshake valid; OONI "
        "calls every valid HTTPS page accessible. Kuzot names the known interception CA in "
        "the chain (R2)."),
    Departure(
        "blockpage_fingerprint", None, "blockpage",
        "A known blockpage fingerprint is deterministic (OONI's own pipeline marks such "
        "measurements confirmed from the same fingerprints), while OONI's probe-side keys "
        "see no HTTP diff when the blockpage server frames its answer as the site does "
        "(shared Content-Length or Connection headers)."),
    Departure(
        "framing_headers", "http", "diff",
        "OONI's header comparison counts framing headers (Content-Length, Connection) as "
        "uncommon, so any page served with them matches the site's headers and OONI sees no "
        "diff; Kuzot leaves them out (uncommon_headers_shared, R10) and sees the other page."),
)


def disagrees(blocking: str | bool | None, verdict_name: str) -> bool:
    """Whether a verdict contradicts OONI's ``blocking`` key in class (see ``DEPARTURES``)."""
    if isinstance(blocking, str):
        return verdict_name == "ok"
    return blocking is False and verdict_name == "blocked"


def departure(blocking: str | bool | None, accessible: bool | None,
              analysis: Record) -> Departure | None:
    """The documented departure that explains why ``analysis`` disagrees with OONI's
    ``blocking``/``accessible`` in class, or None (they agree, or nothing documents it)."""
    if not disagrees(blocking, analysis["verdict"]) or blocking is not False or \
            accessible is not True:
        return None
    for known in DEPARTURES:
        if analysis["mechanism"] == known.mechanism and \
                known.layer in (None, analysis["layer"]):
            return known
    return None
