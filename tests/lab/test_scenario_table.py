"""The scenario table and the lab's pure helpers, checked without root.

The table must cover what the lab promises (at least 40 techniques), its OONI keys must be
the ones Kuzot's verdict maps to, and scenarios that run side by side must not touch each
other's traffic: each rule targets only its own scenario's names and addresses.
"""

from __future__ import annotations

import ipaddress
import ssl
from pathlib import Path

import pytest
from scapy.layers.dns import DNS, DNSQR
from scapy.layers.inet import IP, TCP, UDP

from probe.config import probe_config
from probe.core.bogons import is_bogon
from probe.nettests.web_connectivity import analysis
from tests.helpers.netns import when_unavailable
from tests.lab import injector, plan, relay, rounds, schedule
from tests.lab.model import (
    CENSOR_MOBILE,
    OK,
    Expect,
    Inject,
    Iptables,
    IspAnswer,
    Round,
    Scenario,
    Shape,
)
from tests.lab.scenarios import SCENARIOS

CHECKS = [s for s in SCENARIOS if isinstance(s.expect, Expect)]
ROUNDS = [s for s in SCENARIOS if isinstance(s.expect, Round)]


def _targets(scenario: Scenario) -> set[str]:
    """Names, strings and addresses the scenario's censor actions aim at."""
    out: set[str] = set()
    for action in scenario.censor:
        if isinstance(action, IspAnswer | Inject):
            out.add(action.match if isinstance(action, Inject) else action.name)
        elif isinstance(action, Shape):
            out.add(action.ip)
        elif isinstance(action, Iptables):
            spec = list(action.spec)
            for flag in ("--string", "-d"):
                if flag in spec:
                    out.add(spec[spec.index(flag) + 1])
    return out


def test_the_table_covers_at_least_forty_named_techniques() -> None:
    names = [s.name for s in SCENARIOS]
    assert len(names) >= 40
    assert len(set(names)) == len(names)
    checks = [s.expect for s in CHECKS if isinstance(s.expect, Expect)]
    assert len(checks) >= 40
    assert {e.layer for e in checks if e.verdict == "blocked"} == {"dns", "tcp", "tls", "http"}
    verdicts = {e.verdict for e in checks}
    assert verdicts == {"ok", "blocked", "down", "throttled", "inconclusive"}


OONI_PAIRS = {(None, None), (False, False), (False, True), ("dns", False), ("tcp_ip", False),
              ("http-failure", False), ("http-diff", False)}


@pytest.mark.parametrize("scenario", CHECKS, ids=lambda s: s.name)
def test_ooni_keys_are_a_pair_ooni_can_produce(scenario: Scenario) -> None:
    e = scenario.expect
    assert isinstance(e, Expect)
    assert (e.blocking, e.accessible) in OONI_PAIRS
    # A site down everywhere, or fetched, is never OONI "blocking"; undetermined stays null.
    if e.verdict in ("down", "ok"):
        assert e.blocking is False
    if e.verdict == "inconclusive" and e.accessible is None:
        assert e.blocking is None


@pytest.mark.parametrize("scenario", CHECKS, ids=lambda s: s.name)
def test_the_verdict_is_in_oonis_class_or_a_documented_departure(scenario: Scenario) -> None:
    """The invariant of ``probe.nettests.web_connectivity.analysis.DEPARTURES`` on each scenario's
    record: never ``ok`` where OONI's keys say blocking, never ``blocked`` where they say ``false``,
    except for a documented departure."""
    e = scenario.expect
    assert isinstance(e, Expect)
    if analysis.disagrees(e.blocking, e.verdict):
        record = {"verdict": e.verdict, "layer": e.layer, "mechanism": e.mechanism}
        assert analysis.departure(e.blocking, e.accessible, record) is not None, e


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if not s.exclusive],
                         ids=lambda s: s.name)
def test_shared_scenarios_aim_only_at_their_own_sites(scenario: Scenario) -> None:
    own = {site.name for site in scenario.sites} | {site.ip for site in scenario.sites} | \
        {site.ip6 for site in scenario.sites if site.ip6}
    for target in _targets(scenario):
        bare = target.removeprefix("Host: ")
        assert bare in own, f"{scenario.name} aims at {target!r}, not one of its sites"
    for other in SCENARIOS:
        if other is scenario or other.exclusive or set(other.sites) == set(scenario.sites):
            continue
        their = " ".join(site.name for site in other.sites)
        for target in _targets(scenario):
            assert target.removeprefix("Host: ") not in their, (scenario.name, other.name)


@pytest.mark.parametrize("scenario", ROUNDS, ids=lambda s: s.name)
def test_a_round_is_online_with_its_site_measured_or_offline_with_nothing(
        scenario: Scenario) -> None:
    e = scenario.expect
    assert isinstance(e, Round)
    if e.summary.startswith("online") and scenario.paths is not None \
            and scenario.paths.reached is None:
        # Online but cut off the monitor: the ladder's and the site's measurements wait.
        assert e.measured == () and e.waiting == 2
    elif e.summary.startswith("online"):
        assert e.measured == ((scenario.url, "ok"),) and e.waiting == 0
    else:
        # Offline: no site measured (so none called blocked), the ladder's result kept.
        assert e.summary.startswith("no connectivity: ")
        assert e.measured == () and e.waiting == 1


def test_a_round_runs_on_a_valid_probe_config_and_its_log_is_read(tmp_path: Path) -> None:
    written = rounds.write_config(tmp_path / "round.yaml", rounds.daemon_config(
        "https://www.x.kg/", "t0ken", "lab-ca.pem", "https://control.kuzot-lab.net",
        "spool-x.sqlite"))
    config = probe_config.load(written)
    assert [t.url for t in config.targets] == ["https://www.x.kg/"]
    assert config.collector.token == "t0ken" and config.control_base.endswith("kuzot-lab.net")
    assert config.ladder.foreign == (f"{plan.PUBLIC_RESOLVER}:443", f"{plan.AUTH_DNS}:443")
    assert (config.timeouts.dns, config.ladder.timeout) == (3.0, 1.5)
    assert config.spool_path == "spool-x.sqlite"
    assert config.consent.accepted
    log = ("06:50:01 INFO connectivity ...\n"
           "06:50:02 WARNING upload failed, keeping 1 measurements: dns_servfail_error\n"
           "06:50:02 INFO round done: no connectivity: gateway reachable, resolver fails, "
           "foreign hosts unreachable; 1 measurements waiting for upload\n")
    assert rounds.round_done(log) == (
        "no connectivity: gateway reachable, resolver fails, foreign hosts unreachable", 1)
    assert rounds.round_done("Traceback (most recent call last):") is None
    rows = [{"input": "https://b.kg/", "verdict": "ok"}, {"input": "https://a.kg/",
                                                         "verdict": "blocked"}]
    assert rounds.stored_verdicts(rows) == (("https://a.kg/", "blocked"), ("https://b.kg/", "ok"))


def _cuts_the_mobile_link(scenario: Scenario) -> bool:
    return any(isinstance(a, Iptables) and CENSOR_MOBILE in a.spec for a in scenario.censor)


def test_a_mobile_only_cut_touches_only_the_mobile_link_and_is_seen_from_both() -> None:
    cuts = [s for s in SCENARIOS if _cuts_the_mobile_link(s)]
    for scenario in cuts:
        assert scenario.exclusive, scenario.name
        for action in scenario.censor:
            # Every rule is bound to the mobile interface ("-i mob" or "-o mob").
            assert isinstance(action, Iptables)
            assert action.spec[:2] in (("-i", CENSOR_MOBILE), ("-o", CENSOR_MOBILE)), action
    on_mobile = [s for s in cuts if s.link == "mobile"]
    assert {type(s.expect) for s in on_mobile} == {Round, Expect}
    # Each cut is also measured from home broadband under the very same rules, in the same
    # run (one group), and there the site is fine.
    seen_from_broadband = {s.censor for s in cuts if s.link == "broadband"}
    assert {s.censor for s in on_mobile if isinstance(s.expect, Expect)} <= seen_from_broadband
    assert any(s.censor in seen_from_broadband for s in on_mobile
               if isinstance(s.expect, Round))
    for scenario in cuts:
        if scenario.link == "broadband":
            assert scenario.expect in (OK, Round("online", ((scenario.url, "ok"),), 0))


def test_the_plan_probes_each_scenario_once_never_under_rules_that_cut_its_link() -> None:
    batches = schedule.plan(SCENARIOS)
    probed = [s.name for batch in batches for s in batch.probes]
    assert sorted(probed) == sorted(s.name for s in SCENARIOS)
    overlapped = False
    for batch in batches:
        shared = {s for s in batch.probes if not s.exclusive}
        assert shared <= set(batch.rules), "a shared scenario probed without its rules"
        holders = [s for s in batch.rules if s.exclusive]
        assert len(holders) <= 1
        if not holders:
            assert all(not s.exclusive for s in batch.probes)
            continue
        cut = holders[0].censor
        assert all(s.censor == cut for s in batch.probes if s.exclusive)
        if schedule.cuts_only_the_mobile_link(cut):
            # Home broadband is untouched by a mobile-only cut; the mobile link is not.
            assert all(s.link == "broadband" for s in shared)
            overlapped = overlapped or bool(shared)
        else:
            assert not shared
    assert overlapped  # the mobile-only shutdown runs beside the broadband scenarios


def test_sites_have_public_looking_addresses_and_the_client_a_private_one() -> None:
    world, world6 = ipaddress.ip_network(plan.WORLD_NET), ipaddress.ip_network(plan.WORLD_NET6)
    for scenario in SCENARIOS:
        for site in scenario.sites:
            assert ipaddress.ip_address(site.ip) in world
            assert not is_bogon(site.ip)
            if site.ip6 is not None:
                assert ipaddress.ip_address(site.ip6) in world6
                assert not is_bogon(site.ip6)
            assert site.dns != "aaaa_only" or site.ip6 is not None, site.name
    for address in (*plan.CENSOR_SERVICES, plan.AUTH_DNS, plan.PUBLIC_RESOLVER, plan.CONTROL_IP,
                    plan.AUTH_DNS6, plan.PUBLIC_RESOLVER6, plan.CONTROL_IP6):
        assert not is_bogon(address), address
    assert ipaddress.ip_network(plan.CLIENT_NET).is_private
    # IPv6 has no NAT: the home network's prefix is the ISP's, and public.
    assert ipaddress.ip_network(plan.CLIENT_NET6).subnet_of(
        ipaddress.ip_network(plan.ISP_NET6))  # type: ignore[arg-type]
    assert not is_bogon(plan.CLIENT_IP6)
    assert is_bogon(plan.FORGED_BOGON)


def test_overlap_check_flags_host_networks_inside_lab_blocks() -> None:
    lab = ("88.212.0.0/16", "192.168.77.0/24")
    assert plan.overlapping(lab, ["192.0.2.2/24", "fd00::2/64", "10.255.255.53"]) == []
    assert plan.overlapping(lab, ["88.212.3.4/32"]) == [("88.212.0.0/16", "88.212.3.4/32")]
    assert plan.overlapping(lab, ["192.168.0.0/16"]) == [("192.168.77.0/24", "192.168.0.0/16")]
    assert plan.overlapping(lab, ["0.0.0.0/0", "not an address"]) == []
    lab6 = ("2a0b:59::/32", "2a0e:88::/32")
    assert plan.overlapping(lab6, ["fd00::2/64", "fe80::/64", "fd00::1", "::1/128", "::/0",
                                   "192.0.2.2/24"]) == []
    assert plan.overlapping(lab6, ["2a0e:88:1::/48"]) == [("2a0e:88::/32", "2a0e:88:1::/48")]
    assert plan.overlapping(lab6, ["2a0b::/16"]) == [("2a0b:59::/32", "2a0b::/16")]


def test_the_lab_blocks_are_dual_stack_and_overlap_nothing_a_typical_host_has() -> None:
    versions = {ipaddress.ip_network(block).version for block in plan.LAB_NETWORKS}
    assert versions == {4, 6}
    # A host with a documentation-range LAN, an fd00::/64 unique-local network, a private
    # resolver and loopback: the lab builds there.
    host = ["192.0.2.2/24", "192.0.2.1", "fd00::2/64", "fd00::1", "fe80::1/64",
            "10.255.255.53", "127.0.0.1/8", "::1/128"]
    assert plan.overlapping(plan.LAB_NETWORKS, host) == []


def _client_hello(server_name: str) -> bytes:
    context = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_the_proxy_reads_the_sni_and_the_host_header() -> None:
    assert relay.sni_of(_client_hello("www.dns-proxy-tls.kg")) == "www.dns-proxy-tls.kg"
    assert relay.sni_of(b"GET / HTTP/1.1\r\n") is None
    assert relay.sni_of(_client_hello("x.kg")[:20]) is None
    head = b"GET / HTTP/1.1\r\nHost: WWW.Dns-Proxy.kg:80\r\nAccept: */*\r\n\r\n"
    assert relay.host_of(head) == "www.dns-proxy.kg"
    assert relay.host_of(b"GET / HTTP/1.1\r\n\r\n") is None


def test_the_injector_forges_a_dns_answer_only_for_its_name_at_the_border() -> None:
    rules = [{"kind": "dns", "match": "www.dns-injected.kz", "answer": plan.FORGED_BOGON}]
    query = (IP(src=plan.CLIENT_IP, dst=plan.PUBLIC_RESOLVER) / UDP(sport=40000, dport=53)
             / DNS(id=77, rd=1, qd=DNSQR(qname="www.dns-injected.kz", qtype="A")))
    [forged] = injector.decide(IP(bytes(query)), rules)
    assert (forged.src, forged.dst, forged[UDP].dport) == (plan.PUBLIC_RESOLVER, plan.CLIENT_IP,
                                                           40000)
    assert forged[DNS].id == 77 and forged[DNS].an[0].rdata == plan.FORGED_BOGON
    other = query.copy()
    other[DNSQR].qname = "www.ok-https.kg"
    assert injector.decide(IP(bytes(other)), rules) == []
    to_isp = query.copy()
    to_isp[IP].dst = plan.ISP_RESOLVER
    assert injector.decide(IP(bytes(to_isp)), rules) == []


def test_the_injector_acknowledges_the_matched_payload_and_closes() -> None:
    rules = [{"kind": "http_blockpage", "match": "Host: www.x.kg", "answer": None}]
    request = (IP(src=plan.CLIENT_IP, dst="88.212.10.9")
               / TCP(sport=40001, dport=80, flags="PA", seq=1000, ack=5000)
               / b"GET / HTTP/1.1\r\nHost: www.x.kg\r\n\r\n")
    page, fin = injector.decide(IP(bytes(request)), rules)
    acked = 1000 + len(bytes(request[TCP].payload))
    assert (page[TCP].seq, page[TCP].ack, str(page[TCP].flags)) == (5000, acked, "PA")
    assert bytes(page[TCP].payload).startswith(b"HTTP/1.1 200 OK")
    assert (fin[TCP].seq, str(fin[TCP].flags)) == (5000 + len(bytes(page[TCP].payload)), "FA")
    assert injector.decide(IP(bytes(request)), [{"kind": "fin", "match": "nope"}]) == []


def test_a_lab_that_cannot_run_skips_locally_and_fails_in_ci() -> None:
    assert when_unavailable(None, "true") is None
    assert when_unavailable("needs root", None) == ("skip", "needs root")
    assert when_unavailable("needs root", "false") == ("skip", "needs root")
    assert when_unavailable("needs root", "true") == (
        "fail", "CI=true and the lab cannot run: needs root")
