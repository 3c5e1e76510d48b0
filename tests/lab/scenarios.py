"""The lab's scenarios: one record per technique, with the exact verdict the probe must give.

Sources for the techniques and the expected OONI keys: OONI's QA table (Web Connectivity
``webconnectivityqa``, 50 cases), Kazakhstan's and Kyrgyzstan's documented methods (ClientHello
drop on SNI, DNS lies, HTTP resets, a state CA intercepting TLS, throttling of named sites) and
Russia's 2021 SNI policer. Kuzot's verdict rules are in
``probe/nettests/web_connectivity/analysis.py``; where Kuzot and OONI differ on purpose (a failed
control is *inconclusive*, not *accessible*) the record follows Kuzot and says so.

Every scenario has its own host names and addresses, so the censor rules of different
scenarios never touch each other's traffic and scenarios can run side by side in one lab; the
few whose rules touch every connection (shutdown, blocked control) are ``exclusive``.

Most scenarios are one-URL checks on home broadband. The shutdown scenarios also run a round
of the probe daemon (``Round``), whose connectivity ladder must say the network is down and
which must then measure nothing; the mobile ones run on the mobile link, or on broadband while
only the mobile link is cut.
"""

from __future__ import annotations

import itertools

from tests.lab import pages, plan
from tests.lab.model import (
    INCONCLUSIVE,
    OK,
    Action,
    CertKind,
    Expect,
    Link,
    Paths,
    Round,
    Scenario,
    Site,
    ZoneKind,
    block_control,
    dnat,
    drop_string,
    drop_to,
    expect,
    fin_after_string,
    inject_blockpage,
    inject_dns,
    inject_unknown_blockpage,
    isp_lies,
    mobile_shutdown,
    rst_on_string,
    rst_on_syn,
    shape,
    shutdown,
    sni_policer,
    withdraw_mobile_routes,
)
from tests.lab.plan import LAB_CA, ROGUE_CA

_addresses = itertools.count()


def _site(name: str, http: str = "page", https: str = "page", cert: CertKind = "valid",
          dns: ZoneKind = "a", ipv6: bool = False) -> Site:
    """A site on the next free world address (and its IPv6 twin when ``ipv6``)."""
    index = next(_addresses)
    return Site(name, plan.site_address(index), http, https, cert, dns,
                plan.site_address6(index) if ipv6 else None)


def _blocked(layer: str, mechanism: str | None, *,
             ooni: tuple[str | bool | None, bool | None] | None = None) -> Expect:
    """A blocked verdict; OONI's keys follow the layer unless OONI's own rules differ
    (``ooni``), as OONI computes them independently from the system resolver's view."""
    blocking: str | bool | None = {"dns": "dns", "tcp": "tcp_ip", "tls": "http-failure",
                                   "http": "http-failure"}[layer]
    if layer == "http" and mechanism in ("blockpage", "diff"):
        blocking = "http-diff"
    accessible: bool | None = False
    if ooni is not None:
        blocking, accessible = ooni
    return expect("blocked", layer, mechanism, blocking=blocking, accessible=accessible)


def _down(layer: str, mechanism: str | None) -> Expect:
    return expect("down", layer, mechanism, blocking=False, accessible=False)


# OONI's header comparison counts Content-Length and Connection, which the site's answer and
# a blockpage server's both carry: OONI's classic keys then see no HTTP diff, and only a
# fingerprint (OONI's pipeline) or Kuzot's verdict catches the page.
SAME_FRAMING: tuple[str | bool | None, bool | None] = (False, True)


def _throttled(layer: str, mechanism: str | None) -> Expect:
    return expect("throttled", layer, mechanism, blocking="http-failure", accessible=False)


# What a daemon round reports: online with the one site measured and uploaded, or offline with
# nothing measured and only the ladder's own measurement kept for a later upload.
def _online(url: str) -> Round:
    return Round("online", ((url, "ok"),), 0)


RESOLVER_FAILS = "no connectivity: gateway reachable, resolver fails, foreign hosts unreachable"
RESOLVER_ANSWERS = ("no connectivity: gateway reachable, resolver answers, foreign hosts "
                    "unreachable")
OFFLINE_RESOLVER_FAILS = Round(RESOLVER_FAILS, (), 1)
OFFLINE_RESOLVER_ANSWERS = Round(RESOLVER_ANSWERS, (), 1)


def _build() -> list[Scenario]:
    s: list[Scenario] = []

    def add(name: str, about: str, url: str, sites: tuple[Site, ...],
            censor: tuple[Action, ...], want: Expect | Round, *, public_resolver: bool = False,
            exclusive: bool = False, evidence: tuple[str, ...] = (),
            not_evidence: tuple[str, ...] = (), link: Link = "broadband",
            collector_first: str | None = None, paths: Paths | None = None) -> None:
        s.append(Scenario(name, about, url, sites, censor, want, public_resolver=public_resolver,
                          exclusive=exclusive, evidence=evidence, not_evidence=not_evidence,
                          link=link, collector_first=collector_first, paths=paths))

    # --- No censorship: the baseline every other scenario is measured against.
    a = _site("www.ok-http.kg")
    add("success_http", "no censor, plain HTTP", f"http://{a.name}/", (a,), (), OK)
    a = _site("www.ok-https.kg")
    add("success_https", "no censor, HTTPS with the lab CA", f"https://{a.name}/", (a,), (), OK)
    a = _site("www.http-upgrade.kg", http="redirect:https://www.http-upgrade.kg/")
    add("success_http_to_https", "no censor; the site redirects to HTTPS", f"http://{a.name}/",
        (a,), (), OK)

    # --- DNS: the ISP resolver lies, or an on-path injector races the real answer.
    a = _site("www.dns-nxdomain.kg")
    add("dns_nxdomain", "ISP resolver answers NXDOMAIN", f"https://{a.name}/", (a,),
        isp_lies(a.name, "nxdomain"), _blocked("dns", "nxdomain"))
    a = _site("www.dns-nxdomain-http.kz")
    add("dns_nxdomain_http", "ISP resolver answers NXDOMAIN (HTTP URL)", f"http://{a.name}/",
        (a,), isp_lies(a.name, "nxdomain"), _blocked("dns", "nxdomain"))
    a = _site("www.dns-bogon.kg")
    add("dns_bogon", f"ISP resolver answers a private address ({plan.FORGED_BOGON})",
        f"https://{a.name}/", (a,), isp_lies(a.name, f"a:{plan.FORGED_BOGON}"),
        _blocked("dns", "bogon"), evidence=(plan.FORGED_BOGON,))
    a = _site("www.dns-localhost.kz")
    add("dns_localhost", "ISP resolver answers 127.0.0.1", f"https://{a.name}/", (a,),
        isp_lies(a.name, "a:127.0.0.1"), _blocked("dns", "bogon"))
    a = _site("www.dns-localhost-http.kg")
    add("dns_localhost_http", "ISP resolver answers 127.0.0.1 (HTTP URL)", f"http://{a.name}/",
        (a,), isp_lies(a.name, "a:127.0.0.1"), _blocked("dns", "bogon"))
    a = _site("www.dns-blockpage.kz")
    add("dns_blockpage_http", "ISP resolver points the name at the ISP's blockpage server",
        f"http://{a.name}/", (a,), isp_lies(a.name, f"a:{plan.BLOCKPAGE}"),
        _blocked("dns", "blockpage", ooni=SAME_FRAMING), evidence=("blockpage:",))
    a = _site("www.dns-blockpage-tls.kz")
    add("dns_blockpage_https", "ISP resolver points at the blockpage server, which refuses :443",
        f"https://{a.name}/", (a,), isp_lies(a.name, f"a:{plan.BLOCKPAGE}"),
        _blocked("dns", "spoofed"))
    a = _site("www.dns-proxy.kg")
    add("dns_proxy_http", "ISP resolver points at a transparent proxy that serves the real "
        "page (OONI: accessible, DNS inconsistent)", f"http://{a.name}/", (a,),
        isp_lies(a.name, f"a:{plan.PROXY}"), OK)
    a = _site("www.dns-proxy-tls.kg")
    add("dns_proxy_https", "ISP resolver points at a transparent TLS proxy (valid certificate "
        "from the real site)", f"https://{a.name}/", (a,), isp_lies(a.name, f"a:{plan.PROXY}"),
        OK)
    a = _site("www.dns-injected.kz")
    add("dns_injected", "on-path injector races a forged answer against the public resolver's "
        "real one (scapy in the censor)", f"https://{a.name}/", (a,),
        inject_dns(a.name, plan.FORGED_BOGON),
        # OONI's classic keys read the system resolver only, which the injector left alone.
        _blocked("dns", "injected", ooni=(False, True)),
        public_resolver=True, evidence=("dns_duplicate_answers", plan.FORGED_BOGON))
    a = _site("www.dns-servfail.kg")
    add("dns_servfail", "ISP resolver answers SERVFAIL", f"https://{a.name}/", (a,),
        isp_lies(a.name, "servfail"), _blocked("dns", "servfail"))
    a = _site("www.dns-silent.kz")
    add("dns_silent", "ISP resolver never answers for the name", f"https://{a.name}/", (a,),
        isp_lies(a.name, "silent"), _blocked("dns", "timeout"))
    a = _site("www.dns-empty.kg")
    add("dns_no_answer", "ISP resolver answers NOERROR with no address", f"https://{a.name}/",
        (a,), isp_lies(a.name, "empty"), _blocked("dns", "no_answer"))

    # --- The ISP resolver lies while the probe's extra resolver (``--resolver``, the public
    # resolver abroad) tells the truth and the page loads through its address. Most users use
    # the ISP's resolver: the verdict follows their path (analysis R4) and the evidence says
    # another resolver reached the site (R11). OONI's keys read the system resolver: "dns".
    for slug, lie, mechanism, about in (
            ("nxdomain", "nxdomain", "nxdomain", "NXDOMAIN"),
            ("bogon", f"a:{plan.FORGED_BOGON}", "bogon",
             f"a private address ({plan.FORGED_BOGON})"),
            ("localhost", "a:127.0.0.1", "bogon", "127.0.0.1"),
            ("servfail", "servfail", "servfail", "SERVFAIL"),
            ("no_answer", "empty", "no_answer", "NOERROR with no address"),
            ("timeout", "silent", "timeout", "nothing (the lookup times out)")):
        for scheme in ("http", "https"):
            a = _site(f"www.alt-{slug.replace('_', '-')}-{scheme}.kg")
            add(f"dns_{slug}_extra_resolver_{scheme}",
                f"ISP resolver answers {about}; the extra resolver answers the truth and the "
                f"page loads through it ({scheme.upper()} URL)", f"{scheme}://{a.name}/", (a,),
                isp_lies(a.name, lie), _blocked("dns", mechanism), public_resolver=True,
                evidence=(f"alternative_resolver_reached:udp:200:{plan.PUBLIC_RESOLVER}:53",))
    b = _site("www.hop-nxdomain-alt.kz")
    a = _site("www.short-dns-alt.kz", https=f"redirect:https://{b.name}/")
    add("redirect_then_nxdomain_extra_resolver", "first hop fine, the ISP resolver NXDOMAINs "
        "the redirect target, the extra resolver answers and the target loads through it",
        f"https://{a.name}/", (a, b), isp_lies(b.name, "nxdomain"), _blocked("dns", "nxdomain"),
        public_resolver=True,
        evidence=("depth:1", f"alternative_resolver_reached:udp:200:{plan.PUBLIC_RESOLVER}:53"))
    a = _site("www.dns-blockpage-alt.kg")
    add("dns_blockpage_extra_resolver", "ISP resolver points the name at the blockpage server; "
        "the extra resolver's true address is dialled too, but the user's browser gets the "
        "blockpage", f"http://{a.name}/", (a,), isp_lies(a.name, f"a:{plan.BLOCKPAGE}"),
        _blocked("dns", "blockpage", ooni=SAME_FRAMING), public_resolver=True,
        evidence=("blockpage:",))
    a = _site("www.by-address.kz")
    add("address_literal_http", "the URL names the site by its address: no lookup, the page "
        "decides (OONI: accessible, DNS consistency null)", f"http://{a.ip}/", (a,), (), OK)

    # --- TCP/IP: the site's address is blocked.
    a = _site("www.tcp-rst.kz")
    add("tcp_rst_syn", "RST in reply to the SYN to the site's :443", f"https://{a.name}/", (a,),
        rst_on_syn(a.ip, 443), _blocked("tcp", "refused"))
    a = _site("www.tcp-rst-http.kg")
    add("tcp_rst_syn_http", "RST in reply to the SYN to the site's :80", f"http://{a.name}/",
        (a,), rst_on_syn(a.ip, 80), _blocked("tcp", "refused"))
    a = _site("www.tcp-drop.kg")
    add("tcp_syn_drop", "every packet to the site's :443 dropped", f"https://{a.name}/", (a,),
        drop_to(a.ip, 443), _blocked("tcp", "timeout"))
    a = _site("www.tcp-drop-http.kz")
    add("tcp_syn_drop_http", "every packet to the site's :80 dropped", f"http://{a.name}/",
        (a,), drop_to(a.ip, 80), _blocked("tcp", "timeout"))

    # --- TLS: the ClientHello's SNI gives the site away.
    a = _site("www.tls-reset.kz")
    add("tls_sni_reset", "RST after a ClientHello with the site's SNI", f"https://{a.name}/",
        (a,), rst_on_string(a.name, 443), _blocked("tls", "reset"),
        evidence=(f"sni:{a.name}",))
    a = _site("www.tls-reset-target.kg")
    b = Site("www.tls-reset-neighbour.kg", a.ip)
    add("tls_sni_reset_cohosted", "a co-hosted site on the same address as an SNI-reset one is "
        "untouched (the rule is on the SNI, not the address)", f"https://{b.name}/", (a, b),
        rst_on_string(a.name, 443), OK)
    a = _site("www.tls-drop.kz")
    add("tls_sni_drop", "ClientHello with the site's SNI dropped (Kazakhstan's usual method)",
        f"https://{a.name}/", (a,), drop_string(a.name, 443), _blocked("tls", "timeout"))
    a = _site("www.tls-fin.kg")
    add("tls_sni_fin", "ClientHello dropped and a FIN|ACK forged to the client",
        f"https://{a.name}/", (a,), fin_after_string(a.name, 443), _blocked("tls", "eof"))
    a = _site("www.tls-mitm.kz")
    add("tls_mitm", "connections to the site's :443 DNATed to an interception box whose "
        "certificate comes from another CA", f"https://{a.name}/", (a,),
        dnat(a.ip, 443, plan.MITM), _blocked("tls", "mitm"),
        evidence=(f"issuer:{ROGUE_CA}", f"control_issuer:{LAB_CA}"))
    a = _site("www.tls-mitm-dns.kz")
    add("tls_mitm_dns", "ISP resolver points at the interception box (OONI QA #4)",
        f"https://{a.name}/", (a,), isp_lies(a.name, f"a:{plan.MITM}"),
        _blocked("dns", "spoofed"))

    # --- HTTP: the Host header gives the site away.
    a = _site("www.http-reset.kg")
    add("http_host_reset", "RST when the request's Host header names the site",
        f"http://{a.name}/", (a,), rst_on_string(f"Host: {a.name}", 80),
        _blocked("http", "reset"))
    a = _site("www.http-drop.kz")
    add("http_host_drop", "the request naming the site is dropped", f"http://{a.name}/", (a,),
        drop_string(f"Host: {a.name}", 80), _blocked("http", "timeout"))
    a = _site("www.http-fin.kg")
    add("http_host_fin", "the request is dropped and a FIN|ACK forged to the client",
        f"http://{a.name}/", (a,), fin_after_string(f"Host: {a.name}", 80),
        _blocked("http", "eof"))
    a = _site("www.http-dnat.kz")
    add("http_blockpage_dnat", "connections to the site's :80 DNATed to the ISP's blockpage",
        f"http://{a.name}/", (a,), dnat(a.ip, 80, plan.BLOCKPAGE),
        _blocked("http", "blockpage", ooni=SAME_FRAMING), evidence=("blockpage:",))
    a = _site("www.http-injected.kg")
    add("http_blockpage_injected", "request dropped, a blockpage forged as the answer (scapy; "
        "no Content-Length, so OONI's keys see the diff too)",
        f"http://{a.name}/", (a,), inject_blockpage(a.name), _blocked("http", "blockpage"),
        evidence=("blockpage:",))
    a = _site("www.http-notice.kz")
    add("http_unknown_page", "DNAT to a page no fingerprint knows: an HTTP diff",
        f"http://{a.name}/", (a,), dnat(a.ip, 80, plan.NOTICE),
        _blocked("http", "diff", ooni=SAME_FRAMING))

    # --- Blockpages that no fingerprint file knows, named by their wording (analysis R10),
    # and a blockpage behind the ISP's redirect, named by the redirect (R11).
    a = _site("www.http-unknown-blockpage.kz")
    add("http_unknown_blockpage_dnat", "connections to the site's :80 DNATed to a Russian "
        "blockpage in no fingerprint file: named by its wording, not confirmed",
        f"http://{a.name}/", (a,), dnat(a.ip, 80, plan.UNKNOWN_BLOCKPAGE),
        _blocked("http", "blockpage", ooni=SAME_FRAMING),
        evidence=("blockpage_phrase:доступ ограничен", "phrase_in:text"),
        not_evidence=("confirmed:",))
    a = _site("www.http-unknown-blockpage-injected.kg")
    add("http_unknown_blockpage_injected", "request dropped, a Russian blockpage in no "
        "fingerprint file forged as the answer (scapy)", f"http://{a.name}/", (a,),
        inject_unknown_blockpage(a.name), _blocked("http", "blockpage"),
        evidence=("blockpage_phrase:доступ ограничен",), not_evidence=("confirmed:",))
    a = _site("www.http-redirected.kg")
    b = _site(pages.REDIRECT_HOST)
    add("http_blockpage_redirect", "connections to the site's :80 DNATed to the ISP's "
        "redirector, whose Location is Homeline's blockpage address (OONI's fingerprint "
        "ooni.kg_0); the ISP resolver sends that host to the blockpage server",
        f"http://{a.name}/", (a, b),
        (*dnat(a.ip, 80, plan.REDIRECTOR), *isp_lies(b.name, f"a:{plan.BLOCKPAGE}")),
        _blocked("http", "blockpage", ooni=SAME_FRAMING),
        evidence=("blockpage:ooni.kg_0", "fingerprint_in:header.location",
                  "confirmed:ooni.kg_0"))
    a = _site("www.http-redirected-page.kz")
    b = _site(pages.REDIRECT_UNKNOWN_HOST)
    add("http_blockpage_behind_redirect", "connections to the site's :80 DNATed to a redirector "
        "whose Location no fingerprint knows; the blockpage host it names (which the ISP "
        "resolver sends to the blockpage server) serves the ISP's fingerprinted page",
        f"http://{a.name}/", (a, b),
        (*dnat(a.ip, 80, plan.REDIRECTOR_UNKNOWN), *isp_lies(b.name, f"a:{plan.BLOCKPAGE}")),
        _blocked("http", "blockpage", ooni=SAME_FRAMING),
        evidence=("blockpage:kuzot_lab_blockpage", "fingerprint_in:body", "depth:1",
                  "confirmed:kuzot_lab_blockpage"))

    # --- Throttling. The probe's web test sees a transfer that times out while bytes still
    # arrive; naming the mechanism (ip_throttle, sni_throttle) needs the throttling test.
    a = _site("www.slow-ip.kg", http="big", https="big")
    add("throttle_ip_http", "128 kbit/s on the site's address (tc htb + u32)",
        f"http://{a.name}/", (a,), shape(a.ip, "128kbit"), _throttled("http", None))
    a = _site("www.slow-ip-tls.kg", http="big", https="big")
    b = _site("www.fast-neighbour.kg", http="big", https="big")
    add("throttle_ip_https", "128 kbit/s on the site's address, HTTPS", f"https://{a.name}/",
        (a, b), shape(a.ip, "128kbit"), _throttled("http", None))
    add("throttle_cohosted_baseline", "the neighbour of a throttled address stays fast",
        f"https://{b.name}/", (a, b), shape(a.ip, "128kbit"), OK)
    a = _site("www.slow-sni.kz", http="big", https="big")
    add("throttle_sni_policer", "connections whose SNI names the site are marked (CONNMARK) "
        "and policed above 16 kB/s (hashlimit drop)", f"https://{a.name}/", (a,),
        sni_policer(a.name, "16kb/s"), _throttled("http", None))

    # --- Site problems that are not censorship: the control sees the same.
    a = _site("www.down.kg", http="none", https="none")
    add("down_everywhere", "nothing listens at the site (refused at the probe and the control)",
        f"https://{a.name}/", (a,), (), _down("tcp", "refused"))
    a = _site("www.down-http.kz", http="none", https="none")
    add("down_everywhere_http", "nothing listens at the site, HTTP URL", f"http://{a.name}/",
        (a,), (), _down("tcp", "refused"))
    a = _site("www.no-such-site.kg", dns="nxdomain")
    add("nxdomain_everywhere", "the name does not exist anywhere", f"https://{a.name}/", (a,),
        (), _down("dns", "nxdomain"))
    a = _site("www.no-address.kz", dns="no_a")
    add("no_a_records", "the name exists but has no address records", f"https://{a.name}/",
        (a,), (), _down("dns", "no_answer"))
    a = _site("www.expired.kg", cert="expired")
    add("expired_certificate", "the site's certificate expired (the control sees it too)",
        f"https://{a.name}/", (a,), (), _down("tls", None))
    a = _site("www.wrong-name.kz", cert="wrong_name")
    add("wrong_host_name", "the site's certificate is for another name", f"https://{a.name}/",
        (a,), (), _down("tls", None))
    a = _site("www.localhost-everywhere.kg", dns="localhost")
    add("localhost_everywhere", "the site's own DNS says 127.0.0.1 (misconfigured, OONI QA #26)",
        f"https://{a.name}/", (a,), (), _down("dns", None))
    a = _site("www.redirect-loop.kz", http="redirects:15", https="redirects:15")
    add("too_many_redirects", "the site redirects 15 times (more than 10)", f"https://{a.name}/",
        (a,), (), _down("http", None))

    # --- Redirect chains whose later hop is blocked (OONI QA #29-#37).
    b = _site("www.hop-tls-reset.kg")
    a = _site("www.short-tls.kg", https=f"redirect:https://{b.name}/")
    add("redirect_then_tls_reset", "first hop fine, the redirect target's SNI is reset",
        f"https://{a.name}/", (a, b), rst_on_string(b.name, 443), _blocked("tls", "reset"))
    b = _site("www.hop-nxdomain.kz")
    a = _site("www.short-dns.kz", https=f"redirect:https://{b.name}/")
    add("redirect_then_nxdomain", "first hop fine, the ISP resolver NXDOMAINs the target",
        f"https://{a.name}/", (a, b), isp_lies(b.name, "nxdomain"), _blocked("dns", "nxdomain"))
    b = _site("www.hop-refused.kg")
    a = _site("www.short-tcp.kg", https=f"redirect:https://{b.name}/")
    add("redirect_then_refused", "first hop fine, RST to the SYN to the target",
        f"https://{a.name}/", (a, b), rst_on_syn(b.ip, 443),
        _blocked("tcp", "refused", ooni=("http-failure", False)))  # OONI QA #29, #30
    b = _site("www.hop-http-reset.kz")
    a = _site("www.short-http.kz", http=f"redirect:http://{b.name}/")
    add("redirect_then_http_reset", "first hop fine, RST on the target's Host header",
        f"http://{a.name}/", (a, b), rst_on_string(f"Host: {b.name}", 80),
        _blocked("http", "reset"))

    # --- The control vantage cannot be reached: never "accessible" by default, never blocked.
    a = _site("www.no-control-http.kg")
    add("control_blocked_http", "the control is reset on its SNI; the site itself is fine "
        "(OONI QA #7)", f"http://{a.name}/", (a,), block_control(), INCONCLUSIVE,
        exclusive=True)
    a = _site("www.no-control-https.kz")
    add("control_blocked_https", "control blocked; the page still came over valid HTTPS "
        "(OONI QA #8)", f"https://{a.name}/", (a,), block_control(), OK, exclusive=True)
    a = _site("www.no-control-rst.kg")
    add("control_blocked_site_blocked", "control blocked and the site reset: without a "
        "control nothing is called blocked", f"https://{a.name}/", (a,),
        (*block_control(), *rst_on_syn(a.ip, 443)), INCONCLUSIVE, exclusive=True)

    # --- IPv6. The broadband client has IPv6 and prefers it; the mobile one has none. A
    # failure over IPv6 counts only where the client has IPv6 and the failure is not "no
    # route" (analysis R4): on an IPv6-less client it says nothing about the site.
    a = _site("www.v6-only.kg", dns="aaaa_only", ipv6=True)
    add("success_ipv6_only", "an IPv6-only site from the broadband client, over IPv6",
        f"https://{a.name}/", (a,), (), OK)
    a = _site("www.dual-stack.kz", ipv6=True)
    add("success_dual_stack", "a dual-stack site from the broadband client", f"https://{a.name}/",
        (a,), (), OK)
    a = _site("www.v6-blocked.kg", ipv6=True)
    add("ipv6_blocked_ipv4_works", "every packet to the site's IPv6 address dropped, IPv4 "
        "untouched: the page still comes over IPv4, and the evidence names the IPv6 endpoint",
        f"https://{a.name}/", (a,), drop_to(str(a.ip6), 443), OK,
        evidence=(f"endpoint_failed:[{a.ip6}]:443",))
    a = _site("www.v6-only-blocked.kz", dns="aaaa_only", ipv6=True)
    add("ipv6_only_site_blocked", "an IPv6-only site whose address is dropped: blocked, the "
        "client has IPv6", f"https://{a.name}/", (a,), drop_to(str(a.ip6), 443),
        _blocked("tcp", "timeout"))
    a = _site("www.v6-only-mobile.kg", dns="aaaa_only", ipv6=True)
    add("ipv6_only_site_without_ipv6", "an IPv6-only site from the IPv6-less mobile client: "
        "the connect fails with no route, which says nothing about the site", f"https://{a.name}/",
        (a,), (), expect("inconclusive", "tcp", None, blocking=None, accessible=None),
        link="mobile", evidence=("only_ipv6_without_ipv6",))
    a = _site("www.dual-stack-mobile.kz", ipv6=True)
    add("dual_stack_without_ipv6", "a dual-stack site from the IPv6-less mobile client: IPv4 "
        "works, the IPv6 failure is not evidence", f"https://{a.name}/", (a,), (), OK,
        link="mobile", not_evidence=("endpoint_failed",))

    # --- Shutdown: nothing is forwarded and the ISP resolver has no uplink.
    # --- The monitor itself blocked: the collector's first address is reset; the round's
    # measurement arrives once through the second endpoint, and the site stays ok (the
    # control follows the same endpoints).
    a = _site("www.collector-reset.kg")
    first = _site("collector-first.kuzot-lab.net")
    add("collector_first_address_reset", "the censor resets the collector's first address: "
        "the daemon uploads through the next endpoint", f"https://{a.name}/", (a, first),
        rst_on_syn(first.ip, 443), _online(f"https://{a.name}/"), collector_first=first.ip)
    # The censor drops the collector's first name in DNS: the round reaches the collector,
    # and its controls (the same endpoints), at the second name.
    a = _site("www.collector-dns.kg")
    first = _site("collector-dns.kuzot-lab.net", http="none", https="control")
    add("collector_name_dropped_in_dns", "the ISP resolver answers NXDOMAIN for the "
        "collector's first name: uploads and controls go to its second name",
        f"https://{a.name}/", (a, first), isp_lies(first.name, "nxdomain"),
        _online(f"https://{a.name}/"),
        paths=Paths(collector=(("first", first.name), ("second", plan.CONTROL_NAME)),
                    reached=("second", "direct", True), control=("second", "direct")))
    # The censor blackholes the first control only; the collector itself stays reachable.
    a = _site("www.control-only.kz")
    control = _site("control-a.kuzot-lab.net", http="none", https="control")
    add("first_control_blackholed", "every packet to the first control's :443 dropped, the "
        "collector untouched: the second control gives the view and the site stays ok",
        f"https://{a.name}/", (a, control), drop_to(control.ip, 443),
        _online(f"https://{a.name}/"),
        paths=Paths(collector=(("primary", plan.CONTROL_NAME),),
                    controls=(("control-a", control.name), ("control-b", plan.CONTROL_NAME)),
                    reached=("primary", "direct", False), control=("control-b", "direct")))
    # Every way to the monitor blocked but a SOCKS5 proxy beyond the censor (Tor).
    a = _site("www.only-proxy.kg")
    one = _site("collector-p1.kuzot-lab.net", http="none", https="control")
    two = _site("collector-p2.kuzot-lab.net", http="none", https="control")
    add("monitor_only_through_proxy", "both collector endpoints (its controls too) reset "
        "directly; the SOCKS5 proxy beyond the censor reaches them, the site is measured "
        "directly and stays ok", f"https://{a.name}/", (a, one, two),
        (*rst_on_syn(one.ip, 443), *rst_on_syn(two.ip, 443)), _online(f"https://{a.name}/"),
        paths=Paths(collector=(("first", one.name), ("second", two.name)), proxy=True,
                    reached=("first", "socks5", False), control=("first", "socks5")))
    # The same censor without the proxy: what the proxy buys. Nothing reaches the monitor; the
    # ladder's and the site's measurements wait in the spool, the site uncalled blocked.
    a = _site("www.no-proxy.kz")
    add("monitor_blocked_without_proxy", "both collector endpoints reset and no proxy: the "
        "round keeps its measurements for later", f"https://{a.name}/", (a, one, two),
        (*rst_on_syn(one.ip, 443), *rst_on_syn(two.ip, 443)), Round("online", (), 2),
        paths=Paths(collector=(("first", one.name), ("second", two.name)), reached=None,
                    control=None))
    a = _site("www.shutdown.kz")
    add("shutdown", "everything forwarded is dropped: the probe must not call the site "
        "blocked", f"https://{a.name}/", (a,), shutdown(), INCONCLUSIVE, exclusive=True)
    a = _site("www.shutdown-round.kg")
    add("shutdown_round", "the daemon during the shutdown: its ladder says offline (the ISP "
        "resolver answers SERVFAIL without its uplink), it measures nothing and keeps the "
        "ladder's result", f"https://{a.name}/", (a,), shutdown(), OFFLINE_RESOLVER_FAILS,
        exclusive=True)
    a = _site("www.online-round.kz")
    add("online_round", "the daemon with no censor: online, the site measured and uploaded",
        f"https://{a.name}/", (a,), (), _online(f"https://{a.name}/"))

    # --- Mobile-only shutdown: the mobile link is cut, home broadband through the same
    # router is not. The mobile probe must say it is offline and measure nothing; the
    # broadband probe must see nothing amiss.
    a = _site("www.online-mobile.kg")
    add("online_round_mobile", "the daemon on the mobile link with no censor: online",
        f"https://{a.name}/", (a,), (), _online(f"https://{a.name}/"), link="mobile")
    a = _site("www.mobile-dark.kz")
    add("mobile_shutdown_round", "the mobile link is cut, the operator's resolver included: "
        "offline, nothing measured", f"https://{a.name}/", (a,), mobile_shutdown(),
        OFFLINE_RESOLVER_FAILS, exclusive=True, link="mobile")
    a = _site("www.mobile-dark-home.kg")
    add("mobile_shutdown_round_broadband", "the mobile link is cut: the daemon on home "
        "broadband is online and measures the site", f"https://{a.name}/", (a,),
        mobile_shutdown(), _online(f"https://{a.name}/"), exclusive=True)
    a = _site("www.mobile-dark-check.kz")
    add("mobile_shutdown_check", "the mobile link is cut: a one-URL check there calls "
        "nothing blocked", f"https://{a.name}/", (a,), mobile_shutdown(), INCONCLUSIVE,
        exclusive=True, link="mobile")
    a = _site("www.mobile-dark-check-home.kg")
    add("mobile_shutdown_check_broadband", "the mobile link is cut: a one-URL check on home "
        "broadband finds the site fine", f"https://{a.name}/", (a,), mobile_shutdown(), OK,
        exclusive=True)
    a = _site("www.mobile-unrouted.kz")
    add("mobile_routes_withdrawn_round", "the mobile network's routes out are withdrawn (the "
        "router answers network unreachable) while its resolver still answers: offline, "
        "nothing measured", f"https://{a.name}/", (a,), withdraw_mobile_routes(),
        OFFLINE_RESOLVER_ANSWERS, exclusive=True, link="mobile")
    return s


SCENARIOS: tuple[Scenario, ...] = tuple(_build())
BY_NAME: dict[str, Scenario] = {scenario.name: scenario for scenario in SCENARIOS}
