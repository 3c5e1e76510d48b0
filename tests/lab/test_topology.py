"""The lab is sealed and leaves nothing behind.

Sealed: every lab interface lives in a lab namespace, the host's links, addresses, routes and
firewall are the same before, during and after a lab, and the censor has no route out of the
lab's blocks (checked with ``ip route get``, which sends no packet). Teardown removes the
namespaces and their resolver files, also when building the lab fails half-way.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tests.helpers.netns import Namespaces, NetnsError
from tests.lab import plan
from tests.lab.lab import Lab
from tests.lab.model import Site
from tests.lab.scenarios import BY_NAME
from tests.lab.topology import NETNS_ETC, PREFIX, LabError, Topology, run

pytestmark = pytest.mark.lab


def _host_state() -> dict[str, list[str]]:
    """The host's links, addresses, routes and firewall rules (without counters)."""
    links = json.loads(run("ip", "-j", "link", "show").stdout)
    rules = run("iptables-save", check=False).stdout.splitlines() + \
        run("ip6tables-save", check=False).stdout.splitlines()
    return {
        "links": sorted(f"{link['ifname']} {link.get('link_netnsid')}" for link in links),
        "addresses": run("ip", "-j", "addr", "show").stdout.splitlines(),
        "routes": run("ip", "route", "show", "table", "all").stdout.splitlines(),
        "firewall": [r for r in rules if not r.startswith("#") and not r.startswith(":")],
    }


def _namespaces() -> set[str]:
    return {line.split()[0] for line in run("ip", "netns", "list").stdout.splitlines() if line}


def _links(namespace: str) -> set[str]:
    return {link["ifname"] for link in json.loads(run("ip", "-n", namespace, "-j", "link",
                                                      "show").stdout)}


def test_building_and_destroying_a_topology_leaves_the_host_as_it_was(lab_capable: None) -> None:
    before = _host_state()
    topology = Topology.new()
    topology.build()
    try:
        assert set(topology.namespaces) <= _namespaces()
        assert _host_state() == before
        assert _links(topology.client) == {"lo", "eth0"}
        assert _links(topology.mobile) == {"lo", "wwan0"}
        assert _links(topology.censor) == {"lo", "lan", "mob", "wan"}
        assert _links(topology.world) == {"lo", "eth0"}
    finally:
        topology.destroy()
    assert not set(topology.namespaces) & _namespaces()
    assert not any((NETNS_ETC / n).exists() for n in topology.namespaces)
    assert _host_state() == before


def test_the_censor_has_no_route_out_of_the_lab(lab: Lab) -> None:
    censor = lab.topology.censor
    for outside in ("1.1.1.1", "192.0.2.1", "10.255.255.53", plan.FORGED_BOGON,
                    "2606:4700:4700::1111", "fd00::1", "2001:db8::1"):
        result = lab.topology.in_ns(censor, "ip", "route", "get", outside, check=False)
        assert result.returncode != 0 and "unreachable" in result.stderr.lower(), outside
    for inside in (plan.CONTROL_IP, plan.CONTROL_IP6):
        route = lab.topology.in_ns(censor, "ip", "route", "get", inside)
        assert "dev wan" in route.stdout, inside
    # Each subscriber's default route leads into the censor, nowhere else.
    client = lab.topology.in_ns(lab.topology.client, "ip", "route", "get", "1.1.1.1")
    assert f"via {plan.CLIENT_GATEWAY} dev eth0" in client.stdout
    mobile = lab.topology.in_ns(lab.topology.mobile, "ip", "route", "get", "1.1.1.1")
    assert f"via {plan.MOBILE_GATEWAY} dev wwan0" in mobile.stdout
    # IPv6: the home network has a route through the censor, the mobile one has none.
    client6 = lab.topology.in_ns(lab.topology.client, "ip", "route", "get", plan.CONTROL_IP6)
    assert f"via {plan.CLIENT_GATEWAY6} dev eth0" in client6.stdout
    mobile6 = lab.topology.in_ns(lab.topology.mobile, "ip", "route", "get", plan.CONTROL_IP6,
                                 check=False)
    assert mobile6.returncode != 0 and "unreachable" in mobile6.stderr.lower()
    # The world answers every access network through the censor.
    for subscriber, uplink in ((plan.CLIENT_IP, plan.CENSOR_UPLINK),
                               (plan.MOBILE_IP, plan.CENSOR_UPLINK),
                               (plan.CLIENT_IP6, plan.CENSOR_UPLINK6)):
        back = lab.topology.in_ns(lab.topology.world, "ip", "route", "get", subscriber)
        assert f"via {uplink} dev eth0" in back.stdout, subscriber


def test_each_namespace_resolves_through_its_own_resolver(lab: Lab) -> None:
    expected = {lab.topology.client: plan.ISP_RESOLVER, lab.topology.mobile: plan.ISP_RESOLVER,
                lab.topology.world: plan.PUBLIC_RESOLVER}
    for namespace, resolver in expected.items():
        text = lab.topology.in_ns(namespace, "cat", "/etc/resolv.conf").stdout
        assert f"nameserver {resolver}" in text
    assert Path("/etc/resolv.conf").read_text() != \
        lab.topology.in_ns(lab.topology.client, "cat", "/etc/resolv.conf").stdout


def test_namespaces_whose_setup_fails_are_removed(lab_capable: None) -> None:
    net = Namespaces.new(PREFIX, ("left", "right"))

    def broken(made: Namespaces) -> None:
        made.resolv_conf("left", "192.0.2.53")
        made.link("left", "eth0", "10.1.0.1/24", "right", "eth0", "not-an-address")

    with pytest.raises(NetnsError, match="not-an-address"):
        net.create(broken)
    assert not set(net.names) & _namespaces()
    assert not (NETNS_ETC / net.name("left")).exists()
    net.destroy()  # a second teardown finds nothing to do and says nothing


def test_a_lab_that_fails_to_build_is_torn_down(lab_capable: None) -> None:
    site = BY_NAME["success_https"].sites[0]
    twin = dataclasses.replace(BY_NAME["success_http"], name="twin",
                               sites=(Site(site.name, site.ip, cert="expired"),))
    broken = Lab([BY_NAME["success_https"], twin])
    with pytest.raises(LabError, match="declared twice"):
        broken.up()
    assert not set(broken.topology.namespaces) & _namespaces()
    assert not broken.workdir.exists()
