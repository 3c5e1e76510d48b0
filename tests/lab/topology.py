"""Four network namespaces joined by three veth pairs: client and mobile -- censor -- world.

The topology is sealed by construction: each veth pair is created with both ends already
inside lab namespaces (never in the host's), and the censor routes only the lab's own blocks,
so a packet to anything else dies in the censor with "network unreachable". Before building,
``check_host_overlap`` refuses address blocks that the host itself uses. Names carry the
owner's process id and a random suffix so parallel runs never collide; ``destroy`` is
idempotent and removes every namespace and per-namespace file it created.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.lab import plan
from tests.lab.model import CENSOR_LAN, CENSOR_MOBILE, CENSOR_WAN, Link

PREFIX = "kzlab-"
NETNS_ETC = Path("/etc/netns")


class LabError(RuntimeError):
    """The lab could not be built or driven."""


def run(*args: str, check: bool = True, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    """Run one command; on failure raise LabError with its output."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(args)} failed ({result.returncode}): "
                       f"{result.stderr.strip() or result.stdout.strip()}")
    return result


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
    """The namespace names of one lab."""

    lab_id: str

    @classmethod
    def new(cls) -> Topology:
        return cls(f"{PREFIX}{os.getpid()}-{secrets.token_hex(3)}")

    @property
    def client(self) -> str:
        return f"{self.lab_id}-client"

    @property
    def mobile(self) -> str:
        return f"{self.lab_id}-mobile"

    @property
    def censor(self) -> str:
        return f"{self.lab_id}-censor"

    @property
    def world(self) -> str:
        return f"{self.lab_id}-world"

    @property
    def namespaces(self) -> tuple[str, str, str, str]:
        return (self.client, self.mobile, self.censor, self.world)

    def subscriber(self, link: Link) -> str:
        """The namespace on the given access link: home broadband or mobile data."""
        return self.mobile if link == "mobile" else self.client

    def exec_prefix(self, namespace: str) -> list[str]:
        return ["ip", "netns", "exec", namespace]

    def in_ns(self, namespace: str, *args: str, check: bool = True,
              timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        return run(*self.exec_prefix(namespace), *args, check=check, timeout=timeout)

    def sysctl(self, namespace: str, settings: dict[str, str]) -> None:
        """Set per-namespace sysctls through /proc (no dependency on procps), in one call."""
        script = "; ".join(f"echo {value} > /proc/sys/{key.replace('.', '/')}"
                           for key, value in settings.items())
        self.in_ns(namespace, "sh", "-c", f"set -e; {script}")

    def build(self) -> None:
        """Create the namespaces, links, addresses, routes and resolver files."""
        check_host_overlap()
        c, m, x, w = self.namespaces
        for namespace in self.namespaces:
            run("ip", "netns", "add", namespace)
        try:
            self._links(c, m, x, w)
        except Exception:
            self.destroy()
            raise

    def _links(self, c: str, m: str, x: str, w: str) -> None:
        # Before any link exists, so every interface is born with these settings. IPv6 is
        # configured by hand: no router advertisements, no duplicate address detection (which
        # would hold a new address back for a second or two). The mobile subscriber keeps
        # only its link-local address and has no IPv6 route, as an ordinary phone or laptop
        # on an IPv4-only network does: an IPv6 connect fails there with "network unreachable".
        for namespace in self.namespaces:
            self.sysctl(namespace, {"net.ipv6.conf.default.accept_ra": "0",
                                    "net.ipv6.conf.default.accept_dad": "0",
                                    "net.ipv6.conf.default.router_solicitations": "0"})
        self.sysctl(x, {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"})
        # Both ends of each pair are born inside lab namespaces: nothing touches the host's.
        run("ip", "link", "add", "eth0", "netns", c, "type", "veth", "peer", "name", CENSOR_LAN,
            "netns", x)
        run("ip", "link", "add", "wwan0", "netns", m, "type", "veth", "peer", "name",
            CENSOR_MOBILE, "netns", x)
        run("ip", "link", "add", CENSOR_WAN, "netns", x, "type", "veth", "peer", "name", "eth0",
            "netns", w)
        for namespace in self.namespaces:
            run("ip", "-n", namespace, "link", "set", "lo", "up")

        run("ip", "-n", c, "addr", "add", f"{plan.CLIENT_IP}/24", "dev", "eth0")
        run("ip", "-n", c, "link", "set", "eth0", "up")
        run("ip", "-n", c, "route", "add", "default", "via", plan.CLIENT_GATEWAY)
        run("ip", "-n", c, "addr", "add", f"{plan.CLIENT_IP6}/64", "dev", "eth0")
        run("ip", "-n", c, "-6", "route", "add", "default", "via", plan.CLIENT_GATEWAY6)
        run("ip", "-n", m, "addr", "add", f"{plan.MOBILE_IP}/24", "dev", "wwan0")
        run("ip", "-n", m, "link", "set", "wwan0", "up")
        run("ip", "-n", m, "route", "add", "default", "via", plan.MOBILE_GATEWAY)

        run("ip", "-n", x, "addr", "add", f"{plan.CLIENT_GATEWAY}/24", "dev", CENSOR_LAN)
        run("ip", "-n", x, "addr", "add", f"{plan.MOBILE_GATEWAY}/24", "dev", CENSOR_MOBILE)
        run("ip", "-n", x, "addr", "add", f"{plan.CENSOR_UPLINK}/{plan.UPLINK_PREFIX}", "dev",
            CENSOR_WAN)
        run("ip", "-n", x, "addr", "add", f"{plan.CLIENT_GATEWAY6}/64", "dev", CENSOR_LAN)
        run("ip", "-n", x, "addr", "add", f"{plan.CENSOR_UPLINK6}/{plan.UPLINK_PREFIX6}", "dev",
            CENSOR_WAN)
        for address in plan.CENSOR_SERVICES:
            run("ip", "-n", x, "addr", "add", f"{address}/32", "dev", "lo")
        for link in (CENSOR_LAN, CENSOR_MOBILE, CENSOR_WAN):
            run("ip", "-n", x, "link", "set", link, "up")
        # The censor knows the world's blocks and nothing else: no default route out.
        run("ip", "-n", x, "route", "add", plan.WORLD_NET, "via", plan.WORLD_UPLINK)
        run("ip", "-n", x, "route", "add", plan.WORLD_NET6, "via", plan.WORLD_UPLINK6)
        # The root qdisc that throttling scenarios hang their classes on; unclassified
        # traffic (no class 1:1 exists) goes out unshaped.
        self.in_ns(x, "tc", "qdisc", "add", "dev", CENSOR_LAN, "root", "handle", "1:", "htb",
                   "default", "1")

        run("ip", "-n", w, "addr", "add", f"{plan.WORLD_UPLINK}/{plan.UPLINK_PREFIX}", "dev",
            "eth0")
        run("ip", "-n", w, "addr", "add", f"{plan.WORLD_UPLINK6}/{plan.UPLINK_PREFIX6}", "dev",
            "eth0")
        run("ip", "-n", w, "link", "set", "eth0", "up")
        for subscribers in (plan.CLIENT_NET, plan.MOBILE_NET):
            run("ip", "-n", w, "route", "add", subscribers, "via", plan.CENSOR_UPLINK)
        run("ip", "-n", w, "route", "add", plan.ISP_NET, "via", plan.CENSOR_UPLINK)
        run("ip", "-n", w, "route", "add", plan.ISP_NET6, "via", plan.CENSOR_UPLINK6)

        # ``ip netns exec`` bind-mounts /etc/netns/NAME/resolv.conf over /etc/resolv.conf:
        # both subscribers ask the ISP resolver, the world (and so the control) a public one.
        # The client's C library waits longer for a silent resolver than the probe does, as
        # with the defaults of a real system (5 s, twice), so silence shows as the probe's own
        # timeout; four seconds instead of ten keep the probe's exit quick.
        for subscriber in (c, m):
            self._resolv(subscriber, plan.ISP_RESOLVER, "timeout:4 attempts:1")
        self._resolv(x, plan.AUTH_DNS, "timeout:1 attempts:1")
        self._resolv(w, plan.PUBLIC_RESOLVER, "timeout:1 attempts:2")

    def _resolv(self, namespace: str, nameserver: str, options: str) -> None:
        directory = NETNS_ETC / namespace
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "resolv.conf").write_text(f"nameserver {nameserver}\noptions {options}\n")

    def add_world_addresses(self, addresses: list[str]) -> None:
        for address in sorted(set(addresses)):
            prefix = 128 if ":" in address else 32
            run("ip", "-n", self.world, "addr", "add", f"{address}/{prefix}", "dev", "lo")

    def destroy(self) -> None:
        """Delete the namespaces and their files; safe to call twice."""
        existing = set(run("ip", "netns", "list", check=False).stdout.split())
        for namespace in self.namespaces:
            if namespace in existing:
                run("ip", "netns", "del", namespace, check=False)
            shutil.rmtree(NETNS_ETC / namespace, ignore_errors=True)


def lab_namespaces() -> list[str]:
    """Names of every lab namespace on this machine (for the stale-lab cleanup)."""
    listing = run("ip", "netns", "list", check=False).stdout.split("\n")
    return [line.split()[0] for line in listing if line.startswith(PREFIX)]
