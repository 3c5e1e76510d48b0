"""The analysis on a table: one observation fixture per OONI QA class, exact expected keys.

Each row builds the test keys the probe would record in the network of OONI's QA scenario
(probe-cli ``webconnectivityqa``; numbers are the case numbers of the reference table) and
states what OONI expects (``blocking``, ``accessible``, ``dns_consistency``, the failure keys
and, where OONI checks them, the HTTP comparison keys) and what Kuzot's verdict is. Rows
K1-K9 are Kuzot's own cases (interception, injection, control failure, IPv6, blockpages).
Throttling (cases 44, 45) belongs to the throttling check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from probe.core import failures
from probe.nettests.web_connectivity import analysis
from tests.helpers.observations import (
    PAGE_HEADERS,
    Measurement,
    control,
    control_failed_page,
    control_page,
    redirect_host,
    response,
)

EXAMPLE = "93.184.216.34"
EXAMPLE_V6 = "2606:2800:220:1::1"
BADSSL = "104.154.89.105"
PROXY = "130.192.182.17"
BLOCKPAGE_IP = "83.224.65.41"
BITLY = "67.199.248.11"
HTTPBIN = "3.223.0.10"
YANDEX = "77.88.55.60"
LARGE = "52.35.36.75"
CLOUDFLARE = "104.16.0.1"
NXDOMAIN, REFUSED, RESET, EOF, TIMEOUT = (
    failures.DNS_NXDOMAIN, failures.CONNECTION_REFUSED, failures.CONNECTION_RESET,
    failures.EOF_ERROR, failures.TIMEOUT)
CHALLENGE_HEADERS = {"Server": "cloudflare", "cf-mitigated": "challenge", "Alt-Svc": "h3"}
SITE_HEADERS = {"Server": "cloudflare", "Alt-Svc": "h3", "Content-Type": "text/html"}
FRAMED_NOTICE_HEADERS = {"Content-Type": "text/html", "Content-Length": "126",
                         "Connection": "close"}
BLOCKPAGE_BODY = "<html><head><title>Access Denied</title></head><body>denied</body></html>"


@dataclass
class Row:
    name: str
    build: Callable[[], tuple[str, dict[str, Any]]]
    blocking: str | bool | None
    accessible: bool | None
    verdict: tuple[str, str | None, str | None]
    dns_consistency: str | None = None
    http_failure: str | None = None
    dns_failure: str | None = None
    diff: dict[str, Any] = field(default_factory=dict)
    evidence: tuple[str, ...] = ()
    cc: str | None = None
    absent: tuple[str, ...] = ()  # prefixes no evidence string may start with


def ep(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


def badssl(failure: str) -> tuple[str, dict[str, Any]]:
    url = "https://expired.badssl.com/"
    m = Measurement(url).lookup("expired.badssl.com", [BADSSL])
    m.flow(BADSSL, 443, tls=failure, issuer="BadSSL CA", sha="leaf-badssl")
    m.control = control([BADSSL], tcp={ep(BADSSL, 443): None},
                        tls={ep(BADSSL, 443): (failure, "BadSSL CA")},
                        http=control_failed_page(failure), sni="expired.badssl.com")
    m.control["tls_handshake"][ep(BADSSL, 443)]["x_sha256"] = "leaf-badssl"
    return url, m.keys()


def case4() -> tuple[str, dict[str, Any]]:
    url = "https://www.example.com/"
    m = Measurement(url).lookup("www.example.com", [BADSSL])
    m.flow(BADSSL, 443, tls=failures.SSL_UNKNOWN_AUTHORITY, issuer="BadSSL Untrusted Root")
    m.control = control([EXAMPLE], tcp={ep(BADSSL, 443): None, ep(EXAMPLE, 443): None},
                        tls={ep(BADSSL, 443): (failures.SSL_UNKNOWN_AUTHORITY,
                                               "BadSSL Untrusted Root"),
                             ep(EXAMPLE, 443): (None, "DigiCert Global G2")},
                        sni="www.example.com")
    return url, m.keys()


def captcha(scheme: str) -> tuple[str, dict[str, Any]]:
    url = f"{scheme}://www.cloudflare-cache.com/"
    m = Measurement(url).lookup("www.cloudflare-cache.com", [CLOUDFLARE])
    page = response(403, 2000, "Just a moment...", CHALLENGE_HEADERS,
                    body="<html><head><title>Just a moment...</title>", sha="captcha")
    m.flow(CLOUDFLARE, 443 if scheme == "https" else 80,
           tls=None if scheme == "https" else False, http=page)
    m.control = control([CLOUDFLARE], http=control_page(200, 11000, "Cloudflare cache test page",
                                                        SITE_HEADERS))
    return url, m.keys()


def control_down(scheme: str) -> tuple[str, dict[str, Any]]:
    url = f"{scheme}://www.example.org/"
    m = Measurement(url).lookup("www.example.org", [EXAMPLE])
    m.flow(EXAMPLE, 443 if scheme == "https" else 80, tls=None if scheme == "https" else False,
           http=response())
    m.control_failure = RESET
    return url, m.keys()


def dns_failure(failure: str) -> tuple[str, dict[str, Any]]:
    url = "https://www.example.com/"
    m = Measurement(url).lookup("www.example.com", failure=failure)
    m.control = control([EXAMPLE], tcp={ep(EXAMPLE, 443): None},
                        tls={ep(EXAMPLE, 443): (None, "DigiCert Global G2")})
    return url, m.keys()


def case11() -> tuple[str, dict[str, Any]]:
    url = "https://www.example.com/"
    m = Measurement(url).lookup("www.example.com", ["10.10.34.35"])
    m.flow("10.10.34.35", 443, tcp=TIMEOUT)
    m.control = control([EXAMPLE], tcp={ep(EXAMPLE, 443): None},
                        tls={ep(EXAMPLE, 443): (None, "DigiCert Global G2")})
    return url, m.keys()


def localhost(scheme: str, control_addrs: list[str]) -> tuple[str, dict[str, Any]]:
    url = f"{scheme}://www.example.com/"
    m = Measurement(url).lookup("www.example.com", ["127.0.0.1"])
    http = control_page() if control_addrs != ["127.0.0.1"] else control_failed_page(REFUSED)
    m.control = control(control_addrs, http=http)
    return url, m.keys()


def proxy(scheme: str) -> tuple[str, dict[str, Any]]:
    url = f"{scheme}://www.example.com/"
    port = 443 if scheme == "https" else 80
    m = Measurement(url).lookup("www.example.com", [PROXY])
    m.flow(PROXY, port, tls=None if scheme == "https" else False, http=response())
    m.control = control([EXAMPLE], tcp={ep(PROXY, port): None, ep(EXAMPLE, port): None})
    return url, m.keys()


def ghost(scheme: str) -> tuple[str, dict[str, Any]]:
    url = f"{scheme}://itsat.info/"
    m = Measurement(url).lookup("itsat.info", [BLOCKPAGE_IP])
    if scheme == "http":
        m.flow(BLOCKPAGE_IP, 80, http=response(200, 72, "Access Denied", body=BLOCKPAGE_BODY,
                                               sha="blockpage"))
        tcp = {ep(BLOCKPAGE_IP, 80): None}
    else:
        m.flow(BLOCKPAGE_IP, 443, tcp=REFUSED)
        tcp = {ep(BLOCKPAGE_IP, 443): REFUSED}
    m.control = control([], dns_failure=NXDOMAIN, tcp=tcp, http=control_failed_page(NXDOMAIN))
    return url, m.keys()


def plain(url_host: str = "www.example.com", http: dict[str, Any] | str | None = None,
          scheme: str = "http", answers: tuple[str, ...] = (EXAMPLE,),
          control_http: dict[str, Any] | None = None, tls: str | None | bool = None,
          tcp: str | None = None, control_tcp: str | None = None,
          control_tls: str | None = None, port: int | None = None, cc_issuer: str = "",
          ipv6: bool = True, extra: Callable[[Measurement], None] | None = None,
          ) -> tuple[str, dict[str, Any]]:
    """One hop to ``answers[0]``; control sees EXAMPLE for the host."""
    port = port or (443 if scheme == "https" else 80)
    suffix = f":{port}" if port not in (80, 443) else ""
    url = f"{scheme}://{url_host}{suffix}/"
    m = Measurement(url, ipv6=ipv6).lookup(url_host, list(answers))
    if extra:
        extra(m)
    m.flow(answers[0], port, tcp=tcp, tls=(tls if scheme == "https" else False),
           http=http if http is not None else response(), issuer=cc_issuer or "DigiCert Global G2")
    tcp_view = {ep(a, port): control_tcp for a in answers}
    tls_view = {ep(a, port): (control_tls, "DigiCert Global G2") for a in answers} \
        if scheme == "https" else {}
    m.control = control([EXAMPLE], tcp=tcp_view, tls=tls_view, sni=url_host,
                        http=control_http if control_http is not None else control_page())
    return url, m.keys()


def redirect(target: str, depth1: Callable[[Measurement], None]) -> tuple[str, dict[str, Any]]:
    """https://bit.ly/... -> ``target`` (www.example.com), then ``depth1`` records."""
    url = "https://bit.ly/21645" if target.startswith("https") else "https://bit.ly/32447"
    redirect_host(url, 1, "www.example.com")
    m = Measurement(url).lookup("bit.ly", [BITLY])
    m.flow(BITLY, 443, tls=None, http=response(301, 0, "", {"Location": target}))
    m.lookup("www.example.com", [EXAMPLE], depth=1)
    depth1(m)
    m.control = control([BITLY], tcp={ep(BITLY, 443): None},
                        tls={ep(BITLY, 443): (None, "DigiCert Global G2")}, sni="bit.ly")
    return url, m.keys()


def too_many(scheme: str) -> tuple[str, dict[str, Any]]:
    url = f"{scheme}://httpbin.com/redirect/15"
    m = Measurement(url)
    port = 443 if scheme == "https" else 80
    for depth in range(11):
        m.lookup("httpbin.com", [HTTPBIN], depth=depth)
        m.flow(HTTPBIN, port, depth=depth, tls=None if scheme == "https" else False,
               http=response(302, 0, "", {"Location": f"/relative-redirect/{14 - depth}"}),
               redirect_failure=failures.TOO_MANY_REDIRECTS if depth == 10 else None)
    m.control = control([HTTPBIN], tcp={ep(HTTPBIN, port): None},
                        http=control_failed_page(failures.TOO_MANY_REDIRECTS))
    return url, m.keys()


def broken_redirect(scheme: str) -> tuple[str, dict[str, Any]]:
    url = f"{scheme}://httpbin.com/broken-redirect-{scheme}"
    m = Measurement(url).lookup("httpbin.com", [HTTPBIN])
    m.flow(HTTPBIN, 443 if scheme == "https" else 80, tls=None if scheme == "https" else False,
           http=response(302, 0, "", {"Location": f"{scheme}://"}),
           redirect_failure=failures.HTTP_INVALID_REDIRECT)
    m.control = control([HTTPBIN], http=control_page(302, 0, "", {"Location": f"{scheme}://"}))
    return url, m.keys()


def idna(host: str) -> tuple[str, dict[str, Any]]:
    url = f"http://{host}/"
    m = Measurement(url).lookup("xn--d1acpjx3f.xn--p1ai", [YANDEX])
    m.flow(YANDEX, 80, http=response(title="Яндекс найдётся всё"))
    m.control = control([YANDEX], tcp={ep(YANDEX, 80): None},
                        http=control_page(title="Яндекс найдётся всё"))
    return url, m.keys()


def large(scheme: str) -> tuple[str, dict[str, Any]]:
    url = f"{scheme}://largefile.com/"
    m = Measurement(url).lookup("largefile.com", [LARGE])
    m.flow(LARGE, 443 if scheme == "https" else 80, tls=None if scheme == "https" else False,
           http=response(200, 1 << 19, "Large file", truncated=True))
    m.control = control([LARGE], http=control_page(200, 10 << 20, "Large file"))
    return url, m.keys()


def injected() -> tuple[str, dict[str, Any]]:
    def udp(m: Measurement) -> None:
        m.lookup("www.example.com", ["10.10.34.35"], engine="udp", qtype="A", late=[
            {"rcode": 0, "answers": [{"answer_type": "A", "ipv4": EXAMPLE}],
             "failure": None, "identical": False, "delay": 0.03}])

    return plain(extra=udp)


def ipv6_unreachable(v4_tcp: str | None) -> tuple[str, dict[str, Any]]:
    url = "https://www.example.com/"
    m = Measurement(url, ipv6=False).lookup("www.example.com", [EXAMPLE, EXAMPLE_V6])
    m.flow(EXAMPLE_V6, 443, tcp=failures.NETWORK_UNREACHABLE)
    m.flow(EXAMPLE, 443, tcp=v4_tcp, tls=None, http=response())
    m.control = control([EXAMPLE, EXAMPLE_V6],
                        tcp={ep(EXAMPLE, 443): None, ep(EXAMPLE_V6, 443): None})
    return url, m.keys()


def ipv6_blocked(v6_tcp: str, have_v6: bool) -> tuple[str, dict[str, Any]]:
    """A dual-stack site whose IPv6 connect fails; the page comes over IPv4."""
    url = "https://www.example.com/"
    m = Measurement(url, ipv6=have_v6).lookup("www.example.com", [EXAMPLE_V6, EXAMPLE])
    m.flow(EXAMPLE_V6, 443, tcp=v6_tcp)
    m.flow(EXAMPLE, 443, tls=None, http=response())
    m.control = control([EXAMPLE, EXAMPLE_V6],
                        tcp={ep(EXAMPLE, 443): None, ep(EXAMPLE_V6, 443): None})
    return url, m.keys()


def ipv6_only_without_ipv6() -> tuple[str, dict[str, Any]]:
    """An IPv6-only site seen from a host without IPv6: the only connect fails with no route,
    while the control connects and fetches the page."""
    url = "https://www.example.com/"
    m = Measurement(url, ipv6=False).lookup("www.example.com", [EXAMPLE_V6])
    m.flow(EXAMPLE_V6, 443, tcp=failures.NETWORK_UNREACHABLE)
    m.control = control([EXAMPLE_V6], tcp={ep(EXAMPLE_V6, 443): None})
    return url, m.keys()


def isp_lies(scheme: str, failure: str | None = None, answers: tuple[str, ...] = (),
             dial: str | None = None) -> tuple[str, dict[str, Any]]:
    """The ISP (system) resolver fails with ``failure`` or answers ``answers``, while the
    probe's extra UDP resolver returns the site's address and the page loads through it
    (OONI QA 9-13 as OONI's probe measures them, with 1.1.1.1 beside getaddrinfo). ``dial``
    is the failure of the connect to the system resolver's (bogon) answer."""
    url = f"{scheme}://www.example.com/"
    port = 443 if scheme == "https" else 80
    m = Measurement(url).lookup("www.example.com", list(answers), failure=failure)
    m.lookup("www.example.com", [EXAMPLE], engine="udp", qtype="A")
    if dial is not None:
        m.flow(answers[0], port, tcp=dial)
    m.flow(EXAMPLE, port, origin="udp", tls=None if scheme == "https" else False,
           http=response())
    m.control = control([EXAMPLE], tcp={ep(EXAMPLE, port): None},
                        tls={ep(EXAMPLE, port): (None, "DigiCert Global G2")}
                        if scheme == "https" else {})
    return url, m.keys()


def redirect_then_isp_lies() -> tuple[str, dict[str, Any]]:
    """https://bit.ly/... redirects to www.example.com, which the ISP resolver NXDOMAINs;
    the extra resolver's address serves the page (OONI QA 33 with an extra resolver)."""
    def depth1(m: Measurement) -> None:
        m.queries[-1] = {**m.queries[-1], "answers": [], "failure": NXDOMAIN}
        m.lookup("www.example.com", [EXAMPLE], depth=1, engine="udp", qtype="A")
        m.flow(EXAMPLE, 443, depth=1, origin="udp", tls=None, http=response())

    return redirect("https://www.example.com/", depth1)


def literal() -> tuple[str, dict[str, Any]]:
    """``http://192.0.2.10:8080/``: no lookup; Kuzot's control lists the literal among its
    addresses (OONI's test helper leaves them empty), which must not hide the probe's own
    endpoint."""
    url = "http://192.0.2.10:8080/"
    m = Measurement(url)
    m.flow("192.0.2.10", 8080, origin="literal", http=response())
    m.control = control(["192.0.2.10"], tcp={"192.0.2.10:8080": None})
    return url, m.keys()


def mitm(issuer: str, tls: str | None) -> tuple[str, dict[str, Any]]:
    return plain(scheme="https", tls=tls, cc_issuer=issuer,
                 control_http=control_page(issuer="DigiCert Global G2"))


HOMELINE = "80.72.224.10"
ROSTELECOM_BLOCKPAGE = "95.167.13.50"  # OONI's DNS fingerprint ooni.ru_dns_1 (RU)
HOMELINE_LOCATION = "http://homeline.kg/access/blockpage.html"  # OONI's ooni.kg_0 (KG)
# A Russian-language stub in no fingerprint file (the wording of Kazakh ISPs' notices).
UNKNOWN_RU = ("<html><head><title>Уведомление</title></head><body><h2>Доступ ограничен</h2>"
              "<p>Доступ к запрашиваемому интернет-ресурсу ограничен в соответствии с решением "
              "уполномоченного государственного органа.</p></body></html>")


def isp_redirect(location: str, depth1: Callable[[Measurement], None], host: str,
                 ) -> tuple[str, dict[str, Any]]:
    """http://www.azattyk.org/ answered by the ISP with a redirect to ``location``."""
    url = "http://www.azattyk.org/"
    redirect_host(url, 1, host)
    m = Measurement(url).lookup("www.azattyk.org", [EXAMPLE])
    m.flow(EXAMPLE, 80, http=response(302, 0, "", {"Location": location}, sha="redirect"))
    m.lookup(host, [HOMELINE], depth=1)
    depth1(m)
    m.control = control([EXAMPLE], tcp={ep(EXAMPLE, 80): None})
    return url, m.keys()


def homeline_page(m: Measurement) -> None:
    m.flow(HOMELINE, 80, depth=1, http=response(200, 700, "Homeline", {}, sha="homeline",
                                                body="<p>Homeline</p>"))


def news_page(quote: str) -> str:
    """A long page of the site that quotes blocking wording in an article."""
    article = f"<p>Читатели сообщают о странице «{quote}» у провайдеров.</p>" * 40
    return f"<html><head><title>Новости</title></head><body>{article}</body></html>"


ROWS = [
    Row("01 expired certificate", lambda: badssl(failures.SSL_INVALID_CERTIFICATE), False, False,
        ("down", "tls", None), "consistent", failures.SSL_INVALID_CERTIFICATE),
    Row("02 wrong server name", lambda: badssl(failures.SSL_INVALID_HOSTNAME), False, False,
        ("down", "tls", None), "consistent", failures.SSL_INVALID_HOSTNAME),
    Row("03 unknown authority, consistent DNS", lambda: badssl(failures.SSL_UNKNOWN_AUTHORITY),
        False, False, ("down", "tls", None), "consistent", failures.SSL_UNKNOWN_AUTHORITY),
    Row("04 unknown authority, inconsistent DNS", case4, "dns", False,
        ("blocked", "dns", "spoofed"), "inconsistent", failures.SSL_UNKNOWN_AUTHORITY,
        evidence=("issuer:BadSSL Untrusted Root",)),
    Row("05 CDN challenge over HTTP (Kuzot departs from OONI)", lambda: captcha("http"), None,
        None, ("inconclusive", "http", None), "consistent",
        diff={"status_code_match": False, "body_length_match": False, "body_proportion": 0.1818,
              "headers_match": True, "title_match": False},
        evidence=("challenge:cloudflare_challenge_header",)),
    Row("06 CDN challenge over HTTPS", lambda: captcha("https"), False, True, ("ok", None, None),
        "consistent", diff={"status_code_match": False, "body_length_match": False,
                            "body_proportion": 0.1818, "headers_match": True,
                            "title_match": False}),
    Row("07 control failure, HTTP site", lambda: control_down("http"), None, None,
        ("inconclusive", None, None), None, evidence=("control_failure:connection_reset",)),
    Row("08 control failure, HTTPS site", lambda: control_down("https"), False, True,
        ("ok", None, None), None),
    Row("09 Android DNS cache no data", lambda: dns_failure("android_dns_cache_no_data"), "dns",
        False, ("blocked", "dns", "nxdomain"), "inconsistent", "android_dns_cache_no_data",
        "android_dns_cache_no_data"),
    Row("10 NXDOMAIN", lambda: dns_failure(NXDOMAIN), "dns", False,
        ("blocked", "dns", "nxdomain"), "inconsistent", NXDOMAIN, NXDOMAIN),
    Row("11 bogon answer", case11, "dns", False, ("blocked", "dns", "bogon"), "inconsistent",
        TIMEOUT),
    Row("12 DNS to localhost, HTTP", lambda: localhost("http", [EXAMPLE]), "dns", False,
        ("blocked", "dns", "bogon"), "inconsistent"),
    Row("13 DNS to localhost, HTTPS", lambda: localhost("https", [EXAMPLE]), "dns", False,
        ("blocked", "dns", "bogon"), "inconsistent"),
    Row("14 DNS to transparent proxy, HTTP", lambda: proxy("http"), False, True,
        ("ok", None, None), "inconsistent",
        diff={"status_code_match": True, "body_length_match": True, "body_proportion": 1.0,
              "headers_match": True, "title_match": True}, evidence=("dns_inconsistent",)),
    Row("15 DNS to transparent proxy, HTTPS", lambda: proxy("https"), False, True,
        ("ok", None, None), "inconsistent",
        diff={"status_code_match": True, "body_length_match": True, "body_proportion": 1.0,
              "headers_match": True, "title_match": True}),
    Row("16 ghost DNS, HTTP", lambda: ghost("http"), "dns", False, ("blocked", "dns", "spoofed"),
        "inconsistent", evidence=("dns_ghost",)),
    Row("17 ghost DNS, HTTPS", lambda: ghost("https"), "dns", False,
        ("blocked", "dns", "spoofed"), "inconsistent", REFUSED),
    Row("18 HTTP connection reset", lambda: plain(http=RESET), "http-failure", False,
        ("blocked", "http", "reset"), "consistent", RESET),
    Row("19 HTTP diff, consistent DNS",
        lambda: plain(http=response(200, 154, "Access Denied", {}, body=BLOCKPAGE_BODY,
                                    sha="blockpage")),
        "http-diff", False, ("blocked", "http", "diff"), "consistent",
        diff={"status_code_match": True, "body_length_match": False, "body_proportion": 0.1226,
              "headers_match": False, "title_match": False}),
    Row("20 HTTP diff, inconsistent DNS",
        lambda: plain(answers=(PROXY,), http=response(200, 154, "Access Denied", {},
                                                       body=BLOCKPAGE_BODY, sha="blockpage")),
        "dns", False, ("blocked", "dns", "spoofed"), "inconsistent",
        diff={"status_code_match": True, "body_length_match": False, "body_proportion": 0.1226,
              "headers_match": False, "title_match": False}),
    Row("21 IDNA host", lambda: idna("яндекс.рф"), False, True, ("ok", None, None),
        "consistent", diff={"status_code_match": True, "body_length_match": True,
                            "body_proportion": 1.0, "headers_match": True, "title_match": True}),
    Row("22 IDNA host with a capital", lambda: idna("Яндекс.рф"), False, True,
        ("ok", None, None), "consistent",
        diff={"status_code_match": True, "body_length_match": True, "body_proportion": 1.0,
              "headers_match": True, "title_match": True}),
    Row("23 body larger than the snapshot, HTTP", lambda: large("http"), False, True,
        ("ok", None, None), "consistent",
        diff={"status_code_match": True, "body_length_match": None, "body_proportion": 0,
              "headers_match": True, "title_match": True}),
    Row("24 body larger than the snapshot, HTTPS", lambda: large("https"), False, True,
        ("ok", None, None), "consistent"),
    Row("25 site resolves to localhost, HTTP", lambda: localhost("http", ["127.0.0.1"]), False,
        False, ("down", "dns", None), "consistent"),
    Row("26 site resolves to localhost, HTTPS", lambda: localhost("https", ["127.0.0.1"]),
        False, False, ("down", "dns", None), "consistent"),
    Row("27 broken redirect location, HTTP", lambda: broken_redirect("http"), "http-failure",
        False, ("down", "http", None), "consistent", failures.HTTP_INVALID_REDIRECT),
    Row("28 broken redirect location, HTTPS", lambda: broken_redirect("https"), "http-failure",
        False, ("down", "http", None), "consistent", failures.HTTP_INVALID_REDIRECT),
    Row("29 redirect then refused, HTTP",
        lambda: redirect("http://www.example.com/",
                         lambda m: m.flow(EXAMPLE, 80, depth=1, tcp=REFUSED)),
        "http-failure", False, ("blocked", "tcp", "refused"), "consistent", REFUSED),
    Row("30 redirect then refused, HTTPS",
        lambda: redirect("https://www.example.com/",
                         lambda m: m.flow(EXAMPLE, 443, depth=1, tcp=REFUSED)),
        "http-failure", False, ("blocked", "tcp", "refused"), "consistent", REFUSED),
    Row("31 redirect then reset, HTTP",
        lambda: redirect("http://www.example.com/",
                         lambda m: m.flow(EXAMPLE, 80, depth=1, http=RESET)),
        "http-failure", False, ("blocked", "http", "reset"), "consistent", RESET),
    Row("32 redirect then reset, HTTPS",
        lambda: redirect("https://www.example.com/",
                         lambda m: m.flow(EXAMPLE, 443, depth=1, tls=RESET)),
        "http-failure", False, ("blocked", "tls", "reset"), "consistent", RESET),
    Row("33 redirect then NXDOMAIN",
        lambda: redirect("https://www.example.com/", lambda m: m.queries.__setitem__(
            -1, {**m.queries[-1], "answers": [], "failure": NXDOMAIN})),
        "dns", False, ("blocked", "dns", "nxdomain"), "consistent", NXDOMAIN),
    Row("34 redirect then EOF, HTTP",
        lambda: redirect("http://www.example.com/",
                         lambda m: m.flow(EXAMPLE, 80, depth=1, http=EOF)),
        "http-failure", False, ("blocked", "http", "eof"), "consistent", EOF),
    Row("35 redirect then EOF, HTTPS",
        lambda: redirect("https://www.example.com/",
                         lambda m: m.flow(EXAMPLE, 443, depth=1, tls=EOF)),
        "http-failure", False, ("blocked", "tls", "eof"), "consistent", EOF),
    Row("36 redirect then timeout, HTTP",
        lambda: redirect("http://www.example.com/",
                         lambda m: m.flow(EXAMPLE, 80, depth=1, http=TIMEOUT)),
        "http-failure", False, ("blocked", "http", "timeout"), "consistent", TIMEOUT),
    Row("37 redirect then timeout, HTTPS",
        lambda: redirect("https://www.example.com/",
                         lambda m: m.flow(EXAMPLE, 443, depth=1, tls=TIMEOUT)),
        "http-failure", False, ("blocked", "tls", "timeout"), "consistent", TIMEOUT),
    Row("38 more than ten redirects, HTTP", lambda: too_many("http"), False, False,
        ("down", "http", None), "consistent", failures.TOO_MANY_REDIRECTS),
    Row("39 more than ten redirects, HTTPS", lambda: too_many("https"), False, False,
        ("down", "http", None), "consistent", failures.TOO_MANY_REDIRECTS),
    Row("40 success, HTTP", lambda: plain(), False, True, ("ok", None, None), "consistent",
        diff={"status_code_match": True, "body_length_match": True, "body_proportion": 1.0,
              "headers_match": True, "title_match": True}),
    Row("41 success, HTTPS", lambda: plain(scheme="https"), False, True, ("ok", None, None),
        "consistent"),
    Row("42 TCP connect timeout", lambda: plain(scheme="https", tcp=TIMEOUT), "tcp_ip", False,
        ("blocked", "tcp", "timeout"), "consistent", TIMEOUT),
    Row("43 refused on spoofed DNS", lambda: plain("www.example.org", answers=(BLOCKPAGE_IP,),
                                                   tcp=REFUSED),
        "dns", False, ("blocked", "dns", "spoofed"), "inconsistent", REFUSED),
    Row("46 TLS reset, consistent DNS", lambda: plain(scheme="https", tls=RESET),
        "http-failure", False, ("blocked", "tls", "reset"), "consistent", RESET),
    Row("47 TLS reset, inconsistent DNS",
        lambda: plain(scheme="https", tls=RESET, answers=(PROXY,)),
        "dns", False, ("blocked", "dns", "spoofed"), "inconsistent", RESET),
    Row("48 website down: NXDOMAIN", lambda: _down_nxdomain(), False, False,
        ("down", "dns", "nxdomain"), "consistent", NXDOMAIN, NXDOMAIN),
    Row("49 website down: refused", lambda: plain(port=444, tcp=REFUSED, control_tcp=REFUSED,
                                                  control_http=control_failed_page(REFUSED)),
        False, False, ("down", "tcp", "refused"), "consistent", REFUSED),
    Row("50 website down: no addresses", lambda: _down_no_addrs(), False, False,
        ("down", "dns", "no_answer"), "consistent", None, failures.DNS_NO_ANSWER),
    # Kuzot's own cases.
    Row("K1 TLS interception: issuer differs from the control's",
        lambda: mitm("Security Certificate", failures.SSL_UNKNOWN_AUTHORITY), "http-failure",
        False, ("blocked", "tls", "mitm"), "consistent", failures.SSL_UNKNOWN_AUTHORITY,
        evidence=("issuer:Security Certificate", "control_issuer:DigiCert Global G2")),
    Row("K2 TLS interception by a known state CA",
        lambda: mitm("Information Security Certification Authority",
                     failures.SSL_UNKNOWN_AUTHORITY), "http-failure", False,
        ("blocked", "tls", "mitm"), "consistent", failures.SSL_UNKNOWN_AUTHORITY,
        evidence=("confirmed:kz_information_security_ca",), cc="KZ"),
    Row("K3 interception CA trusted by the user's system",
        lambda: mitm("Qaznet Trust Network", None), False, True, ("blocked", "tls", "mitm"),
        "consistent", evidence=("confirmed:kz_qaznet_trust_network",), cc="KZ"),
    Row("K4 two different answers to one query", injected, False, True,
        ("blocked", "dns", "injected"), "consistent",
        evidence=("first:10.10.34.35", f"late:{EXAMPLE}")),
    Row("K5 control failure and a TCP failure",
        lambda: _with_control_failure(plain(scheme="https", tcp=RESET)), None, None,
        ("inconclusive", None, None), None, RESET),
    Row("K6 control failure and a blockpage",
        lambda: _with_control_failure(plain(http=response(body="KUZOT-LAB-BLOCKPAGE"))), None,
        None, ("inconclusive", None, None), None),
    Row("K7 IPv6 unreachable without IPv6, IPv4 fine", lambda: ipv6_unreachable(None), False,
        True, ("ok", None, None), "consistent"),
    Row("K8 IPv4 timeout, IPv6 unreachable without IPv6", lambda: ipv6_unreachable(TIMEOUT),
        "tcp_ip", False, ("blocked", "tcp", "timeout"), "consistent", failures.TIMEOUT),
    # OONI's classic walk would say tcp_ip/false here; the failure is the probe's own lack of
    # IPv6, which OONI's minipipeline and Kuzot's R4 set apart (departure 3: null/null).
    Row("K11 IPv6-only site, host without IPv6", ipv6_only_without_ipv6, None, None,
        ("inconclusive", "tcp", None), "consistent",
        evidence=("only_ipv6_without_ipv6",)),
    # The page came over IPv4, so the site is reachable; the IPv6 block is named all the same.
    Row("K12 IPv6 address blocked, IPv4 fine", lambda: ipv6_blocked(TIMEOUT, True), False,
        True, ("ok", None, None), "consistent",
        evidence=(f"endpoint_failed:[{EXAMPLE_V6}]:443:{TIMEOUT}",)),
    # The ISP resolver lies, an extra resolver tells the truth and the page loads through it:
    # the user's own path is blocked (R4), and the evidence says another resolver got there.
    Row("K14 ISP NXDOMAIN, extra resolver reached the site, HTTPS",
        lambda: isp_lies("https", NXDOMAIN), "dns", False, ("blocked", "dns", "nxdomain"),
        "inconsistent", NXDOMAIN, NXDOMAIN,
        evidence=("alternative_resolver_reached:udp:200:192.0.2.53:53",)),
    Row("K15 ISP NXDOMAIN, extra resolver reached the site, HTTP",
        lambda: isp_lies("http", NXDOMAIN), "dns", False, ("blocked", "dns", "nxdomain"),
        "inconsistent", NXDOMAIN, NXDOMAIN,
        evidence=("alternative_resolver_reached:udp:200:192.0.2.53:53",)),
    Row("K16 ISP SERVFAIL, extra resolver reached the site",
        lambda: isp_lies("https", failures.DNS_SERVFAIL), "dns", False,
        ("blocked", "dns", "servfail"), "inconsistent", failures.DNS_SERVFAIL,
        failures.DNS_SERVFAIL, evidence=("alternative_resolver_reached:udp:200:192.0.2.53:53",)),
    Row("K17 ISP answers no address, extra resolver reached the site",
        lambda: isp_lies("https", failures.DNS_NO_ANSWER), "dns", False,
        ("blocked", "dns", "no_answer"), "inconsistent", failures.DNS_NO_ANSWER,
        failures.DNS_NO_ANSWER,
        evidence=("alternative_resolver_reached:udp:200:192.0.2.53:53",)),
    Row("K18 ISP resolver times out, extra resolver reached the site",
        lambda: isp_lies("http", TIMEOUT), "dns", False, ("blocked", "dns", "timeout"),
        "inconsistent", TIMEOUT, TIMEOUT,
        evidence=("alternative_resolver_reached:udp:200:192.0.2.53:53",)),
    Row("K19 ISP bogon, extra resolver reached the site",
        lambda: isp_lies("https", answers=("10.10.34.35",), dial=TIMEOUT), "dns", False,
        ("blocked", "dns", "bogon"), "inconsistent", TIMEOUT,
        evidence=("alternative_resolver_reached:udp:200:192.0.2.53:53",
                  "probe_answers:10.10.34.35")),
    Row("K20 ISP localhost, extra resolver reached the site",
        lambda: isp_lies("http", answers=("127.0.0.1",)), "dns", False,
        ("blocked", "dns", "bogon"), "inconsistent",
        evidence=("alternative_resolver_reached:udp:200:192.0.2.53:53",)),
    Row("K21 redirect to a host the ISP NXDOMAINs, extra resolver reached it",
        redirect_then_isp_lies, "dns", False, ("blocked", "dns", "nxdomain"), "consistent",
        NXDOMAIN, evidence=("depth:1", "alternative_resolver_reached:udp:200:192.0.2.53:53")),
    Row("K22 address-literal URL", literal, False, True, ("ok", None, None), None,
        diff={"status_code_match": True, "body_length_match": True, "headers_match": True,
              "title_match": True}),
    Row("K9 known blockpage",
        lambda: plain(http=response(200, 300, "Blocked", {},
                                    body="<p>KUZOT-LAB-BLOCKPAGE</p>", sha="lab")),
        "http-diff", False, ("blocked", "http", "blockpage"), "consistent",
        evidence=("blockpage:kuzot_lab_blockpage", "confirmed:kuzot_lab_blockpage"), cc="KG"),
    # Blockpages on the redirect chain (R11) and blockpages no fingerprint knows (R10).
    Row("K23 Kyrgyz ISP redirects to its blockpage (Location, OONI's ooni.kg_0)",
        lambda: isp_redirect(HOMELINE_LOCATION, homeline_page, "homeline.kg"),
        "http-diff", False, ("blocked", "http", "blockpage"), "consistent",
        evidence=("blockpage:ooni.kg_0", "confirmed:ooni.kg_0",
                  "fingerprint_in:header.location"), cc="KG"),
    Row("K24 Kyrgyz ISP redirect whose blockpage host cannot be reached, seen from KZ",
        lambda: isp_redirect(HOMELINE_LOCATION,
                             lambda m: m.flow(HOMELINE, 80, depth=1, tcp=TIMEOUT), "homeline.kg"),
        "http-failure", False, ("blocked", "http", "blockpage"), "consistent", TIMEOUT,
        evidence=("blockpage:ooni.kg_0",), absent=("confirmed:",), cc="KZ"),
    Row("K25 plain-HTTP redirect to a known blockpage host that serves HTTPS",
        lambda: isp_redirect(
            "https://block.mgts.ru/?url=azattyk.org",
            lambda m: m.flow(HOMELINE, 443, depth=1, tls=None,
                             http=response(200, 900, "МГТС", {}, sha="mgts")), "block.mgts.ru"),
        # OONI's classic keys judge the final HTTPS page only; OONI's fastpath, which matches
        # fingerprints on every response, confirms the block as Kuzot does.
        False, True, ("blocked", "http", "blockpage"), "consistent",
        evidence=("blockpage:ooni.ru_18",), cc="RU"),
    Row("K26 unknown Russian blockpage",
        lambda: plain(http=response(200, len(UNKNOWN_RU.encode()), "Уведомление", {},
                                    body=UNKNOWN_RU, sha="ru-notice")),
        "http-diff", False, ("blocked", "http", "blockpage"), "consistent",
        evidence=("blockpage_phrase:доступ ограничен", "phrase_in:text"),
        absent=("confirmed:", "blockpage:")),
    Row("K27 unknown Russian blockpage on inconsistent DNS",
        lambda: plain(answers=(PROXY,), http=response(200, len(UNKNOWN_RU.encode()),
                                                      "Уведомление", {}, body=UNKNOWN_RU,
                                                      sha="ru-notice")),
        "dns", False, ("blocked", "dns", "blockpage"), "inconsistent",
        evidence=("blockpage_phrase:доступ ограничен", "dns_inconsistent")),
    Row("K28 a long page of the site that quotes blocking wording, differing from the control's",
        lambda: plain(http=response(200, 40_000, "Новости", {},
                                    body=news_page("Доступ ограничен"), sha="article")),
        "http-diff", False, ("blocked", "http", "diff"), "consistent",
        absent=("blockpage",)),
    Row("K29 the site's own page quoting a blockpage's address (ooni.ru_5), as the control's",
        lambda: plain(http=response(body=news_page("http://eais.rkn.gov.ru/"), sha="live")),
        False, True, ("ok", None, None), "consistent", absent=("blockpage",), cc="RU"),
    Row("K30 Rostelecom's blockpage address from the ISP resolver (OONI's ooni.ru_dns_1)",
        lambda: plain(answers=(ROSTELECOM_BLOCKPAGE,), tcp=REFUSED),
        "dns", False, ("blocked", "dns", "spoofed"), "inconsistent", REFUSED,
        evidence=("confirmed:ooni.ru_dns_1",), cc="RU"),
    Row("K31 the same address seen from Kyrgyzstan: not Rostelecom's blockpage there",
        lambda: plain(answers=(ROSTELECOM_BLOCKPAGE,), tcp=REFUSED),
        "dns", False, ("blocked", "dns", "spoofed"), "inconsistent", REFUSED,
        absent=("confirmed:", "blockpage:"), cc="KG"),
    # An unknown notice page from a server that frames its answer as the site does. OONI's
    # header list leaves Content-Length and Connection in, so its keys see shared headers and
    # no diff; Kuzot's verdict ignores framing headers and sees the page for what it is.
    Row("K10 unknown page with the site's framing headers",
        lambda: plain(
            http=response(200, 126, "Maintenance notice", FRAMED_NOTICE_HEADERS,
                          body="<p>Service temporarily unavailable in your region.</p>",
                          sha="notice"),
            control_http=control_page(headers={**PAGE_HEADERS, **FRAMED_NOTICE_HEADERS})),
        False, True, ("blocked", "http", "diff"), "consistent",
        diff={"status_code_match": True, "body_length_match": False, "headers_match": True,
              "title_match": False},
        evidence=("uncommon_headers_shared:False",)),
]


# A known blockpage from a server that frames its answer as the site does: OONI's keys see
# shared headers and no diff (departure ``blockpage_fingerprint``).
BLOCKPAGE_FRAMED = Row(
    "K13 known blockpage with the site's framing headers",
    lambda: plain(
        http=response(200, 126, "Blocked", FRAMED_NOTICE_HEADERS,
                      body="<p>KUZOT-LAB-BLOCKPAGE</p>", sha="lab"),
        control_http=control_page(headers={**PAGE_HEADERS, **FRAMED_NOTICE_HEADERS})),
    False, True, ("blocked", "http", "blockpage"), "consistent",
    diff={"headers_match": True}, evidence=("confirmed:kuzot_lab_blockpage",), cc="KG")
ROWS.append(BLOCKPAGE_FRAMED)


def _down_nxdomain() -> tuple[str, dict[str, Any]]:
    url = "http://www.example.xyz/"
    m = Measurement(url).lookup("www.example.xyz", failure=NXDOMAIN)
    m.control = control([], dns_failure=NXDOMAIN, http=control_failed_page(NXDOMAIN))
    return url, m.keys()


def _down_no_addrs() -> tuple[str, dict[str, Any]]:
    url = "http://www.example.com/"
    m = Measurement(url).lookup("www.example.com", failure=failures.DNS_NO_ANSWER)
    m.control = control([], http=control_failed_page(failures.DNS_NO_ANSWER))
    return url, m.keys()


def _with_control_failure(built: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    url, keys = built
    return url, {**keys, "control": {}, "control_failure": failures.TIMEOUT}


def test_an_ipv6_connect_without_a_route_is_not_named_as_a_failed_endpoint() -> None:
    url, keys = ipv6_blocked(failures.NETWORK_UNREACHABLE, False)
    result = analysis.analyze(keys, url)
    assert (result["blocking"], result["accessible"]) == (False, True)
    assert result["analysis"]["verdict"] == "ok"
    assert not [e for e in result["analysis"]["evidence"] if e.startswith("endpoint_failed:")]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_analysis_table(row: Row) -> None:
    url, keys = row.build()
    result = analysis.analyze(keys, url, row.cc)
    got = result["analysis"]
    assert (result["blocking"], result["accessible"]) == (row.blocking, row.accessible), result
    assert result["dns_consistency"] == row.dns_consistency, result
    assert result["http_experiment_failure"] == row.http_failure, result
    assert result["dns_experiment_failure"] == row.dns_failure, result
    assert (got["verdict"], got["layer"], got["mechanism"]) == row.verdict, got
    for key, value in row.diff.items():
        assert result[key] == value, (key, result)
    for fact in row.evidence:
        assert fact in got["evidence"], got
    for prefix in row.absent:
        assert not [e for e in got["evidence"] if e.startswith(prefix)], got
    assert 0.0 <= got["confidence"] <= 1.0
    if got["verdict"] == "inconclusive":
        assert got["confidence"] == 0.0


def test_analysis_is_pure() -> None:
    """Same keys in, same result out, and the keys are not modified."""
    import copy

    url, keys = case4()
    before = copy.deepcopy(keys)
    assert analysis.analyze(keys, url) == analysis.analyze(keys, url)
    assert keys == before


def test_a_failed_control_never_says_accessible_for_plain_http() -> None:
    for row in ROWS:
        url, keys = row.build()
        if url.startswith("https"):
            continue
        broken = {**keys, "control": {}, "control_failure": failures.CONNECTION_RESET}
        result = analysis.analyze(broken, url)
        assert result["analysis"]["verdict"] == "inconclusive" or \
            result["analysis"]["mechanism"] == "injected", row.name
        assert result["accessible"] is not True, row.name


def test_every_row_is_in_oonis_class_or_a_documented_departure() -> None:
    """The verdict never says ``ok`` where OONI's keys of the same measurement say blocking,
    nor ``blocked`` where they say ``false``, except for ``analysis.DEPARTURES``."""
    departures = set()
    for row in ROWS:
        url, keys = row.build()
        result = analysis.analyze(keys, url, row.cc)
        got = result["analysis"]
        if analysis.disagrees(result["blocking"], got["verdict"]):
            found = analysis.departure(result["blocking"], result["accessible"], got)
            assert found is not None, (row.name, result["blocking"], got)
            departures.add(found.name)
    assert departures == {d.name for d in analysis.DEPARTURES}


def _row(prefix: str) -> Row:
    return next(r for r in [*ROWS] if r.name.startswith(prefix))


@pytest.mark.parametrize("name, row", [
    ("dns_injection", "K4 "),
    ("trusted_interception_ca", "K3 "),
    ("framing_headers", "K10 "),
    ("blockpage_fingerprint", "K13 "),
])
def test_each_departure_explains_its_own_case(name: str, row: str) -> None:
    case = _row(row)
    url, keys = case.build()
    result = analysis.analyze(keys, url, case.cc)
    assert (result["blocking"], result["accessible"]) == (False, True)
    assert result["analysis"]["verdict"] == "blocked"
    found = analysis.departure(result["blocking"], result["accessible"], result["analysis"])
    assert found is not None and found.name == name and found.reason


def test_no_departure_excuses_an_ok_where_ooni_sees_blocking() -> None:
    """Departures only cover ``blocked`` against OONI's ``accessible``; an ``ok`` verdict
    against a blocking string is never documented away."""
    ok = {"verdict": "ok", "layer": None, "mechanism": None}
    for blocking in ("dns", "tcp_ip", "http-failure", "http-diff"):
        assert analysis.disagrees(blocking, "ok")
        assert analysis.departure(blocking, False, ok) is None
    assert not analysis.disagrees(False, "down")
    assert not analysis.disagrees("dns", "inconclusive")


def test_every_verdict_carries_the_analysis_version() -> None:
    for row in ROWS:
        url, keys = row.build()
        assert analysis.analyze(keys, url, row.cc)["analysis"]["analysis_version"] == \
            analysis.ANALYSIS_VERSION


def test_an_unknown_blockpage_is_less_certain_than_a_fingerprint_and_more_than_a_diff() -> None:
    confidence = {}
    for row in ROWS:
        if row.name.split()[0] in ("K9", "K23", "K26", "K28", "19"):
            url, keys = row.build()
            confidence[row.name.split()[0]] = analysis.analyze(keys, url, row.cc)[
                "analysis"]["confidence"]
    assert confidence["K9"] == confidence["K23"] == 0.95
    assert confidence["K28"] == confidence["19"] == 0.5
    assert confidence["K9"] > confidence["K26"] > confidence["K28"]
