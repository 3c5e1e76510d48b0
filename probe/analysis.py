"""The verdict for one web connectivity measurement: a pure function of its test keys.

No I/O, no clock. ``analyze`` returns OONI's comparison keys (``dns_consistency``,
``body_length_match``, ``status_code_match``, ``headers_match``, ``title_match``,
``blocking``, ``accessible``) and Kuzot's ``analysis`` object (verdict, layer, mechanism,
confidence, evidence). The rules follow OONI's Web Connectivity (ts-017, v0.5 classic) where
OONI is right, and go further where it is weak:

* a control that failed gives *inconclusive*, never *accessible* (unless the final page came
  over HTTPS with a valid certificate, which a censor cannot forge);
* both vantages failing the same operation is *down* (site down), not censorship;
* a certificate that does not validate and whose issuer differs from the control's is
  *mitm* (TLS interception, as Kazakhstan's 2019-2020 state CA);
* two different DNS answers to one query are *injected*;
* an IPv6 failure on a host without IPv6 connectivity is ignored.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from probe import blockpages, failures
from probe.bogons import is_bogon, is_loopback

Record = dict[str, Any]

COMMON_HEADERS = frozenset(
    {
        "date", "content-type", "server", "cache-control", "vary", "set-cookie", "location",
        "expires", "x-powered-by", "content-encoding", "last-modified", "accept-ranges",
        "pragma", "x-frame-options", "etag", "x-content-type-options", "age", "via", "p3p",
        "x-xss-protection", "content-language", "cf-ray", "strict-transport-security", "link",
        "x-varnish", "content-length", "connection", "transfer-encoding",
    }
)

_MECHANISM = {
    failures.DNS_NXDOMAIN: "nxdomain",
    failures.DNS_NO_ANSWER: "no_answer",
    failures.DNS_SERVFAIL: "servfail",
    failures.DNS_REFUSED: "servfail",
    failures.TIMEOUT: "timeout",
    failures.CONNECTION_REFUSED: "refused",
    failures.CONNECTION_RESET: "reset",
    failures.EOF_ERROR: "eof",
    failures.SSL_UNKNOWN_AUTHORITY: "mitm",
    failures.SSL_INVALID_CERTIFICATE: "mitm",
    failures.SSL_INVALID_HOSTNAME: "mitm",
}
_OONI_BLOCKING = {"dns": "dns", "tcp": "tcp_ip", "tls": "http-failure", "http": "http-failure"}
_CERT_FAILURES = frozenset(
    {failures.SSL_UNKNOWN_AUTHORITY, failures.SSL_INVALID_CERTIFICATE,
     failures.SSL_INVALID_HOSTNAME}
)


def _verdict(
    verdict: str, layer: str | None = None, mechanism: str | None = None,
    confidence: float = 0.0, evidence: list[str] | None = None,
) -> Record:
    return {"verdict": verdict, "layer": layer, "mechanism": mechanism,
            "confidence": round(confidence, 2), "evidence": evidence or []}


def mechanism_of(failure: str | None) -> str | None:
    if failure is None:
        return None
    return _MECHANISM.get(failure, "unknown" if failure.startswith("unknown") else None)


def _addresses(query: Record) -> set[str]:
    out = set()
    for answer in query.get("answers") or []:
        address = answer.get("ipv4") or answer.get("ipv6")
        if address:
            out.add(address)
    return out


def _relevant(endpoint_ip: str, keys: Record) -> bool:
    """IPv6 endpoints do not count when the probe host has no IPv6 connectivity."""
    return not (":" in endpoint_ip and keys.get("x_ipv6_available") is False)


def dns_consistency(keys: Record) -> str | None:
    """OONI's classic rule on the system resolver, plus OONI v0.5's TLS rescue.

    Returns "consistent", "inconsistent" or None (no control to compare with).
    """
    control = keys.get("control") or {}
    control_dns = control.get("dns")
    if keys.get("control_failure") or not control_dns:
        return None
    system = next((q for q in keys.get("queries") or [] if q.get("engine") == "getaddrinfo"), None)
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


def http_comparison(keys: Record) -> Record:
    """OONI's body, status, headers and title comparisons of the probe's and control's page."""
    out: Record = {"body_length_match": None, "body_proportion": None, "status_code_match": None,
                   "headers_match": None, "title_match": None}
    requests = keys.get("requests") or []
    control_http = (keys.get("control") or {}).get("http_request") or {}
    if not requests or requests[0].get("response") is None or control_http.get("failure") \
            or control_http.get("status_code") is None:
        return out
    response = requests[0]["response"]
    probe_len, control_len = response.get("body_length") or 0, control_http.get("body_length") or 0
    if probe_len > 0 and control_len > 0 and not response.get("body_is_truncated"):
        proportion = min(probe_len, control_len) / max(probe_len, control_len)
        out["body_proportion"] = round(proportion, 4)
        out["body_length_match"] = proportion > 0.7
    probe_code, control_code = response.get("code"), control_http.get("status_code")
    if probe_code == control_code:
        out["status_code_match"] = True
    elif control_code is not None and 200 <= control_code < 300:
        out["status_code_match"] = False
    probe_headers = {k.lower() for k in (response.get("headers") or {})} - COMMON_HEADERS
    control_headers = {k.lower() for k in (control_http.get("headers") or {})} - COMMON_HEADERS
    out["headers_match"] = bool(probe_headers & control_headers) or (
        not probe_headers and not control_headers)
    probe_words = {w.lower() for w in (response.get("title") or "").split() if len(w) >= 5}
    control_words = {w.lower() for w in (control_http.get("title") or "").split() if len(w) >= 5}
    if probe_words or control_words:
        out["title_match"] = not (probe_words ^ control_words)
    return out


def _control_failed(control: Record, section: str, endpoint: str | None = None) -> bool | None:
    """Did the control fail this operation? None when it has no data for it."""
    data = control.get(section)
    if data is None:
        return None
    if endpoint is not None:
        entry = data.get(endpoint)
        if entry is None:
            return None
        return not entry.get("status", entry.get("failure") is None)
    return bool(data.get("failure"))


def _summarise(keys: Record, consistency: str | None, comparison: Record, url: str) -> Record:
    control = keys.get("control") or {}
    control_failure = keys.get("control_failure")
    have_control = not control_failure and bool(control)
    queries = keys.get("queries") or []
    requests = keys.get("requests") or []
    scheme = urlsplit(url).scheme

    # 1. DNS injection: two different answers to one query.
    for query in queries:
        for late in query.get("late_answers") or []:
            if not late.get("identical") and _addresses(query) != _addresses(late):
                evidence = [f"dns_duplicate_answers:{query.get('query_type')}",
                            f"first:{','.join(sorted(_addresses(query))) or query.get('rcode')}",
                            f"late:{','.join(sorted(_addresses(late))) or late.get('rcode')}"]
                return _verdict("blocked", "dns", "injected", 0.9, evidence)

    final = requests[0] if requests else None
    final_response = final.get("response") if final else None

    # 2. A final page over HTTPS with a valid certificate cannot be forged by the network.
    if final is not None and final_response is not None \
            and final["request"]["url"].startswith("https://"):
        return _verdict("ok", confidence=0.95 if have_control else 0.8,
                        evidence=[f"https_status:{final_response.get('code')}"])

    if not have_control:
        return _verdict("inconclusive", evidence=[f"control_failure:{control_failure}"])

    control_dns = control.get("dns") or {}
    control_addrs = set(control_dns.get("addrs") or [])
    system = next((q for q in queries if q.get("engine") == "getaddrinfo"), None)

    # 3. DNS failed at the probe.
    if system is not None and system.get("failure"):
        failure = system["failure"]
        if control_dns.get("failure") or not control_addrs:
            return _verdict("down", "dns", mechanism_of(failure), 0.8,
                            [f"probe_dns:{failure}", f"control_dns:{control_dns.get('failure')}"])
        return _verdict("blocked", "dns", mechanism_of(failure) or "unknown", 0.8,
                        [f"probe_dns:{failure}", "control_dns:ok"])

    probe_addrs = _addresses(system) if system else set()
    if system is not None and probe_addrs and control_addrs:
        if all(is_loopback(a) for a in probe_addrs) and not all(
                is_loopback(a) for a in control_addrs):
            return _verdict("blocked", "dns", "bogon", 0.9,
                            [f"probe_answers:{','.join(sorted(probe_addrs))}", "loopback"])
        if all(is_bogon(a) for a in probe_addrs) and not any(
                is_bogon(a) for a in control_addrs):
            return _verdict("blocked", "dns", "bogon", 0.9,
                            [f"probe_answers:{','.join(sorted(probe_addrs))}", "bogon"])

    # 4. TCP: every relevant connect failed.
    connects = [c for c in keys.get("tcp_connect") or [] if _relevant(c["ip"], keys)]
    if connects and not any(c["status"]["success"] for c in connects):
        failure = connects[0]["status"]["failure"]
        failed_at_control = [
            _control_failed(control, "tcp_connect", _endpoint(c["ip"], c["port"]))
            for c in connects
        ]
        if consistency == "inconsistent":
            return _verdict("blocked", "dns", "spoofed", 0.7,
                            ["dns_inconsistent", f"probe_tcp:{failure}"])
        if all(f is True for f in failed_at_control):
            return _verdict("down", "tcp", mechanism_of(failure), 0.8,
                            [f"probe_tcp:{failure}", "control_tcp:failed"])
        if any(f is False for f in failed_at_control):
            return _verdict("blocked", "tcp", mechanism_of(failure) or "unknown", 0.8,
                            [f"probe_tcp:{failure}", "control_tcp:ok"])
        return _verdict("inconclusive", "tcp", mechanism_of(failure),
                        evidence=[f"probe_tcp:{failure}", "control_tcp:missing"])

    # 5. TLS: every handshake failed.
    handshakes = [h for h in keys.get("tls_handshakes") or []
                  if _relevant(h["address"].rsplit(":", 1)[0].strip("[]"), keys)]
    if scheme == "https" and handshakes and not any(h["failure"] is None for h in handshakes):
        handshake = handshakes[0]
        failure = handshake["failure"]
        control_tls = control.get("tls_handshake") or {}
        control_entry = control_tls.get(handshake["address"]) or next(iter(control_tls.values()),
                                                                    None)
        control_ok = control_entry is not None and control_entry.get("status") is True
        control_bad = control_entry is not None and control_entry.get("status") is False
        if failure in _CERT_FAILURES:
            presented = handshake.get("x_presented_certificate") or {}
            issuer = presented.get("issuer")
            control_issuer = (control_entry or {}).get("x_issuer")
            evidence = [f"probe_tls:{failure}", f"issuer:{issuer}",
                        f"control_issuer:{control_issuer}"]
            if presented.get("sha256"):
                evidence.append(f"sha256:{presented['sha256']}")
            if consistency == "inconsistent" and not control_ok:
                return _verdict("blocked", "dns", "spoofed", 0.7, ["dns_inconsistent", *evidence])
            if control_ok and issuer and issuer != control_issuer:
                return _verdict("blocked", "tls", "mitm", 0.9, evidence)
            if control_bad:
                return _verdict("down", "tls", mechanism_of(failure), 0.7, evidence)
            return _verdict("inconclusive", "tls", "mitm", 0.3, evidence)
        if consistency == "inconsistent":
            return _verdict("blocked", "dns", "spoofed", 0.7,
                            ["dns_inconsistent", f"probe_tls:{failure}"])
        if control_ok:
            return _verdict("blocked", "tls", mechanism_of(failure) or "unknown", 0.8,
                            [f"probe_tls:{failure}", "control_tls:ok",
                             f"sni:{handshake['server_name']}"])
        if control_bad:
            return _verdict("down", "tls", mechanism_of(failure), 0.7,
                            [f"probe_tls:{failure}", "control_tls:failed"])
        return _verdict("inconclusive", "tls", mechanism_of(failure),
                        evidence=[f"probe_tls:{failure}", "control_tls:missing"])

    # 6. HTTP.
    control_http = control.get("http_request") or {}
    if final is None:
        return _verdict("inconclusive", evidence=["no_http_request"])
    if final_response is None:
        failure = final["failure"]
        if control_http.get("failure"):
            return _verdict("down", "http", mechanism_of(failure), 0.7,
                            [f"probe_http:{failure}", f"control_http:{control_http['failure']}"])
        if consistency == "inconsistent":
            return _verdict("blocked", "dns", "spoofed", 0.7,
                            ["dns_inconsistent", f"probe_http:{failure}"])
        if final.get("x_slow"):
            return _verdict("throttled", "http", None, 0.5,
                            [f"probe_http:{failure}", f"bytes:{final.get('x_bytes_received')}"])
        return _verdict("blocked", "http", mechanism_of(failure) or "unknown", 0.8,
                        [f"probe_http:{failure}", "control_http:ok"])

    fingerprint = blockpages.match(final_response)
    if fingerprint:
        layer = "dns" if consistency == "inconsistent" else "http"
        return _verdict("blocked", layer, "blockpage", 0.95, [f"blockpage:{fingerprint}"])
    if control_http.get("failure") or control_http.get("status_code") is None:
        return _verdict("inconclusive", "http", evidence=["control_http_failed"])
    matched = comparison["status_code_match"] is True and any(
        comparison[k] is True for k in ("body_length_match", "headers_match", "title_match"))
    if matched:
        return _verdict("ok", confidence=0.8, evidence=[f"http_status:{final_response['code']}"])
    evidence = [f"{k}:{comparison[k]}" for k in ("status_code_match", "body_length_match",
                                                 "headers_match", "title_match")]
    if consistency == "inconsistent":
        return _verdict("blocked", "dns", "spoofed", 0.8, ["dns_inconsistent", *evidence])
    return _verdict("blocked", "http", "diff", 0.5, evidence)


def _endpoint(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def ooni_blocking(analysis: Record) -> tuple[str | bool | None, bool | None]:
    """OONI's (blocking, accessible) pair for one of our verdicts."""
    verdict = analysis["verdict"]
    if verdict == "ok":
        return False, True
    if verdict == "down":
        return False, False
    if verdict in ("blocked", "throttled"):
        if analysis["mechanism"] in ("diff", "blockpage") and analysis["layer"] == "http":
            return "http-diff", False
        return _OONI_BLOCKING.get(analysis["layer"] or "http", "http-failure"), False
    return None, None


def analyze(keys: Record, url: str) -> Record:
    """OONI's comparison keys plus ``analysis`` for the given test keys of ``url``."""
    consistency = dns_consistency(keys)
    comparison = http_comparison(keys)
    analysis = _summarise(keys, consistency, comparison, url)
    blocking, accessible = ooni_blocking(analysis)
    return {"dns_consistency": consistency, **comparison, "blocking": blocking,
            "accessible": accessible, "analysis": analysis}
