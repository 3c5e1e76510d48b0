"""OONI's own reading of a web connectivity measurement: a pure re-statement of its rules.

This computes the keys OONI tooling reads (``dns_consistency``, ``body_proportion``,
``body_length_match``, ``status_code_match``, ``headers_match``, ``title_match``,
``blocking``, ``accessible``, ``http_experiment_failure``) the way OONI Probe's Web
Connectivity v0.5 "classic" analysis does, so that a Kuzot measurement means to OONI's
pipeline what an OONI measurement of the same network would. It is written from OONI's
documented behaviour (probe-cli ``webconnectivitylte/analysisclassic.go`` and
``minipipeline``; summary in OONI's ts-017 spec), not translated from its code.

Kuzot's own verdict (``probe.nettests.web_connectivity.analysis``) is computed separately and may
disagree on purpose (a site with a broken redirect is *down* to us, ``http-failure`` to OONI);
``probe.nettests.web_connectivity.analysis`` documents the one place where it overrides these keys
(CDN challenge pages, OONI QA case 5).

The rules, in order:

1. Observations are built per DNS answer and per endpoint flow (TCP, then TLS, then HTTP,
   joined by ``transaction_id``) and filtered to the "classic" subset: lookups by the system
   resolver (``SYSTEM_ENGINES``: OONI's names for it) and the endpoints of its addresses (or
   of the URL's address literal, even when a control lists the literal among its addresses)
   that were meant to fetch the page. Kuzot's verdict reads the same subset
   (``user_path``). Only fields OONI records are read: a response's body length and title
   come from its stored body (text, or base64 for other bytes) and ``body_is_truncated``,
   its header names from ``headers`` (or ``headers_list``); Kuzot's own counts stand in only
   for a measurement that stored no body.
2. ``dns_consistency`` (only for the input host, depth 0, with a control): ``consistent``
   when there is no unexpected failure, no answer disjoint from the control's (by address,
   or by ASN when the control reports ASNs), and at least one matching answer or a failure
   the control shares; ``inconsistent`` when an answer is disjoint, the probe failed where
   the control resolved, or the probe resolved a name the control could not; else ``null``.
3. The HTTP comparison of the final response with the control's: body proportion
   (min/max of the lengths, only for untruncated non-empty bodies, match above 0.7),
   status (equal; ``null`` when different and the control's is not 2xx), uncommon header
   names in common (25 common names ignored), long title words (>= 5 bytes) all shared.
4. The walk: observations sorted deepest redirect first, then HTTP > TLS > TCP > DNS, then
   successes before failures. The first that decides wins:
   a final response (2xx/4xx/5xx) over TLS is accessible; without control HTTP data it is
   undetermined; else accessible unless the comparison shows a difference (``http-diff``).
   A failed HTTP round trip, TLS handshake or TCP connect is ``http-failure`` (``tcp_ip``
   for TCP) when the control succeeded there, the site is down when the control failed too,
   and undetermined without control data (after a redirect, where the control has no data
   for that step, the control's final page stands in for it). A failed lookup is ``dns``
   when the control resolved, down when it failed too (or when the probe saw no answer and
   the control no address); loopback-only answers are ``dns`` when the control saw real
   addresses and down when it saw loopback too.
5. Whenever ``dns_consistency`` is ``inconsistent``, any blocking string, an undetermined
   result and "down" all become ``dns``; an accessible result stays accessible.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from probe.core.bogons import is_loopback

Record = dict[str, Any]

# The names OONI's measurements give the system resolver: ``getaddrinfo`` (Web Connectivity
# v0.5 and Kuzot), ``golang_net_resolver`` (v0.5 builds without cgo) and ``system`` (v0.4).
# Other engines (``udp``, ``doh``, ``dot``, ``tcp``) are resolvers the user does not use.
SYSTEM_ENGINES = frozenset({"getaddrinfo", "golang_net_resolver", "system"})

# OONI's title extraction (measurexlite ``WebGetTitle``): the first <title> of at most 512
# characters without a '<' inside, case-insensitive.
_TITLE = re.compile(r"(?i)<title>([^<]{1,512})</title>")

COMMON_HEADERS = frozenset(
    {
        "date", "content-type", "server", "cache-control", "vary", "set-cookie", "location",
        "expires", "x-powered-by", "content-encoding", "last-modified", "accept-ranges",
        "pragma", "x-frame-options", "etag", "x-content-type-options", "age", "via", "p3p",
        "x-xss-protection", "content-language", "cf-ray", "strict-transport-security", "link",
        "x-varnish",
    }
)

DNS, TCP, TLS, HTTP = 0, 1, 2, 3  # observation types; a higher type went further


@dataclass(slots=True)
class Observation:
    """One DNS answer (or failed lookup), or one endpoint flow, with the control's view."""

    kind: int
    failure: str | None  # None: step not run; "": success
    transaction_id: int
    depth: int | None
    engine: str | None = None
    query_type: str | None = None
    domain: str | None = None
    addrs: frozenset[str] | None = None
    dns_transaction_id: int | None = None
    ip: str | None = None
    origin: str | None = None  # "dns", "th" or None (address literal)
    endpoint: str | None = None
    fetch_body: bool | None = None
    tcp_failure: str | None = None
    tls_failure: str | None = None
    server_name: str | None = None
    http_failure: str | None = None
    status: int | None = None
    body_length: int | None = None
    truncated: bool | None = None
    header_keys: frozenset[str] | None = None
    title: str | None = None
    final: bool | None = None
    control_dns_failure: str | None = None
    control_addrs: frozenset[str] | None = None
    control_tcp_failure: str | None = None
    control_tls_failure: str | None = None
    control_http_failure: str | None = None
    control_status: int | None = None
    control_body_length: int | None = None
    control_header_keys: frozenset[str] | None = None
    control_title: str | None = None


@dataclass(slots=True)
class _Container:
    dns_failures: list[Observation] = field(default_factory=list)
    dns_successes: list[Observation] = field(default_factory=list)
    endpoints: dict[int, Observation] = field(default_factory=dict)
    known: dict[str, Observation] = field(default_factory=dict)
    control_addrs: frozenset[str] | None = None


def _depth(record: Record) -> int | None:
    for tag in record.get("tags") or []:
        if tag.startswith("depth="):
            try:
                return int(tag.removeprefix("depth="))
            except ValueError:
                return None
    return None


def _fetch_body(record: Record) -> bool | None:
    for tag in record.get("tags") or []:
        if tag.startswith("fetch_body="):
            return bool(tag == "fetch_body=true")
    return None


def _addresses(query: Record) -> list[str]:
    out = []
    for answer in query.get("answers") or []:
        address = answer.get("ipv4") or answer.get("ipv6")
        if address:
            out.append(address)
    return out


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def is_system_engine(engine: str | None) -> bool:
    """Whether a lookup was made by the system resolver, the one the user's browser uses."""
    return engine in SYSTEM_ENGINES


def response_body(response: Record) -> str | None:
    """The body as OONI stores it (a string, or ``{"format": "base64", "data": ...}`` for
    bytes that are not UTF-8), decoded to text as OONI's Go code sees it; ``None`` when the
    measurement recorded no body at all."""
    body = response.get("body")
    if isinstance(body, dict):
        try:
            raw = base64.b64decode(str(body.get("data") or ""), validate=False)
        except (binascii.Error, ValueError):
            return ""
        return raw.decode("utf-8", "surrogateescape")
    if isinstance(body, str):
        return body
    return None


def response_body_length(response: Record) -> int:
    """The body length OONI computes: the length in bytes of the stored body. A measurement
    without a stored body (Kuzot's before it stored one) falls back to its own count."""
    body = response_body(response)
    if body is not None:
        return len(body.encode("utf-8", "surrogateescape"))
    return int(response.get("x_body_length") or response.get("body_length") or 0)


def response_title(response: Record) -> str:
    """The page title OONI extracts from the stored body (see ``_TITLE``); a measurement
    without a stored body falls back to the title it recorded."""
    body = response_body(response)
    if body is None:
        return str(response.get("x_title") or response.get("title") or "")
    match = _TITLE.search(body)
    return match.group(1) if match else ""


def response_header_names(response: Record) -> frozenset[str]:
    """Header names as OONI keys them: from ``headers``, else from ``headers_list``."""
    headers = response.get("headers")
    if isinstance(headers, dict) and headers:
        return frozenset(headers)
    return frozenset(str(pair[0]) for pair in response.get("headers_list") or []
                     if isinstance(pair, list | tuple) and pair)


def host_literal(url: str) -> str | None:
    """The URL's host when it is an IP address literal (no lookup, no control DNS)."""
    host = urlsplit(url).hostname or ""
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def input_domain(url: str) -> str:
    """The URL's host as the probe looked it up (lower case, IDNA)."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    return host if host.isascii() else host.encode("idna").decode("ascii")


def _ingest(keys: Record) -> _Container:
    c = _Container()
    for query in keys.get("queries") or []:
        base = Observation(
            kind=DNS, failure=None, transaction_id=int(query.get("transaction_id") or 0),
            depth=_depth(query), engine=query.get("engine"), query_type=query.get("query_type"),
            domain=query.get("hostname"),
        )
        base.dns_transaction_id = base.transaction_id
        if query.get("failure") is not None:
            base.failure = query["failure"]
            c.dns_failures.append(base)
            continue
        addrs = frozenset(_addresses(query))
        for ip in sorted(addrs):
            obs = replace(base, failure="", addrs=addrs, ip=ip, origin="dns")
            c.dns_successes.append(obs)
            c.known.setdefault(ip, obs)
    for connect in keys.get("tcp_connect") or []:
        ip = connect["ip"]
        dns_obs = c.known.get(ip)
        status = connect.get("status") or {}
        failure = status.get("failure") or ""
        txid = int(connect.get("transaction_id") or 0)
        c.endpoints[txid] = Observation(
            kind=TCP, failure=failure, transaction_id=txid, depth=_depth(connect),
            dns_transaction_id=dns_obs.dns_transaction_id if dns_obs else None,
            domain=dns_obs.domain if dns_obs else None,
            addrs=dns_obs.addrs if dns_obs else None,
            origin=dns_obs.origin if dns_obs else None,
            ip=ip, endpoint=_endpoint(ip, int(connect["port"])), fetch_body=_fetch_body(connect),
            tcp_failure=failure,
        )
    for handshake in keys.get("tls_handshakes") or []:
        flow = c.endpoints.get(int(handshake.get("transaction_id") or 0))
        if flow is None:
            continue
        obs = flow
        obs.kind = TLS
        obs.failure = obs.tls_failure = handshake.get("failure") or ""
        obs.server_name = handshake.get("server_name")
    for request in keys.get("requests") or []:
        flow = c.endpoints.get(int(request.get("transaction_id") or 0))
        if flow is None:
            continue
        obs = flow
        obs.kind = HTTP
        obs.failure = obs.http_failure = request.get("failure") or ""
        response = request.get("response")
        if request.get("failure") is None and response is not None:
            obs.status = int(response.get("code") or 0)
            obs.body_length = response_body_length(response)
            obs.truncated = bool(response.get("body_is_truncated"))
            obs.header_keys = response_header_names(response)
            obs.title = response_title(response)
            obs.final = obs.status // 100 in (2, 4, 5)
    return c


def _ingest_control(c: _Container, url: str, control: Record) -> None:
    domain = input_domain(url)
    control_dns = control.get("dns") or {}
    dns_failure = control_dns.get("failure") or ""
    addrs = frozenset(control_dns.get("addrs") or [])
    literal = host_literal(url)
    c.control_addrs = addrs
    for obs in [*c.dns_failures, *c.dns_successes]:
        if obs.domain != domain:
            continue
        obs.control_dns_failure = dns_failure
        if not dns_failure:
            obs.control_addrs = addrs
    for obs in c.endpoints.values():
        # OONI's control resolves nothing for an address literal; Kuzot's lists the literal
        # itself, which is the probe's own endpoint (from the URL), not one the control found.
        if not obs.domain and obs.ip in addrs and obs.ip != literal:
            obs.origin = "th"
            obs.control_dns_failure = dns_failure
            obs.control_addrs = addrs
            continue
        if obs.domain and obs.domain == domain:
            obs.control_dns_failure = dns_failure
            if not dns_failure:
                obs.control_addrs = addrs
    for obs in c.endpoints.values():
        tcp = (control.get("tcp_connect") or {}).get(obs.endpoint)
        if tcp is not None:
            obs.control_tcp_failure = tcp.get("failure") or ""
        tls = (control.get("tls_handshake") or {}).get(obs.endpoint)
        if tls is not None and obs.server_name is not None and \
                tls.get("server_name") == obs.server_name:
            obs.control_tls_failure = tls.get("failure") or ""
    http = control.get("http_request") or {}
    http_failure = http.get("failure") or ""
    for obs in [*c.dns_failures, *c.dns_successes, *c.endpoints.values()]:
        obs.control_http_failure = http_failure
        if http_failure:
            continue
        obs.control_status = int(http.get("status_code") or 0)
        obs.control_body_length = int(http.get("body_length") or 0)
        obs.control_header_keys = frozenset(http.get("headers") or {})
        obs.control_title = http.get("title") or ""


def _classic(c: _Container) -> _Container:
    out = _Container(control_addrs=c.control_addrs)
    out.dns_failures = [o for o in c.dns_failures if is_system_engine(o.engine)]
    for obs in c.dns_successes:
        if is_system_engine(obs.engine):
            out.dns_successes.append(obs)
            assert obs.ip is not None
            out.known[obs.ip] = obs
    for txid, obs in c.endpoints.items():
        if obs.origin == "th":
            continue
        if obs.origin == "dns" and obs.ip not in out.known:
            continue
        if not obs.fetch_body:
            continue
        out.endpoints[txid] = obs
    return out


def _asn_overlap(probe: frozenset[str], control: frozenset[str], ip_info: Record) -> bool:
    def asn(ip: str) -> Any:
        return (ip_info.get(ip) or {}).get("asn")

    probe_asns = {asn(ip) for ip in probe} - {None, 0}
    control_asns = {asn(ip) for ip in control} - {None, 0}
    return bool(probe_asns & control_asns)


@dataclass(slots=True)
class _Metrics:
    success: set[int] = field(default_factory=set)
    valid: set[int] = field(default_factory=set)
    invalid: set[int] = field(default_factory=set)
    unexpected: set[int] = field(default_factory=set)
    expected: set[int] = field(default_factory=set)
    experiment_failure: str | None = None


def _dns_metrics(c: _Container, ip_info: Record) -> _Metrics:
    m = _Metrics()
    seen: set[int] = set()
    for obs in c.dns_successes:
        txid = obs.dns_transaction_id or 0
        if txid in seen:
            continue
        seen.add(txid)
        if obs.depth != 0:
            continue
        m.success.add(txid)
        if obs.control_addrs is None:
            continue
        assert obs.addrs is not None
        if obs.addrs & obs.control_addrs or _asn_overlap(obs.addrs, obs.control_addrs, ip_info):
            m.valid.add(txid)
        else:
            m.invalid.add(txid)
    seen.clear()
    for obs in c.dns_failures:
        txid = obs.dns_transaction_id or 0
        if txid in seen:
            continue
        seen.add(txid)
        if obs.engine == "doh" or (obs.query_type == "AAAA" and obs.failure == "dns_no_answer"):
            continue
        if obs.depth != 0:
            continue
        if obs.failure and m.experiment_failure is None:
            m.experiment_failure = obs.failure
        if obs.control_dns_failure is None:
            continue
        if obs.failure and obs.control_dns_failure:
            m.expected.add(txid)
        elif obs.control_dns_failure:
            continue
        elif obs.failure == "dns_no_answer" and obs.control_addrs is not None and \
                not obs.control_addrs:
            m.expected.add(txid)
        elif obs.failure:
            m.unexpected.add(txid)
    return m


def _consistency(m: _Metrics, c: _Container, have_control: bool) -> str | None:
    if not m.unexpected and not m.invalid and (m.valid or m.expected):
        return "consistent"
    if m.invalid or m.unexpected or (m.success and have_control and not c.control_addrs):
        return "inconsistent"
    return None


def title_words(title: str) -> set[str]:
    return {w.lower() for w in title.split(" ") if len(w.encode("utf-8", "surrogateescape")) >= 5}


@dataclass(slots=True)
class HTTPDiff:
    body_proportion: float | None = None
    body_length_match: bool | None = None
    status_code_match: bool | None = None
    headers_match: bool | None = None
    title_match: bool | None = None

    def differs(self) -> bool:
        """OONI's rule: no difference when the status matches and any other key matches."""
        if self.status_code_match:
            return not (self.body_length_match or self.headers_match or self.title_match)
        return True


def _http_diff(c: _Container) -> HTTPDiff:
    diff = HTTPDiff()
    final = next((o for o in c.endpoints.values() if o.final), None)
    if final is None or final.control_http_failure is None:
        return diff
    # OONI's TH writes -1 for a length or status it did not get: only positive values count.
    if (final.body_length or 0) > 0 and not final.truncated and \
            (final.control_body_length or 0) > 0:
        assert final.body_length is not None and final.control_body_length is not None
        small, large = sorted((final.body_length, final.control_body_length))
        diff.body_proportion = small / large
        diff.body_length_match = diff.body_proportion > 0.7
    if (final.status or 0) > 0 and (final.control_status or 0) > 0:
        assert final.control_status is not None
        if final.status == final.control_status:
            diff.status_code_match = True
        elif final.control_status // 100 == 2:
            diff.status_code_match = False
    if (final.control_status or 0) > 0:
        probe_keys = {k.lower() for k in final.header_keys or ()} - COMMON_HEADERS
        control_keys = {k.lower() for k in final.control_header_keys or ()} - COMMON_HEADERS
        diff.headers_match = bool(probe_keys & control_keys)
        diff.title_match = not (title_words(final.title or "") ^
                                title_words(final.control_title or ""))
    return diff


def _sort_key(obs: Observation) -> tuple[int, int, str, int]:
    depth = obs.depth if obs.depth is not None else -1
    failure = obs.failure if obs.failure is not None else "unknown_failure"
    # Deepest first, higher type first, "" (success) before failures, newest first.
    return (-depth, -obs.kind, failure, -obs.transaction_id)


def _only_loopback(addrs: frozenset[str]) -> bool:
    return bool(addrs) and all(is_loopback(a) for a in addrs)


@dataclass(slots=True)
class _Outcome:
    blocking: str | bool | None = None
    accessible: bool | None = None
    http_failure: str | None = None


def _walk(c: _Container, diff: HTTPDiff, consistency: str | None) -> _Outcome:
    out = _Outcome()
    inconsistent = consistency == "inconsistent"

    def accessible() -> _Outcome:
        out.blocking, out.accessible = False, True
        return out

    def undetermined() -> _Outcome:
        out.blocking, out.accessible = ("dns", False) if inconsistent else (None, None)
        return out

    def blocked(kind: str) -> _Outcome:
        out.blocking, out.accessible = ("dns" if inconsistent else kind), False
        return out

    def down() -> _Outcome:
        out.blocking, out.accessible = ("dns" if inconsistent else False), False
        return out

    ordered = [*c.dns_failures, *c.dns_successes, *c.endpoints.values()]
    ordered.sort(key=_sort_key)
    for obs in ordered:
        if obs.final:
            if obs.tls_failure == "":
                return accessible()
            if obs.control_http_failure is None:
                return undetermined()
            return blocked("http-diff") if diff.differs() else accessible()
        failed = bool(obs.failure)
        if obs.kind == HTTP and failed:
            out.http_failure = obs.failure
            if obs.control_http_failure is None:
                return undetermined()
            return down() if obs.control_http_failure else blocked("http-failure")
        if obs.kind in (TLS, TCP) and failed:
            out.http_failure = obs.failure
            control = obs.control_tls_failure if obs.kind == TLS else obs.control_tcp_failure
            if control is None:
                if obs.control_http_failure is None:
                    return undetermined()
                return blocked("http-failure")
            if control:
                return down()
            return blocked("http-failure" if obs.kind == TLS else "tcp_ip")
        if obs.kind == DNS and failed:
            if obs.control_dns_failure is None:
                if obs.control_http_failure is None:
                    out.http_failure = obs.failure
                    return accessible()  # OONI's own (surprising) choice, kept for fidelity
                out.http_failure = obs.failure
                return blocked("dns")
            if obs.control_dns_failure:
                out.http_failure = obs.failure
                return down()
            if obs.failure == "dns_no_answer" and obs.control_addrs is not None and \
                    not obs.control_addrs:
                return down()
            out.http_failure = obs.failure
            return blocked("dns")
        if obs.kind == DNS and obs.failure == "" and obs.control_dns_failure == "" and \
                obs.addrs is not None and obs.control_addrs is not None and \
                _only_loopback(obs.addrs):
            return blocked("dns") if not _only_loopback(obs.control_addrs) else down()
    return out


def _have_control(keys: Record) -> bool:
    return bool(keys.get("control")) and not keys.get("control_failure") and \
        keys.get("x_control_request") is not None


def _classic_container(keys: Record, url: str) -> _Container:
    container = _ingest(keys)
    if _have_control(keys):
        _ingest_control(container, url, keys.get("control") or {})
    return _classic(container)


def user_path(keys: Record, url: str) -> frozenset[int]:
    """The transaction ids of the endpoints on the user's own path (rule 1): addresses the
    system resolver gave (or the URL's address literal), dialled to fetch the page. Kuzot's
    verdict reads the same subset, so both speak of what the user's browser would do."""
    return frozenset(_classic_container(keys, url).endpoints)


def analyze(keys: Record, url: str) -> Record:
    """OONI's keys for the test keys of ``url`` (see the module docstring for the rules)."""
    control = keys.get("control") or {}
    have_control = _have_control(keys)
    classic = _classic_container(keys, url)
    metrics = _dns_metrics(classic, control.get("ip_info") or {} if have_control else {})
    consistency = _consistency(metrics, classic, have_control)
    diff = _http_diff(classic)
    outcome = _walk(classic, diff, consistency)
    return {
        "dns_consistency": consistency,
        "body_proportion": round(diff.body_proportion, 4) if diff.body_proportion else 0,
        "body_length_match": diff.body_length_match,
        "status_code_match": diff.status_code_match,
        "headers_match": diff.headers_match,
        "title_match": diff.title_match,
        "blocking": outcome.blocking,
        "accessible": outcome.accessible,
        "http_experiment_failure": outcome.http_failure,
        "dns_experiment_failure": metrics.experiment_failure,
    }

