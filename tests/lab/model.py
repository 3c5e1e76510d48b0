"""The declarative pieces of a lab scenario: sites, censor actions, expected verdict.

A scenario is data: which sites the world serves, what the censor does (resolver lies,
iptables rules, tc shaping, packet injection), which access link the probe sits on, and what
the probe must report, exactly: for a one-URL check, the ``analysis`` and OONI
``blocking``/``accessible`` (``Expect``), as OONI's QA table does; for a round of the probe
daemon, the connectivity ladder's sentence and what was measured and kept (``Round``). The helpers
below build the censor actions from the techniques seen in the wild, so a scenario reads
like its description: ``rst_on_string("www.x.kg", 443)`` is "reset after a ClientHello
whose SNI is www.x.kg".
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from tests.lab import plan

# "control" (HTTPS only): the name is another way to the collector and its control, served
# by the collector's TLS front on the site's address (a second endpoint of the monitor).
Behaviour = str  # "page" | "big" | "none" | "redirect:URL" | "redirects:N" | "control"
CertKind = Literal["valid", "expired", "wrong_name"]
# "a": the site's addresses (A, and AAAA when it has IPv6); "aaaa_only": only its AAAA record
# (an IPv6-only site); "no_a": the name exists without addresses; "localhost": 127.0.0.1.
ZoneKind = Literal["a", "aaaa_only", "nxdomain", "no_a", "localhost"]
IspAction = str  # "nxdomain" | "servfail" | "silent" | "empty" | "a:IP"

# Interface names inside the censor namespace (namespaces have their own interface names).
CENSOR_LAN = "lan"  # towards the client on home broadband
CENSOR_MOBILE = "mob"  # towards the client on mobile data
CENSOR_WAN = "wan"  # towards the world

# Which access link a scenario's probe sits on.
Link = Literal["broadband", "mobile"]
# Which packet filter a rule goes to: iptables, ip6tables or both.
Family = Literal["ipv4", "ipv6", "both"]


@dataclass(frozen=True, slots=True)
class Site:
    """One host name served by the world; several names may share an address (co-hosting).
    A site with ``ip6`` listens there too (dual-stack, or IPv6-only with ``dns="aaaa_only"``)."""

    name: str
    ip: str
    http: Behaviour = "page"
    https: Behaviour = "page"
    cert: CertKind = "valid"
    dns: ZoneKind = "a"
    ip6: str | None = None


@dataclass(frozen=True, slots=True)
class IspAnswer:
    """The ISP resolver answers ``name`` with ``action`` instead of the truth."""

    name: str
    action: IspAction


@dataclass(frozen=True, slots=True)
class Iptables:
    """One packet-filter rule appended in the censor namespace (removed after the scenario),
    to iptables, ip6tables or both (``family``)."""

    table: str
    chain: str
    spec: tuple[str, ...]
    family: Family = "both"


@dataclass(frozen=True, slots=True)
class Shape:
    """Traffic from ``ip`` to the client limited to ``rate`` (tc htb class + u32 filter)."""

    ip: str
    rate: str


@dataclass(frozen=True, slots=True)
class Inject:
    """Packets forged by the on-path injector (scapy) when it sees ``match``.

    ``dns``: a forged A answer ``answer`` to queries for the name ``match``;
    ``fin``: a FIN|ACK to the client after a TCP payload containing ``match``;
    ``http_blockpage``: a blockpage response, then FIN, after a payload containing ``match``;
    ``http_unknown_blockpage``: the same with a blockpage no fingerprint knows.
    """

    kind: Literal["dns", "fin", "http_blockpage", "http_unknown_blockpage"]
    match: str
    answer: str | None = None


Action = IspAnswer | Iptables | Shape | Inject


@dataclass(frozen=True, slots=True)
class Expect:
    verdict: str
    layer: str | None
    mechanism: str | None
    blocking: str | bool | None
    accessible: bool | None


@dataclass(frozen=True, slots=True)
class Round:
    """What one round of the probe daemon (``probe run --once``, the scenario's URL its only
    target) must report: the connectivity ladder's sentence, the (URL, verdict) of each site
    measurement the collector received from the round, and how many measurements the probe
    kept for a later upload. An offline round keeps exactly one, the ladder's own: it measured
    no site, so it called none blocked."""

    summary: str
    measured: tuple[tuple[str, str], ...]
    waiting: int


@dataclass(frozen=True, slots=True)
class Paths:
    """A daemon round's ways to the monitor, and which of them it must report having used.

    ``collector`` and ``controls`` are ordered ``(name, host)`` endpoints, each reached at
    ``https://host``; without ``controls`` the collector's endpoints serve as the controls
    (the probe's default). ``proxy``: everything sent to the monitor goes through the
    world's SOCKS5 proxy (``socks5h``: the proxy resolves the names). ``reached``: the way
    ``probe status`` shows the collector was reached last (endpoint, path, fallback);
    ``control``: the control endpoint and path the stored measurement names. None for both:
    the round reached neither, and the collector stored nothing."""

    collector: tuple[tuple[str, str], ...]
    reached: tuple[str, str, bool] | None
    control: tuple[str, str] | None
    controls: tuple[tuple[str, str], ...] = ()
    proxy: bool = False


@dataclass(frozen=True, slots=True)
class Scenario:
    """One censorship technique (or site problem) and what the probe must conclude."""

    name: str
    about: str
    url: str
    sites: tuple[Site, ...]
    censor: tuple[Action, ...]
    expect: Expect | Round
    # Also query the public resolver over UDP (``--resolver``), as OONI's probe does.
    public_resolver: bool = False
    # Its censor rules touch every connection (shutdown, control blocked): run it apart from
    # the others, together only with scenarios whose censor rules are the same.
    exclusive: bool = False
    # Substrings that must appear in ``analysis.evidence``: what the censor did must show;
    # and substrings that must not (a fact about the probe's own network is no evidence).
    evidence: tuple[str, ...] = field(default=())
    not_evidence: tuple[str, ...] = field(default=())
    # The access link the probe runs on: home broadband or mobile data.
    link: Link = "broadband"
    # A daemon round's first collector endpoint reaches the collector through this address
    # (fronting: the collector's own name in Host and SNI), its second directly; None: one.
    collector_first: str | None = None
    # A daemon round's collector endpoints, controls and proxy, and the ways it must report.
    paths: Paths | None = None


def expect(verdict: str, layer: str | None = None, mechanism: str | None = None, *,
           blocking: str | bool | None, accessible: bool | None) -> Expect:
    return Expect(verdict, layer, mechanism, blocking, accessible)


# Expectations that recur: OONI's (blocking, accessible) follow from Kuzot's verdict.
OK = Expect("ok", None, None, False, True)
INCONCLUSIVE = Expect("inconclusive", None, None, None, None)


def _tcp(ip: str | None, port: int) -> tuple[str, ...]:
    return ("-p", "tcp", *(("-d", ip) if ip else ()), "--dport", str(port))


def family_of(ip: str) -> Family:
    """A rule on one address goes to that address's filter; a rule on a string or an
    interface goes to both, as a middlebox sees both families."""
    return "ipv6" if ":" in ip else "ipv4"


def isp_lies(name: str, action: IspAction) -> tuple[Action, ...]:
    return (IspAnswer(name, action),)


def rst_on_syn(ip: str, port: int) -> tuple[Action, ...]:
    """RST|ACK in reply to the SYN (the client sees ``connection_refused``)."""
    return (Iptables("filter", "FORWARD",
                     (*_tcp(ip, port), "--syn", "-j", "REJECT", "--reject-with", "tcp-reset"),
                     family_of(ip)),)


def drop_to(ip: str, port: int) -> tuple[Action, ...]:
    """Blackhole every packet to ip:port (the SYN is lost: ``generic_timeout_error``)."""
    return (Iptables("filter", "FORWARD", (*_tcp(ip, port), "-j", "DROP"), family_of(ip)),)


def _string(text: str) -> tuple[str, ...]:
    return ("-m", "string", "--string", text, "--algo", "bm")


def rst_on_string(text: str, port: int) -> tuple[Action, ...]:
    """RST to the client when a packet carries ``text`` (an SNI or a Host header)."""
    return (Iptables("filter", "FORWARD", (*_tcp(None, port), *_string(text), "-j", "REJECT",
                                           "--reject-with", "tcp-reset")),)


def drop_string(text: str, port: int) -> tuple[Action, ...]:
    """Drop every packet carrying ``text`` (retransmissions too): the exchange times out."""
    return (Iptables("filter", "FORWARD", (*_tcp(None, port), *_string(text), "-j", "DROP")),)


def fin_after_string(text: str, port: int) -> tuple[Action, ...]:
    """Drop the packet carrying ``text`` and forge a FIN|ACK to the client (``eof_error``)."""
    return (*drop_string(text, port), Inject("fin", text))


def inject_blockpage(host: str) -> tuple[Action, ...]:
    """Drop the request for ``host`` and forge the ISP's blockpage as the answer."""
    return (*drop_string(f"Host: {host}", 80), Inject("http_blockpage", f"Host: {host}"))


def inject_unknown_blockpage(host: str) -> tuple[Action, ...]:
    """Drop the request for ``host`` and forge a blockpage that no fingerprint knows."""
    return (*drop_string(f"Host: {host}", 80), Inject("http_unknown_blockpage", f"Host: {host}"))


def inject_dns(name: str, answer: str) -> tuple[Action, ...]:
    """Race a forged A answer against the real one for queries crossing the border."""
    return (Inject("dns", name, answer),)


def dnat(ip: str, port: int, to: str) -> tuple[Action, ...]:
    """Send connections for ip:port to another host of the ISP (blockpage, MITM box)."""
    return (Iptables("nat", "PREROUTING",
                     (*_tcp(ip, port), "-j", "DNAT", "--to-destination", f"{to}:{port}"),
                     family_of(ip)),)


def shape(ip: str, rate: str) -> tuple[Action, ...]:
    return (Shape(ip, rate),)


def sni_policer(name: str, rate: str) -> tuple[Action, ...]:
    """Russia's 2021 method: mark a connection whose ClientHello names ``name``, then drop
    its packets above ``rate`` (a policer, not a shaper)."""
    mark = "0x" + hashlib.sha256(name.encode()).hexdigest()[:4]
    bucket = "p" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return (
        Iptables("filter", "FORWARD", (*_tcp(None, 443), *_string(name), "-j", "CONNMARK",
                                       "--set-mark", mark)),
        Iptables("filter", "FORWARD", ("-m", "connmark", "--mark", mark, "-m", "hashlimit",
                                       "--hashlimit-above", rate, "--hashlimit-mode",
                                       "srcip,srcport,dstip,dstport", "--hashlimit-name", bucket,
                                       "-j", "DROP")),
    )


def shutdown() -> tuple[Action, ...]:
    """Nothing is forwarded and the ISP's own resolver loses its uplink."""
    return (Iptables("filter", "FORWARD", ("-j", "DROP")),
            Iptables("filter", "OUTPUT", ("-o", CENSOR_WAN, "-j", "DROP")))


def mobile_shutdown() -> tuple[Action, ...]:
    """The mobile network goes dark while home broadband, through the same router, stays up
    (Kazakhstan, January 2022, began so): nothing from or to the mobile link is forwarded and
    the operator's own services, its resolver included, stop answering mobile subscribers."""
    return (Iptables("filter", "FORWARD", ("-i", CENSOR_MOBILE, "-j", "DROP")),
            Iptables("filter", "FORWARD", ("-o", CENSOR_MOBILE, "-j", "DROP")),
            Iptables("filter", "INPUT", ("-i", CENSOR_MOBILE, "-j", "DROP")))


def withdraw_mobile_routes() -> tuple[Action, ...]:
    """The mobile network's routes out are withdrawn: the router answers "network
    unreachable" to whatever a mobile subscriber sends beyond it, while the operator's
    resolver still answers them (a cut made in routing, not in the packet filter). The mobile
    network is IPv4-only, so the rule is iptables' alone."""
    return (Iptables("filter", "FORWARD", ("-i", CENSOR_MOBILE, "-j", "REJECT",
                                           "--reject-with", "icmp-net-unreachable"), "ipv4"),)


def block_control() -> tuple[Action, ...]:
    """The control vantage is unreachable: reset on its SNI (OONI QA blocks its TH so)."""
    return rst_on_string(plan.CONTROL_NAME, 443)
