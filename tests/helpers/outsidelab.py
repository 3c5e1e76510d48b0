"""An emulated country seen from outside: a collector, a border router, two networks of /24s.

::

    collector (198.19.0.1) -- router -- net-a: 198.18.0.0/24 .. 198.18.8.0/24
                                     \\- net-b: 198.18.16.0/24 .. 198.18.23.0/24

Each network is one namespace whose loopback holds the "hosts": a /32 for every responsive
address (every 5th address in net-a, every 7th in net-b; the kernel answers ICMP echo for each
and a RST to a SYN on a closed port), about 700 in all, eight judged blocks per network (so one
block flipping is 12.5% of its network, under IODA's 20% warning line). 198.18.8.0/24 holds no
host at all (a block that cannot be judged). The router forwards between them; scenarios change it:
``iptables`` DROP rules for a shutdown (whole network or some blocks), ICMP echo dropped for
blocks that answer TCP only, random drops for a noisy quiet hour.

Everything lives in namespaces named ``kzout-<pid>-<random>-<role>`` (``tests.helpers.netns``);
the collector namespace routes only the lab's blocks, so no probe can leave the lab.
``built`` gives a lab for one test (skipped without namespaces, failed under ``CI=true``), and
``write_block_file`` the block file of a collector config naming its networks by ASN.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path

from collector.outside.service import OutsideService
from tests.helpers.chainlab import in_namespace
from tests.helpers.netns import Namespaces, require, run

PREFIX = "kzout-"
ROLES = ("collector", "router", "neta", "netb")

NET_A = [f"198.18.{i}.0/24" for i in range(8)]
NET_A_EMPTY = "198.18.8.0/24"
NET_B = [f"198.18.{i}.0/24" for i in range(16, 24)]
TCP_ONLY = [f"198.18.{i}.0/24" for i in range(20, 24)]
"""net-b blocks whose ICMP echo the router drops (they are found and probed by TCP SYN)."""

BLOCK_FILE = [f"KZ net-a {p}" for p in [*NET_A, NET_A_EMPTY]] + [f"KZ net-b {p}" for p in NET_B]
ASN_A, ASN_B = "AS64500", "AS64501"
"""The networks' names in a collector's block file (it names networks by ASN)."""


# Discovery tries 32 of a block's 254 addresses at first, in an order drawn at random; a lab
# block holds 37 or 51 hosts, so with a random order some block's first sample misses them
# all in about one run in sixteen (two runs in 33 here), and that block waits 12 rounds for
# its next pass. Tests that count blocks after the first rounds give their services a prober
# drawing from this seed, whose first samples hold a host in every block (each run checks
# it with ``first_samples_find_a_host``).
SEED = 34


def first_samples_find_a_host(service: OutsideService, lab: OutsideLab) -> bool:
    """Whether each lab block (the empty one aside) has a host among the first addresses
    its discovery tried, in the order the service's prober drew."""
    assert service.prober is not None
    hosts = {ipaddress.IPv4Address(a) for role in lab.hosts.values() for a in role}
    sample = service.config.discovery_sample
    for track in service.prober.tracks:
        if str(track.block.prefix) == NET_A_EMPTY:
            continue
        base = track.block.prefix.network_address
        if not any(base + n in hosts for n in track.order[:sample]):
            return False
    return True


def write_block_file(directory: Path, name: str = "blocks.txt") -> Path:
    """The lab's blocks as a collector block file in ``directory``, net-a as ``ASN_A`` and
    net-b as ``ASN_B``."""
    path = directory / name
    path.write_text("\n".join(line.replace("net-a", ASN_A).replace("net-b", ASN_B)
                              for line in BLOCK_FILE) + "\n")
    return path


def responsive(prefix: str, step: int) -> Iterator[str]:
    base = ipaddress.IPv4Network(prefix).network_address
    for n in range(1, 255, step):
        yield str(base + n)


class OutsideLab:
    """Build with ``build()``, always ``destroy()``; the rule helpers change the router."""

    def __init__(self) -> None:
        self.net = Namespaces.new(PREFIX, ROLES)
        self.hosts = {"neta": [a for p in NET_A for a in responsive(p, 5)],
                      "netb": [a for p in NET_B for a in responsive(p, 7)]}

    def build(self) -> None:
        self.net.create(self._links)

    def _links(self, net: Namespaces) -> None:
        net.sysctl("router", {"net.ipv4.ip_forward": "1"})
        net.link("collector", "eth0", "198.19.0.1/30", "router", "c0", "198.19.0.2/30")
        net.link("router", "a0", "198.19.0.5/30", "neta", "eth0", "198.19.0.6/30")
        net.link("router", "b0", "198.19.0.9/30", "netb", "eth0", "198.19.0.10/30")
        net.ip("collector", "route", "add", "198.18.0.0/15", "via", "198.19.0.2")
        net.ip("router", "route", "add", "198.18.0.0/20", "via", "198.19.0.6")
        net.ip("router", "route", "add", "198.18.16.0/20", "via", "198.19.0.10")
        net.ip("neta", "route", "add", "default", "via", "198.19.0.5")
        net.ip("netb", "route", "add", "default", "via", "198.19.0.9")
        for role, addresses in self.hosts.items():
            batch = "".join(f"addr add {a}/32 dev lo\n" for a in addresses)
            result = run("sh", "-c", f"ip -n {net.name(role)} -batch - <<'EOF'\n{batch}EOF")
            assert result.returncode == 0
        for prefix in TCP_ONLY:
            self.iptables("-A", "FORWARD", "-d", prefix, "-p", "icmp", "--icmp-type",
                          "echo-request", "-j", "DROP")

    def iptables(self, *rule: str) -> None:
        self.net.run("router", "iptables", "-w", *rule, check=True)

    def cut(self, *prefixes: str) -> None:
        """Drop everything forwarded to ``prefixes`` (a shutdown, as seen from outside)."""
        for prefix in prefixes:
            self.iptables("-I", "FORWARD", "-d", prefix, "-j", "DROP")

    def filter_icmp(self, *prefixes: str) -> None:
        """Drop ICMP echo requests forwarded to ``prefixes``; TCP still gets through."""
        for prefix in prefixes:
            self.iptables("-I", "FORWARD", "-d", prefix, "-p", "icmp", "--icmp-type",
                          "echo-request", "-j", "DROP")

    def restore(self, *prefixes: str) -> None:
        for prefix in prefixes:
            self.iptables("-D", "FORWARD", "-d", prefix, "-j", "DROP")

    def loss(self, percent: float) -> None:
        """Random loss of packets forwarded into both networks, each packet on its own
        (iptables' statistic match: no kernel module beyond the lab's others)."""
        self.iptables("-I", "FORWARD", "-o", "a0", "-m", "statistic", "--mode", "random",
                      "--probability", f"{percent / 100:.4f}", "-j", "DROP")
        self.iptables("-I", "FORWARD", "-o", "b0", "-m", "statistic", "--mode", "random",
                      "--probability", f"{percent / 100:.4f}", "-j", "DROP")

    def remove_host(self, role: str, address: str) -> None:
        self.net.ip(role, "addr", "del", f"{address}/32", "dev", "lo")

    def collector_socket(self, family: int, kind: int, protocol: int) -> socket.socket:
        """A socket opened inside the collector's namespace (it stays bound to it)."""
        return in_namespace(self.net.name("collector"),
                            lambda: socket.socket(family, kind, protocol))

    def destroy(self) -> None:
        self.net.destroy()


@contextlib.contextmanager
def built() -> Iterator[OutsideLab]:
    """A lab built for the caller and destroyed after it, whatever happens; the calling test
    is skipped (failed under ``CI=true``) where namespaces and iptables cannot be used."""
    require("iptables")
    lab = OutsideLab()
    try:
        lab.build()
        yield lab
    finally:
        lab.destroy()
