"""Four network namespaces joined by three veth pairs: client and mobile -- censor -- world.

The topology is sealed by construction: each veth pair is created with both ends already
inside lab namespaces (never in the host's), and the censor routes only the lab's own blocks,
so a packet to anything else dies in the censor with "network unreachable". Before building,
``check_host_overlap`` refuses address blocks that the host itself uses. The namespace
plumbing (unique names, veth pairs, sysctls, resolver files, a teardown safe to repeat) is
the suite's shared one, ``tests.helpers.netns``; this module knows the lab's address plan.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.netns import NETNS_ETC, Namespaces, NetnsError, exec_prefix, named, run
from tests.lab import plan
from tests.lab.model import CENSOR_LAN, CENSOR_MOBILE, CENSOR_WAN, Link

__all__ = ["NETNS_ETC", "PREFIX", "LabError", "Topology", "lab_namespaces", "run"]

PREFIX = "kzlab-"
ROLES = ("client", "mobile", "censor", "world")


class LabError(NetnsError):
    """The lab could not be built or driven."""


def host_networks() -> list[str]:
    """Addresses, routes and resolvers of the host itself (the lab must avoid them)."""
    out: list[str] = []
    addresses = json.loads(run("ip", "-j", "addr", "show").stdout or "[]")
    for link in addresses:
        for info in link.get("addr_info", []):
            out.append(f"{info['local']}/{info['prefixlen']}")
    for family in ("-4", "-6"):
        for route in json.loads(run("ip", "-j", family, "route", "show").stdout or "[]"):
            if route.get("dst") not in (None, "default"):
                out.append(route["dst"])
            if route.get("gateway"):
                out.append(route["gateway"])
    with contextlib.suppress(OSError):
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                out.append(parts[1])
    return out


def check_host_overlap() -> None:
    clashes = plan.overlapping(plan.LAB_NETWORKS, host_networks())
    if clashes:
        raise LabError(f"lab address blocks overlap the host's: {clashes}")


@dataclass(frozen=True, slots=True)
class Topology:
    """The namespaces of one lab, by role."""

    lab_id: str

    @classmethod
    def new(cls) -> Topology:
        return cls(Namespaces.new(PREFIX, ROLES).lab_id)

    @property
    def net(self) -> Namespaces:
        return Namespaces(self.lab_id, ROLES)

    @property
    def client(self) -> str:
        return self.net.name("client")

    @property
    def mobile(self) -> str:
        return self.net.name("mobile")

    @property
    def censor(self) -> str:
        return self.net.name("censor")

    @property
    def world(self) -> str:
        return self.net.name("world")

    @property
    def namespaces(self) -> tuple[str, ...]:
        return self.net.names

    def subscriber(self, link: Link) -> str:
        """The namespace on the given access link: home broadband or mobile data."""
        return self.mobile if link == "mobile" else self.client

    def exec_prefix(self, namespace: str) -> list[str]:
        return exec_prefix(namespace)

    def in_ns(self, namespace: str, *args: str, check: bool = True,
              timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """Run a command in one of the lab's namespaces (by name); raise on failure."""
        return run(*exec_prefix(namespace), *args, check=check, timeout=timeout)

    def build(self) -> None:
        """Create the namespaces, links, addresses, routes and resolver files."""
        check_host_overlap()
        self.net.create(self._links)

    def _links(self, net: Namespaces) -> None:
        # Before any link exists, so every interface is born with these settings. IPv6 is
        # configured by hand: no router advertisements, no duplicate address detection (which
        # would hold a new address back for a second or two). The mobile subscriber keeps
        # only its link-local address and has no IPv6 route, as an ordinary phone or laptop
        # on an IPv4-only network does: an IPv6 connect fails there with "network unreachable".
        for role in ROLES:
            net.sysctl(role, {"net.ipv6.conf.default.accept_ra": "0",
                              "net.ipv6.conf.default.accept_dad": "0",
                              "net.ipv6.conf.default.router_solicitations": "0"})
        net.sysctl("censor", {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"})

        net.link("client", "eth0", f"{plan.CLIENT_IP}/24",
                 "censor", CENSOR_LAN, f"{plan.CLIENT_GATEWAY}/24")
        net.link("mobile", "wwan0", f"{plan.MOBILE_IP}/24",
                 "censor", CENSOR_MOBILE, f"{plan.MOBILE_GATEWAY}/24")
        net.link("censor", CENSOR_WAN, f"{plan.CENSOR_UPLINK}/{plan.UPLINK_PREFIX}",
                 "world", "eth0", f"{plan.WORLD_UPLINK}/{plan.UPLINK_PREFIX}")

        net.ip("client", "route", "add", "default", "via", plan.CLIENT_GATEWAY)
        net.ip("client", "addr", "add", f"{plan.CLIENT_IP6}/64", "dev", "eth0")
        net.ip("client", "-6", "route", "add", "default", "via", plan.CLIENT_GATEWAY6)
        net.ip("mobile", "route", "add", "default", "via", plan.MOBILE_GATEWAY)

        net.ip("censor", "addr", "add", f"{plan.CLIENT_GATEWAY6}/64", "dev", CENSOR_LAN)
        net.ip("censor", "addr", "add", f"{plan.CENSOR_UPLINK6}/{plan.UPLINK_PREFIX6}", "dev",
               CENSOR_WAN)
        for address in plan.CENSOR_SERVICES:
            net.ip("censor", "addr", "add", f"{address}/32", "dev", "lo")
        # The censor knows the world's blocks and nothing else: no default route out.
        net.ip("censor", "route", "add", plan.WORLD_NET, "via", plan.WORLD_UPLINK)
        net.ip("censor", "route", "add", plan.WORLD_NET6, "via", plan.WORLD_UPLINK6)
        # The root qdisc that throttling scenarios hang their classes on; unclassified
        # traffic (no class 1:1 exists) goes out unshaped.
        net.run("censor", "tc", "qdisc", "add", "dev", CENSOR_LAN, "root", "handle", "1:",
                "htb", "default", "1", check=True)

        net.ip("world", "addr", "add", f"{plan.WORLD_UPLINK6}/{plan.UPLINK_PREFIX6}", "dev",
               "eth0")
        for subscribers in (plan.CLIENT_NET, plan.MOBILE_NET, plan.ISP_NET):
            net.ip("world", "route", "add", subscribers, "via", plan.CENSOR_UPLINK)
        net.ip("world", "route", "add", plan.ISP_NET6, "via", plan.CENSOR_UPLINK6)

        # Both subscribers ask the ISP resolver, the world (and so the control) a public one.
        # The subscribers' C library waits longer for a silent resolver than the probe does,
        # as with the defaults of a real system (5 s, twice), so silence shows as the probe's
        # own timeout; four seconds instead of ten keep the probe's exit quick.
        for subscriber in ("client", "mobile"):
            net.resolv_conf(subscriber, plan.ISP_RESOLVER, "timeout:4 attempts:1")
        net.resolv_conf("censor", plan.AUTH_DNS, "timeout:1 attempts:1")
        net.resolv_conf("world", plan.PUBLIC_RESOLVER, "timeout:1 attempts:2")

    def add_world_addresses(self, addresses: list[str]) -> None:
        for address in sorted(set(addresses)):
            prefix = 128 if ":" in address else 32
            run("ip", "-n", self.world, "addr", "add", f"{address}/{prefix}", "dev", "lo")

    def destroy(self) -> None:
        """Delete the namespaces and their files; safe to call twice."""
        self.net.destroy()


def lab_namespaces() -> list[str]:
    """Names of every lab namespace on this machine (for the stale-lab cleanup)."""
    return named(PREFIX)
