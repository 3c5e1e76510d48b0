"""A small builder of web connectivity test keys, in the exact shape
probe.nettests.web_connectivity.measure records.

Used to write the analysis table (one fixture per OONI QA class) without pages of JSON: each
helper returns the records ``web.measure`` would have produced for that step.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]

PAGE_HEADERS = {"Content-Type": "text/html", "X-Site-Id": "1", "Date": "Mon, 01 Jan 2024"}


def response(code: int = 200, length: int = 1256, title: str = "Example Domain Homepage",
             headers: dict[str, str] | None = None, truncated: bool = False,
             body: str = "", sha: str = "site") -> Record:
    return {"code": code, "headers": dict(PAGE_HEADERS if headers is None else headers),
            "body": full_body(body, title, length), "body_is_truncated": truncated,
            "x_body_length": length, "x_body_sha256": sha, "x_title": title}


def full_body(text: str, title: str, length: int) -> str:
    """The stored body a page of ``length`` bytes titled ``title`` would have: ``text`` (the
    part a row cares about) under the title, padded with spaces to the page's length, as the
    probe stores the whole body (up to OONI's 512 KiB snapshot) and OONI reads length and
    title from it."""
    page = text if "<title" in text.lower() or not title else f"<title>{title}</title>{text}"
    missing = length - len(page.encode("utf-8"))
    return page + " " * missing if missing > 0 else page


def control_page(code: int = 200, length: int = 1256, title: str = "Example Domain Homepage",
                 headers: dict[str, str] | None = None, sha: str = "site",
                 issuer: str | None = None) -> Record:
    page: Record = {"failure": None, "status_code": code, "body_length": length,
                    "headers": dict(PAGE_HEADERS if headers is None else headers),
                    "title": title, "x_body_sha256": sha}
    if issuer:
        page.update(x_tls_issuer=issuer, x_tls_sha256=f"leaf-{issuer}")
    return page


def control_failed_page(failure: str) -> Record:
    return {"failure": failure, "status_code": None, "body_length": None, "headers": {},
            "title": ""}


@dataclass
class Measurement:
    """Accumulates records; ``keys()`` returns the test keys."""

    url: str
    queries: list[Record] = field(default_factory=list)
    tcp_connect: list[Record] = field(default_factory=list)
    tls_handshakes: list[Record] = field(default_factory=list)
    requests: list[Record] = field(default_factory=list)
    control: Record | None = None
    control_failure: str | None = None
    ipv6: bool = True
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def lookup(self, host: str, addrs: list[str] | None = None, failure: str | None = None,
               depth: int = 0, engine: str = "getaddrinfo", qtype: str = "ANY",
               late: list[Record] | None = None) -> Measurement:
        answers = [{"answer_type": "AAAA" if ":" in a else "A",
                    ("ipv6" if ":" in a else "ipv4"): a, "ttl": None} for a in addrs or []]
        record: Record = {"engine": engine, "resolver_address": "" if engine == "getaddrinfo"
                          else "192.0.2.53:53", "query_type": qtype, "hostname": host,
                          "answers": answers, "failure": failure,
                          "x_operation": "resolve" if failure else None, "t0": 0.0, "t": 0.01,
                          "transaction_id": next(self._ids), "tags": [f"depth={depth}"]}
        if engine == "udp":
            record.update(rcode=0 if not failure else 3, x_late_answers=late or [])
        self.queries.append(record)
        return self

    def flow(self, ip: str, port: int, depth: int = 0, tcp: str | None = None,
             tls: str | None | bool = False, issuer: str = "DigiCert Global G2",
             sha: str | None = None, http: Record | str | None = None,
             redirect_failure: str | None = None, origin: str = "system",
             sni: str | None = None) -> Measurement:
        """One endpoint: ``tcp`` failure (None: connected); ``tls``: False (not https),
        None (validated) or a failure; ``http``: a response, a failure string or None."""
        txid = next(self._ids)
        tags = [f"depth={depth}", "fetch_body=true"] + (["classic"] if origin == "system"
                                                        else [])
        self.tcp_connect.append({
            "ip": ip, "port": port, "status": {"success": tcp is None, "failure": tcp,
                                               "x_operation": "connect" if tcp else None,
                                               "blocked": None},
            "t0": 0.0, "t": 0.02, "transaction_id": txid, "x_origin": origin, "tags": tags})
        if tcp is not None:
            return self
        if tls is not False:
            leaf = {"subject": sni or "", "issuer": issuer, "sha256": sha or f"leaf-{issuer}"}
            self.tls_handshakes.append({
                "address": f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}",
                "server_name": sni or _host(self.url, depth), "failure": tls,
                "x_operation": "tls_handshake" if tls else None,
                "tls_version": None if tls else "TLSv1.3", "cipher_suite": None,
                "negotiated_protocol": None, "peer_certificates": [],
                "x_certificates": [leaf], "t0": 0.02, "t": 0.05, "transaction_id": txid,
                "x_origin": origin, "tags": tags})
            if tls:
                return self
        if http is None:
            return self
        scheme = "https" if tls is not False else "http"
        request: Record = {
            "request": {"method": "GET", "url": f"{scheme}://{_host(self.url, depth)}/"},
            "response": None, "failure": None, "x_operation": None, "t0": 0.05, "t": 0.1,
            "x_ttfb": 0.07, "transaction_id": txid, "x_origin": origin, "tags": tags}
        if isinstance(http, str):
            request.update(failure=http, x_operation="http_round_trip")
        else:
            request["response"] = http
            if redirect_failure:
                request.update(failure=redirect_failure, x_operation="http_round_trip")
        self.requests.insert(0, request)
        return self

    def keys(self) -> Record:
        return {
            "queries": self.queries, "tcp_connect": self.tcp_connect,
            "tls_handshakes": self.tls_handshakes, "requests": self.requests,
            "network_events": [],
            "x_control_request": {"http_request": self.url, "tcp_connect": []},
            "control": self.control or {}, "control_failure": self.control_failure,
            "x_ipv6_available": self.ipv6,
        }


_HOSTS: dict[tuple[str, int], str] = {}


def _host(url: str, depth: int) -> str:
    from urllib.parse import urlsplit

    return _HOSTS.get((url, depth)) or (urlsplit(url).hostname or "")


def redirect_host(url: str, depth: int, host: str) -> None:
    """Declare the host of a redirect hop (for request URLs and SNI)."""
    _HOSTS[(url, depth)] = host


def control(addrs: list[str], dns_failure: str | None = None,
            tcp: dict[str, str | None] | None = None,
            tls: dict[str, tuple[str | None, str]] | None = None,
            http: Record | None = None, sni: str = "") -> Record:
    """A control view: ``tcp`` endpoint -> failure; ``tls`` endpoint -> (failure, issuer)."""
    return {
        "dns": {"failure": dns_failure, "addrs": addrs},
        "tcp_connect": {ep: {"status": f is None, "failure": f} for ep, f in (tcp or {}).items()},
        "tls_handshake": {ep: {"server_name": sni, "status": f is None, "failure": f,
                               "x_issuer": issuer, "x_sha256": f"leaf-{issuer}"}
                          for ep, (f, issuer) in (tls or {}).items()},
        "http_request": http if http is not None else control_page(),
        "ip_info": {},
    }
